"""benchmarks/peptide.py end to end on a tiny teacher: it trains, samples, scores against both
baselines and writes its report; its --sampler flag really changes how peptides are drawn, and
what no flag sets comes from the config's sample: section."""

from __future__ import annotations

import json
import random
import runpy
import sys
from pathlib import Path

import yaml
from peptide_helpers import make_peptides

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "peptide.py"
TYPES = ("amp", "afp", "avp")


def _activity_folder(root: Path) -> Path:
    """Held-out labelled peptides per type (10+ actives and inactives each)."""
    rng = random.Random(1)
    folder = root / "activity"
    folder.mkdir()
    for t in TYPES:
        rows = [("".join(rng.choices("KRLLWKKAG", k=rng.randint(8, 20))), 1) for _ in range(12)]
        rows += [("".join(rng.choices("DESTNQPGA", k=rng.randint(8, 20))), 0) for _ in range(12)]
        lines = ["id,sequence,label"] + [f"s{i},{s},{y}" for i, (s, y) in enumerate(rows)]
        (folder / f"{t}_toy.csv").write_text("\n".join(lines) + "\n")
    return folder


def _config(root: Path, teacher: str, data: Path) -> Path:
    cfg = {
        "data": str(data),
        "types": list(TYPES),
        "teacher": teacher,
        "timesteps": 20,
        "model": {"d_model": 16, "layers": 1, "heads": 2, "structure_hidden": 8,
                  "decoder_hidden": 32},
        "stages": [{"name": "end_to_end", "epochs": 1, "structure": True, "trainable": "all"}],
        "train": {"batch_size": 16, "progress": False},
        "progress": False,
        "sample": {"guidance": {"amp": 3, "afp": 5, "avp": 2}, "steps": 3},  # the tuned rows
    }  # fmt: skip
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(monkeypatch, args: list[str]) -> None:
    main = runpy.run_path(str(BENCHMARK), run_name="peptide_benchmark")["main"]
    monkeypatch.setattr(sys, "argv", ["peptide.py", *args])
    main()


def test_benchmark_reports_every_method_and_its_sampler(
    tmp_path, monkeypatch, tiny_teacher_dir
) -> None:
    data = tmp_path / "peptides.csv"  # 60 per type: enough held-out peptides for an FD
    rows = "".join(f"{t},x,p{i},{s}\n" for i, (t, s) in enumerate(make_peptides(60)))
    data.write_text("type,source_dataset,id,sequence\n" + rows)
    common = [
        "--config", str(_config(tmp_path, tiny_teacher_dir, data)),
        "--out", str(tmp_path / "run"), "--models", "structure", "--n", "6",
        "--threads", "1", "--cache", str(tmp_path / "cache"),
        "--activity-data", str(_activity_folder(tmp_path)),
    ]  # fmt: skip
    reports = {}
    for sampler in ("ddim", "ddpm"):
        results = tmp_path / f"res_{sampler}"
        _run(monkeypatch, [*common, "--sampler", sampler, "--results", str(results)])
        reports[sampler] = json.loads(results.with_suffix(".json").read_text())
        assert results.with_suffix(".md").read_text().strip()
        for t in TYPES:
            assert (tmp_path / f"res_{sampler}_{t}.png").stat().st_size > 0
    ddim, ddpm = reports["ddim"], reports["ddpm"]
    assert ddim["args"]["sampler"] == "ddim" and ddpm["args"]["sampler"] == "ddpm"
    # what the flags left open came from the config's sample: section
    assert ddpm["args"]["steps"] == 3
    assert ddpm["args"]["type_guidance"] == {"amp": 3, "afp": 5, "avp": 2}
    methods = {"structdiff_structure_g1", "structdiff_structure_g2",
               "structdiff_structure_tuned", "baseline_shuffled", "baseline_profile"}  # fmt: skip
    assert methods <= set(ddpm["results"])
    for method in methods:
        for t in TYPES:
            row = ddpm["results"][method]["per_type"][t]
            assert 0.0 <= row["activity_mean"] <= 1.0 and row["frechet_distance"] >= 0
    # the same model, seeds and guidance: only the sampler differs, so a flag that did not reach
    # sample_peptides would give identical generated peptides and identical scores
    gen = "structdiff_structure_tuned"
    fd = {s: [r["results"][gen]["per_type"][t]["frechet_distance"] for t in TYPES]
          for s, r in reports.items()}  # fmt: skip
    assert fd["ddim"] != fd["ddpm"]
    # the baselines do not depend on the sampler
    base = "baseline_shuffled"
    assert ddim["results"][base]["per_type"] == ddpm["results"][base]["per_type"]
