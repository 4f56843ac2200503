"""`protdistill ppi` end to end on a tiny random teacher and a handful of pairs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from protdistill.cli.main import app

runner = CliRunner()


def _config(tmp_path, **extra) -> str:
    lines = {
        "batch_size": 8,
        "progress": False,
        "head_epochs": 20,
        "head_crossfit": 2,
        "tokens_per_batch": 512,
        "map_residues": 16,
        "map_bins": 4,
        **extra,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))
    return str(path)


def _run(args: list[str]) -> None:
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_run_writes_everything_and_resumes(tmp_path, ppi_files, tiny_teacher_dir) -> None:
    pairs, fasta = ppi_files
    out = tmp_path / "run"
    args = [
        "ppi",
        "run",
        "--pairs",
        str(pairs),
        "--fasta",
        str(fasta),
        "--teacher",
        tiny_teacher_dir,
        "--out",
        str(out),
        "--split",
        "random",
        "--epochs",
        "2",
        "--config",
        _config(tmp_path),
    ]
    _run(args)
    metrics = json.loads((out / "metrics.json").read_text())
    for model in ("teacher", "student"):
        assert {"auroc", "aupr", "accuracy", "f1", "mcc", "n"} <= set(metrics[model])
        assert metrics[model]["n"] == len(json.loads((out / "split.json").read_text())["test"])
    for name in (
        "config.yaml",
        "split.json",
        "student.safetensors",
        "predictions_test.tsv",
        "roc_curve.png",
        "pr_curve.png",
        "training_curves.png",
    ):
        assert (out / name).exists(), name
    assert (out / "student" / "checkpoints" / "last.ckpt").exists()

    # A run killed after training, before evaluation: re-running finishes from the checkpoint
    # and reproduces the same predictions (the cached teacher is reused, not recomputed).
    before = (out / "predictions_test.tsv").read_text()
    (out / "student.safetensors").unlink()
    (out / "metrics.json").unlink()
    _run(args)
    assert (out / "predictions_test.tsv").read_text() == before


def test_resume_refuses_other_data_settings(tmp_path, ppi_files, tiny_teacher_dir) -> None:
    from protdistill.config import resolve
    from protdistill.errors import ConfigError
    from protdistill.tasks.ppi.common.config import PpiConfig
    from protdistill.tasks.ppi.run.prepare import prepare

    pairs, fasta = ppi_files
    cfg = resolve(PpiConfig, pairs=str(pairs), fasta=str(fasta), split="random")
    prepare(cfg, tmp_path / "r")
    with pytest.raises(ConfigError, match="split='random'"):
        prepare(cfg.model_copy(update={"split": "protein"}), tmp_path / "r")


def test_interaction_student_predict_evaluate_explain(tmp_path, ppi_files, tiny_teacher_dir):
    pairs, fasta = ppi_files
    out = tmp_path / "run"
    _run(
        [
            "ppi",
            "run",
            "--pairs",
            str(pairs),
            "--fasta",
            str(fasta),
            "--teacher",
            tiny_teacher_dir,
            "--out",
            str(out),
            "--split",
            "random",
            "--epochs",
            "1",
            "--student",
            "interaction",
            "--feature-weight",
            "0.5",
            "--config",
            _config(tmp_path),
        ]
    )
    student = json.loads((out / "metrics.json").read_text())["student"]
    assert student["kind"] == "interaction"
    history = json.loads((out / "student" / "history.json").read_text())
    assert history[0]["train_feature"] > 0 and history[0]["train_map"] >= 0
    agreement = student["map_agreement_val"]  # val pairs carry teacher maps
    assert agreement["pairs"] > 0 and -1.0 <= agreement["pearson_r"] <= 1.0
    assert agreement["spatial_kl"] >= 0 and agreement["spatial_kl_flat_map"] >= 0

    preds = tmp_path / "preds.tsv"
    _run(
        [
            "ppi",
            "predict",
            "--model",
            str(out),
            "--pairs",
            str(pairs),
            "--fasta",
            str(fasta),
            "--out",
            str(preds),
        ]
    )
    rows = preds.read_text().splitlines()
    assert rows[0] == "protein_a\tprotein_b\tprobability\tnote" and len(rows) == 61
    assert all(0.0 <= float(r.split("\t")[2]) <= 1.0 for r in rows[1:])

    ev = tmp_path / "eval"
    _run(
        [
            "ppi",
            "evaluate",
            "--model",
            str(out),
            "--pairs",
            str(pairs),
            "--fasta",
            str(fasta),
            "--out",
            str(ev),
            "--teacher",
            tiny_teacher_dir,
        ]
    )
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["student"]["n"] == metrics["teacher"]["n"] == 60

    png = tmp_path / "new_folder" / "pair.png"  # explain creates the folder
    _run(
        [
            "ppi",
            "explain",
            "--model",
            str(out),
            "--fasta",
            str(fasta),
            "--a",
            "P0",
            "--b",
            "P2",
            "--out",
            str(png),
            "--teacher",
            tiny_teacher_dir,
        ]
    )
    assert png.stat().st_size > 10_000
    info = json.loads(png.with_suffix(".json").read_text())
    assert 1 <= info["top_region"]["a_start"] <= info["top_region"]["a_end"]


def test_bad_fasta_gives_one_line_error(tmp_path, ppi_files) -> None:
    pairs, _ = ppi_files
    bad = tmp_path / "bad.fasta"
    bad.write_text(">P0\nMKV\n>P1\nMK1V\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "protdistill.cli.main",
            "ppi",
            "run",
            "--pairs",
            str(pairs),
            "--fasta",
            str(bad),
            "--teacher",
            "unused",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "bad.fasta: P1 (line 4)" in lines[0] and "Traceback" not in proc.stderr
    )


def test_test_pairs_file_is_the_test_split(tmp_path, ppi_files, tiny_teacher_dir) -> None:
    pairs, fasta = ppi_files
    lines = pairs.read_text().splitlines()
    fit, held_out = tmp_path / "fit.tsv", tmp_path / "held_out.tsv"
    fit.write_text("\n".join(lines[:46]) + "\n")
    held_out.write_text("\n".join(lines[46:]) + "\n")
    out = tmp_path / "run"
    _run(
        ["ppi", "run", "--pairs", str(fit), "--fasta", str(fasta), "--teacher", tiny_teacher_dir]
        + ["--out", str(out), "--test-pairs", str(held_out), "--epochs", "1"]
        + ["--config", _config(tmp_path)]
    )
    split = json.loads((out / "split.json").read_text())
    expected = [line.split("\t") for line in lines[46:]]
    assert [[a, b, str(int(y))] for a, b, y in split["test"]] == expected
    assert len(split["train"]) + len(split["val"]) == 45
    assert json.loads((out / "metrics.json").read_text())["student"]["n"] == 15
    report = json.loads((out / "data_report.json").read_text())
    assert report["split"] == {"train": len(split["train"]), "val": len(split["val"]), "test": 15}
    # --split protein (the default): validation pairs touch proteins held back from training
    assert report["val_pairs_with_a_protein_unseen_in_training"] == len(split["val"]) > 0
