"""End to end on a tiny random teacher: `peptide train` (staged, resumable), sample, evaluate."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from protdistill.cli.main import app
from protdistill.errors import ConfigError
from protdistill.io.peptides import read_peptides


def _config(tmp_path, teacher: str, data, epochs: int):  # noqa: ANN001, ANN202
    cfg = {
        "data": str(data),
        "teacher": teacher,
        "timesteps": 50,
        "model": {
            "d_model": 16,
            "layers": 1,
            "heads": 2,
            "structure_hidden": 8,
            "decoder_hidden": 32,
        },
        "stages": [
            {"name": "sequence", "epochs": 1, "structure": False, "trainable": "sequence"},
            {"name": "end_to_end", "epochs": epochs, "structure": True, "trainable": "all"},
        ],
        "train": {"batch_size": 16, "ema_decay": 0.9, "progress": False, "lr": 0.003},
        "out": str(tmp_path / "run"),
        "cache": str(tmp_path / "cache"),
        "progress": False,
    }
    path = tmp_path / f"peptide_{epochs}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_resume_sample_evaluate(tmp_path, tiny_teacher_dir, peptide_csv) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        ["peptide", "train", "--config", str(_config(tmp_path, tiny_teacher_dir, peptide_csv, 1))],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((run / "train_metrics.json").read_text())
    assert 0.0 <= metrics["decoder_val_accuracy"] <= 1.0
    assert [s["stage"] for s in metrics["stages"]] == ["sequence", "end_to_end"]
    stage = run / "stages" / "1-end_to_end"
    first = json.loads((stage / "history.json").read_text())
    assert len(first) == 1 and (stage / "checkpoints" / "last.ckpt").is_file()

    # a training killed after its last checkpoint: no done marker, no final model
    (stage / "done.json").unlink()
    (run / "model.safetensors").unlink()
    cfg2 = _config(tmp_path, tiny_teacher_dir, peptide_csv, 2)
    res = runner.invoke(
        app,
        ["peptide", "train", "--config", str(cfg2)],
    )
    assert res.exit_code == 0, res.output
    history = json.loads((stage / "history.json").read_text())
    assert len(history) == 2 and history[0] == first[0]  # resumed, not restarted
    assert (run / "model.safetensors").is_file()
    assert len(json.loads((run / "stages/0-sequence/history.json").read_text())) == 1

    fasta = tmp_path / "s.fasta"
    res = runner.invoke(
        app,
        [
            "peptide",
            "sample",
            "--config",
            str(cfg2),
            "--type",
            "afp",
            "--length",
            "7",
            "--n",
            "6",
            "--steps",
            "5",
            "--guidance",
            "2.0",
            "--out",
            str(fasta),
        ],
    )
    assert res.exit_code == 0, res.output
    peps, _ = read_peptides(fasta, max_length=None, deduplicate=False)
    assert len(peps) == 6 and all(len(p.sequence) == 7 and p.type == "afp" for p in peps)

    out = tmp_path / "eval"
    res = runner.invoke(
        app,
        [
            "peptide",
            "evaluate",
            str(fasta),
            "--config",
            str(cfg2),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((out / "metrics.json").read_text())
    afp = report["per_type"]["afp"]
    assert afp["n"] == 6 and 0 <= afp["uniqueness"] <= 1 and 0 <= afp["composition_jsd"] <= 1
    assert "conditional_fidelity" in afp and "frechet_distance" in afp
    assert (out / "afp_distributions.png").stat().st_size > 1000


def test_sample_with_unknown_type_is_one_line_error(tmp_path) -> None:
    res = CliRunner().invoke(app, ["peptide", "sample", "--model", str(tmp_path / "none")])
    assert res.exit_code != 0
    assert "not found" in str(res.exception) or "not found" in res.output


def test_one_type_run_on_an_earlier_split_trains_without_a_type_classifier(
    tmp_path, tiny_teacher_dir, peptide_csv
) -> None:
    import torch

    from protdistill.distill.checkpoint import save_model
    from protdistill.io.peptides import Peptide, write_peptide_fasta
    from protdistill.tasks.peptide.classifier import TypeClassifier
    from protdistill.tasks.peptide.config import EvaluateConfig
    from protdistill.tasks.peptide.data import split_peptides
    from protdistill.tasks.peptide.pipeline import evaluate_file
    from protdistill.tasks.peptide.train import _split_json, read_split

    peps, _ = read_peptides(peptide_csv)
    (tmp_path / "earlier").mkdir()
    earlier = split_peptides(peps, 0.2, seed=3)
    (tmp_path / "earlier" / "split.json").write_text(json.dumps(_split_json(earlier)))
    data = yaml.safe_load(_config(tmp_path, tiny_teacher_dir, peptide_csv, 1).read_text())
    kind = earlier.types[0]
    data |= {"stages": data["stages"][1:], "types": [kind],
             "split_from": str(tmp_path / "earlier" / "split.json")}  # fmt: skip
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(app, ["peptide", "train", "--config", str(tmp_path / "one.yaml")])
    assert res.exit_code == 0, res.output
    run = tmp_path / "run"
    assert json.loads((run / "train_metrics.json").read_text())["classifier"] is None
    assert not (run / "classifier.safetensors").exists()
    assert (run / "model.safetensors").is_file()
    assert read_split(run / "split.json").sequences("val") == earlier.sequences("val", kind)

    # fidelity with another run's classifier reads that classifier's index of the type
    clf = TypeClassifier(["aaa", kind], dim=8)
    with torch.no_grad():
        clf.head[1].weight.zero_()
        clf.head[1].bias.copy_(torch.tensor([-9.0, 9.0]))  # always the second type
    save_model(tmp_path / "clf.safetensors", clf, {"types": ["aaa", kind], "dim": 8})
    write_peptide_fasta(tmp_path / "s.fasta", [Peptide("GLKKLLK", kind), Peptide("KWKLFKK", kind)])
    model, clf_path = str(run / "model.safetensors"), str(tmp_path / "clf.safetensors")
    cfg = EvaluateConfig(model=model, classifier=clf_path, out=str(tmp_path / "eval"))
    result = evaluate_file(tmp_path / "s.fasta", cfg)
    assert result["per_type"][kind]["conditional_fidelity"] == 1.0


def test_teacher_lm_head_decodes_when_present(tmp_path, peptide_csv, tiny_teacher_dir) -> None:
    import torch
    from peptide_helpers import ESM_VOCAB, tiny_esm_config
    from transformers import EsmForMaskedLM, EsmTokenizer

    from protdistill.config import resolve
    from protdistill.errors import CheckpointError, ConfigError, ModelError
    from protdistill.tasks.peptide.config import PeptideTrainConfig
    from protdistill.tasks.peptide.model import StructDiff
    from protdistill.tasks.peptide.sample import sample_peptides
    from protdistill.tasks.peptide.train import train_structdiff

    mlm_dir = tmp_path / "tiny_mlm"
    torch.manual_seed(0)
    EsmForMaskedLM(tiny_esm_config()).save_pretrained(mlm_dir)
    (mlm_dir / "vocab.txt").write_text("\n".join(ESM_VOCAB) + "\n")
    EsmTokenizer(str(mlm_dir / "vocab.txt")).save_pretrained(mlm_dir)
    data = yaml.safe_load(_config(tmp_path, str(mlm_dir), peptide_csv, 1).read_text())
    data["stages"] = data["stages"][1:]
    data["balance_types"] = True  # the type-balanced sampler in a real training loop too
    data["rounding_loss_weight"] = 0.5  # and the rounding term
    data["model"]["self_condition"] = True  # and self-conditioning
    data["model"]["relative_positions"] = 4  # and relative positions
    data["signal_scale"] = 0.5  # and a noisier schedule
    cfg = resolve(PeptideTrainConfig, None, **data)
    metrics = train_structdiff(cfg)
    (history,) = (tmp_path / "run" / "stages").glob("*/history.json")
    rounding = [row["train_rounding"] for row in json.loads(history.read_text())]
    assert rounding and all(0 < r < 10 for r in rounding)
    assert metrics["decoder_used"] == "lm_head"
    assert 0.0 <= metrics["lm_head_val_accuracy"] <= 1.0
    model = StructDiff.load(tmp_path / "run" / "model.safetensors")
    assert model.net.lm_decoder is not None
    assert model.net.denoiser.self_cond is not None  # the saved bundle keeps the options
    assert model.net.denoiser.relative is not None
    seqs = sample_peptides(model, "amp", 3, length=6, steps=3)
    assert [len(s) for s in seqs] == [6, 6, 6]

    # the same run directory with another network: one line naming what changed, nothing lost
    changes = {"d_model": 24, "self_condition": False, "relative_positions": 0}
    wider = {**data, "model": {**data["model"], **changes}, "signal_scale": 1.0}
    named = (
        "d_model 16 -> 24, self_condition True -> False, relative_positions 4 -> 0, "
        "signal_scale 0.5 -> 1.0"
    )
    with pytest.raises(ConfigError, match=named):
        train_structdiff(resolve(PeptideTrainConfig, None, **wider))
    kept = StructDiff.load(tmp_path / "run" / "model.safetensors")
    assert kept.net.denoiser.self_cond is not None
    (settings,) = (tmp_path / "run" / "stages").glob("*/train_config.json")
    settings.write_text('{"peptide": ')  # a truncated settings file is named, not a traceback
    with pytest.raises(CheckpointError, match="unreadable run settings"):
        train_structdiff(cfg)

    data.update(teacher=tiny_teacher_dir, decoder="lm_head", out=str(tmp_path / "run2"))
    with pytest.raises(ModelError, match="no masked-LM head"):
        train_structdiff(resolve(PeptideTrainConfig, None, **data))


def test_runs_saved_before_position_options_resume_with_absolute_positions(tmp_path) -> None:
    from protdistill.tasks.peptide.config import PeptideTrainConfig
    from protdistill.tasks.peptide.resume_check import check_same_settings

    cfg = PeptideTrainConfig(out=str(tmp_path))
    before = cfg.model.model_dump(mode="json", exclude={"absolute_positions", "relative_positions"})
    (tmp_path / "train_config.json").write_text(json.dumps({"peptide": {"model": before}}))
    check_same_settings(tmp_path, cfg)  # older run: absolute positions, no bias, scale 1
    relative = cfg.model_copy(
        update={"model": cfg.model.model_copy(update={"relative_positions": 8})}
    )
    with pytest.raises(ConfigError, match="relative_positions 0 -> 8"):
        check_same_settings(tmp_path, relative)
    with pytest.raises(ConfigError, match="signal_scale 1.0 -> 0.4"):
        check_same_settings(tmp_path, cfg.model_copy(update={"signal_scale": 0.4}))


def test_resume_refuses_another_diffusion_naming_every_change(tmp_path) -> None:
    from protdistill.tasks.peptide.config import PeptideTrainConfig
    from protdistill.tasks.peptide.resume_check import check_same_settings

    cfg = PeptideTrainConfig(out=str(tmp_path), schedule="sqrt", objective="x0", timesteps=1000)
    saved = {"peptide": cfg.model_dump(mode="json")}
    (tmp_path / "train_config.json").write_text(json.dumps(saved))
    check_same_settings(tmp_path, cfg)
    other = cfg.model_copy(update={"schedule": "cosine", "objective": "eps", "timesteps": 500})
    with pytest.raises(ConfigError) as err:
        check_same_settings(tmp_path, other)
    for change in ("schedule sqrt -> cosine", "objective x0 -> eps", "timesteps 1000 -> 500"):
        assert change in str(err.value)
    assert "signal_scale" not in str(err.value)


def test_shipped_peptide_configs_validate() -> None:
    from pathlib import Path

    from protdistill.config import read_yaml, resolve
    from protdistill.tasks.peptide.config import (
        PeptideTrainConfig,
        SampleConfig,
        command_section,
    )

    root = Path(__file__).resolve().parents[2] / "configs"
    for path in sorted(root.glob("peptide*.yaml")):
        data = read_yaml(path)
        cfg = resolve(PeptideTrainConfig, None, **data)
        sample = resolve(SampleConfig, None, **command_section(data, "sample"))
        assert all(sample.guidance_for(t) >= 0 for t in cfg.types), path
    default = resolve(
        SampleConfig, None, **command_section(read_yaml(root / "peptide.yaml"), "sample")
    )
    assert default.sampler == "ddpm" and default.guidance_for("afp") == 5.0
    shipped = resolve(PeptideTrainConfig, None, **read_yaml(root / "peptide.yaml"))
    built = PeptideTrainConfig()  # the class defaults are the shipped default configuration
    assert (built.schedule, built.stages[0].epochs) == (shipped.schedule, shipped.stages[0].epochs)
    # families name types of the shipped data, so the class default has none
    assert built.model == shipped.model.model_copy(update={"families": {}})
    assert built.model.self_condition and set(shipped.model.families) <= set(shipped.types)
    assert SampleConfig().sampler == shipped.sample.sampler
    assert set(shipped.sample.by_type) <= set(shipped.types)  # own settings name real types


def test_guidance_per_type_from_the_config() -> None:
    from protdistill.config import resolve
    from protdistill.errors import ConfigError
    from protdistill.tasks.peptide.config import SampleConfig

    table = SampleConfig(type="afp", guidance={"amp": 5, "afp": 1.5})
    assert table.guidance_for("afp") == 1.5 and table.guidance_for("amp") == 5.0
    assert SampleConfig(guidance=3).guidance_for("avp") == 3.0
    with pytest.raises(ConfigError, match="no guidance scale for type 'avp'"):
        table.guidance_for("avp")
    # a negative scale is refused when the config is read, in a table as for a single scale
    for bad in ({"amp": 5, "afp": -1}, -1):
        with pytest.raises(ConfigError, match=r"guidance: .*negative guidance \((afp: )?-1\)"):
            resolve(SampleConfig, guidance=bad)


def test_settings_per_type_override_the_shared_ones() -> None:
    from protdistill.config import resolve
    from protdistill.errors import ConfigError
    from protdistill.tasks.peptide.config import SampleConfig

    cfg = SampleConfig(
        guidance={"amp": 3, "avp": 2},
        by_type={"avp": {"sampler": "ddim", "temperature": 0.85, "guidance": 2.5}},
    )
    assert cfg.settings_for("amp") == {"guidance": 3.0, "sampler": "ddpm", "steps": 50,
                                       "temperature": 1.0, "guidance_rescale": 0.0,
                                       "candidates": 1}  # fmt: skip
    assert cfg.settings_for("avp") == {"guidance": 2.5, "sampler": "ddim", "steps": 50,
                                       "temperature": 0.85, "guidance_rescale": 0.0,
                                       "candidates": 1}  # fmt: skip
    assert SampleConfig(by_type={"avp": {"candidates": 3}}).settings_for("avp")["candidates"] == 3
    with pytest.raises(ConfigError, match="by_type"):
        resolve(SampleConfig, by_type={"avp": {"sampler": "euler"}})
    with pytest.raises(ConfigError, match="by_type"):
        resolve(SampleConfig, by_type={"avp": {"guidance_rescale": 2}})
    with pytest.raises(ConfigError, match="candidates"):
        resolve(SampleConfig, by_type={"avp": {"candidates": 0}})


def test_sample_cli_uses_a_types_own_settings_unless_a_flag_says_otherwise(tmp_path) -> None:
    path = _tiny_model(tmp_path, randomise=True)
    config = tmp_path / "sample.yaml"
    own = {"temperature": 3.0, "guidance": 4.0}
    config.write_text(yaml.safe_dump({"model": str(path), "type": "amp", "n": 4, "steps": 2,
                                      "sampler": "ddpm", "by_type": {"amp": own}}))  # fmt: skip

    def run(name: str, *flags: str) -> list[str]:
        res = CliRunner().invoke(app, ["peptide", "sample", *flags, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        peptides, _ = read_peptides(tmp_path / name, max_length=None, deduplicate=False)
        return [p.sequence for p in peptides]

    plain = ["--model", str(path), "--n", "4", "--steps", "2"]
    from_config = run("a.fa", "--config", str(config))
    assert from_config == run("b.fa", *plain, "--temperature", "3", "--guidance", "4")
    overridden = run("c.fa", "--config", str(config), "--guidance", "0")
    assert overridden == run("d.fa", *plain, "--temperature", "3", "--guidance", "0")
    assert overridden != from_config


def _tiny_model(tmp_path, randomise: bool = False):  # noqa: ANN001, ANN202 - Path -> Path
    import torch

    from protdistill.tasks.peptide.denoiser import DenoiserConfig
    from protdistill.tasks.peptide.diffusion import GaussianDiffusion
    from protdistill.tasks.peptide.model import StructDiff, StructDiffNet

    cfg = DenoiserConfig(embed_dim=8, d_model=16, layers=1, heads=2, num_types=1, max_length=9)
    model = StructDiff(StructDiffNet(cfg, 16), GaussianDiffusion(20), ["amp"], {"amp": {5: 1}})
    gen = torch.Generator().manual_seed(0)
    for param in model.net.parameters() if randomise else ():  # untrained outputs are zero
        param.data = torch.randn(param.shape, generator=gen) * 0.5
    return model.save(tmp_path / "model.safetensors")


def test_command_section_reads_train_and_plain_yaml() -> None:
    from protdistill.tasks.peptide.config import command_section

    train_yaml = {"out": "runs/x", "types": ["amp"], "sample": {"n": 5}}
    assert command_section(train_yaml, "sample") == {"n": 5, "model": "runs/x/model.safetensors"}
    assert command_section(train_yaml, "evaluate") == {"model": "runs/x/model.safetensors"}
    assert command_section({"n": 3, "type": "afp"}, "sample") == {"n": 3, "type": "afp"}
    # keys a sample file shares with training (model, out, teacher) do not make it a train file
    plain = {"model": "m.safetensors", "out": "s.fasta", "teacher": "t", "n": 2}
    assert command_section(plain, "sample") == plain
    assert command_section({"model": {"d_model": 8}, "stages": []}, "sample") == {}


def test_sample_without_a_named_teacher_says_how_to_project(tmp_path) -> None:
    path = _tiny_model(tmp_path)
    base = ["peptide", "sample", "--model", str(path), "--n", "2", "--steps", "2"]
    res = CliRunner().invoke(app, [*base, "--project-below", "0.4", "--out", "a.fasta"])
    assert res.exit_code != 0
    message = str(res.exception) + res.output
    assert "does not name its teacher" in message and "--project-below 0" in message
    fasta = tmp_path / "b.fasta"
    res = CliRunner().invoke(app, [*base, "--out", str(fasta)])  # projection is off by default
    assert res.exit_code == 0, res.output
    peps, _ = read_peptides(fasta, max_length=None, deduplicate=False)
    assert [len(p.sequence) for p in peps] == [5, 5]
    interval = [*base, "--guidance-interval", "0.2", "0.7", "--out", str(tmp_path / "c.fasta")]
    res = CliRunner().invoke(app, interval)
    assert res.exit_code == 0, res.output
    assert len(read_peptides(tmp_path / "c.fasta", max_length=None)[0]) == 2
    res = CliRunner().invoke(
        app, [*base, "--guidance-interval", "0.7", "0.2", "--out", str(tmp_path / "d.fa")]
    )
    assert res.exit_code != 0 and "guidance interval" in str(res.exception) + res.output
    assert not (tmp_path / "d.fa").exists()


def test_sample_cli_best_of_m_names_the_missing_teacher(tmp_path) -> None:
    path = _tiny_model(tmp_path)  # its meta names no teacher
    out = tmp_path / "x.fa"
    args = ["peptide", "sample", "--model", str(path), "--n", "2", "--steps", "2",
            "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(app, [*args, "--candidates", "2"])
    assert res.exit_code != 0 and not out.exists()
    message = str(res.exception)  # the CLI entry point prints it as one line
    assert "does not name its teacher" in message and "--candidates 1" in message
    assert CliRunner().invoke(app, args).exit_code == 0 and out.exists()
