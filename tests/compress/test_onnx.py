"""ONNX export of PPI students: ONNX Runtime gives PyTorch's numbers at any batch and length; INT8
stays close and is smaller; corrupt, mismatched or missing files are one-line errors; predict,
screen and compress run through ONNX Runtime like through PyTorch."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from protdistill.cli.main import app
from protdistill.errors import CheckpointError, ConfigError, InputError, ModelError
from protdistill.students.outputs import symmetric_combine
from protdistill.tasks.ppi.export.onnx import export_onnx, graph_paths, load_onnx_student
from protdistill.tasks.ppi.run.student import load_student
from tests.compress.conftest import pair_batch, tiny_student


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model, cfg = tiny_student()
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(model, {"student": cfg}, out)
    return model, out


def _batch(batch: int, la: int, lb: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    ta = torch.randint(1, 21, (batch, la), generator=g)
    tb = torch.randint(1, 21, (batch, lb), generator=g)
    ma, mb = torch.ones_like(ta, dtype=torch.bool), torch.ones_like(tb, dtype=torch.bool)
    ma[0, la // 2 + 1 :] = False  # padding on one row
    return ta * ma, ma, tb, mb


@settings(max_examples=12, deadline=None)
@given(
    batch=st.integers(1, 5),
    la=st.integers(1, 130),
    lb=st.integers(1, 130),
    seed=st.integers(0, 10_000),
)
def test_onnx_equals_pytorch_at_any_batch_and_length(exported, batch, la, lb, seed) -> None:
    model, out = exported
    onnx_model, _ = load_onnx_student(out)
    ta, ma, tb, mb = _batch(batch, la, lb, seed)
    with torch.no_grad():
        ref = model(ta, ma, tb, mb)
        got = onnx_model(ta, ma, tb, mb)
        torch.testing.assert_close(got.logits, ref.logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got.features, ref.features, atol=1e-3, rtol=1e-4)
        emb = onnx_model.embed(ta, ma)
        torch.testing.assert_close(emb, model.embed(ta, ma), atol=1e-4, rtol=1e-4)
        features = symmetric_combine(emb, onnx_model.embed(tb, mb))
        torch.testing.assert_close(onnx_model.head(features), ref.logits, atol=1e-4, rtol=1e-4)


def test_int8_export_is_close_and_smaller(ppi_run, tmp_path) -> None:
    from protdistill.api.export import export_model

    manifest = export_model(ppi_run, tmp_path / "q.onnx", int8=True, calibration=2)
    export_model(ppi_run, tmp_path / "f.onnx")
    assert manifest["int8"] is True
    q, meta = load_student(tmp_path / "q.onnx")
    f, _ = load_student(tmp_path / "f.onnx")
    assert meta["onnx"]["int8"] and meta["ppi"]["max_residues"] == 64
    assert q.size_mb < f.size_mb / 2  # int8 weights (+ per-channel scales) vs float32
    ta, ma, tb, mb = pair_batch()
    diff = (q(ta, ma, tb, mb).probability - f(ta, ma, tb, mb).probability).abs().max()
    assert 0 < diff < 0.1  # quantized (not a copy of fp32), yet close


def test_corrupt_mismatched_and_missing_files_are_clear_errors(exported, tmp_path) -> None:
    model, out = exported
    paths = graph_paths(out)
    folder = tmp_path / "copy"
    folder.mkdir()
    for p in filter(Path.exists, paths.values()):
        (folder / p.name).write_bytes(p.read_bytes())
    copied = graph_paths(folder / "model.onnx")
    data = bytearray(copied["encoder"].read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    copied["encoder"].write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its manifest") as err:
        load_onnx_student(copied["pair"])
    assert "encoder.onnx" in str(err.value) and "\n" not in str(err.value)
    copied["encoder"].write_bytes(paths["head"].read_bytes())  # a valid graph, the wrong one
    with pytest.raises(ModelError, match="does not match its manifest"):
        load_onnx_student(copied["pair"])
    copied["manifest"].write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt manifest"):
        load_onnx_student(copied["pair"])
    copied["manifest"].write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not a protdistill-onnx"):
        load_onnx_student(copied["pair"])
    with pytest.raises(InputError, match="no ONNX export manifest"):
        load_onnx_student(tmp_path / "nothing.onnx")


def test_export_refuses_to_overwrite_and_non_siamese_students(exported, tmp_path) -> None:
    model, out = exported
    with pytest.raises(InputError, match="output exists"):
        export_onnx(model, {}, out)
    interaction, cfg = tiny_student("interaction")
    with pytest.raises(ModelError, match="per-protein embeddings"):
        export_onnx(interaction, {"student": cfg}, tmp_path / "i.onnx")
    assert not (tmp_path / "i.onnx").exists()


def test_export_finishes_its_own_cut_off_export_but_not_a_foreign_file(exported, tmp_path) -> None:
    model, _ = exported
    foreign = tmp_path / "f.onnx"
    foreign.write_bytes(b"someone else's graph")
    with pytest.raises(InputError, match="another export"):
        export_onnx(model, {}, foreign)
    assert foreign.read_bytes() == b"someone else's graph"
    out = tmp_path / "cut.onnx"
    export_onnx(model, {}, out)
    paths = graph_paths(out)
    whole = {name: paths[name].read_bytes() for name in ("pair", "encoder", "head")}
    paths["manifest"].unlink()  # cut off before its manifest: the marker written first remains
    paths["unfinished"].write_text("{}")
    paths["head"].write_bytes(b"torn")
    export_onnx(model, {}, out)
    assert {name: paths[name].read_bytes() for name in whole} == whole
    assert paths["manifest"].exists() and not paths["unfinished"].exists()
    load_onnx_student(out)


def test_cli_export_predict_and_screen_through_onnx(ppi_run, tmp_path) -> None:
    runner = CliRunner()
    pairs, fasta = ppi_run.parent / "pairs.tsv", ppi_run.parent / "seqs.fasta"
    out = tmp_path / "m.onnx"
    res = runner.invoke(app, ["export", str(ppi_run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    again = runner.invoke(app, ["export", str(ppi_run), "--out", str(out)])
    assert isinstance(again.exception, InputError) and "--overwrite" in str(again.exception)
    for flag, model, name in (("--model", ppi_run, "t.tsv"), ("--onnx", out, "o.tsv")):
        args = ["ppi", "predict", flag, str(model), "--pairs", str(pairs), "--fasta", str(fasta)]
        res = runner.invoke(app, [*args, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
    torch_rows = (tmp_path / "t.tsv").read_text().splitlines()
    onnx_rows = (tmp_path / "o.tsv").read_text().splitlines()
    assert len(onnx_rows) == len(torch_rows) == 81
    for a, b in zip(torch_rows[1:], onnx_rows[1:], strict=True):
        assert a.split("\t")[:2] == b.split("\t")[:2]
        assert abs(float(a.split("\t")[2]) - float(b.split("\t")[2])) < 1e-5
    hits = {}
    for flag, model in (("--model", ppi_run), ("--onnx", out)):
        dest = tmp_path / f"hits{flag}.tsv.gz"
        args = ["ppi", "screen", flag, str(model), "--fasta", str(fasta), "--out", str(dest)]
        assert runner.invoke(app, [*args, "--top-k", "3"]).exit_code == 0
        rows = gzip.decompress(dest.read_bytes()).decode().splitlines()[1:]
        hits[flag] = [r.split("\t") for r in rows]
    assert [r[:2] for r in hits["--onnx"]] == [r[:2] for r in hits["--model"]]
    res = runner.invoke(app, ["ppi", "predict", "--pairs", str(pairs), "--fasta", str(fasta),
                              "--out", str(tmp_path / "x.tsv")])  # fmt: skip
    assert isinstance(res.exception, ConfigError) and "--onnx" in str(res.exception)


def test_compress_report_times_onnx_stages_and_names_a_default(ppi_run, tmp_path) -> None:
    from protdistill.api.compress import compress_model
    from protdistill.compress.config import CompressConfig

    cfg = CompressConfig(
        model=str(ppi_run), out=str(tmp_path / "c"), method=["prune", "quantize"], onnx=True,
        finetune_steps=2, batch_size=8, calibration_batches=2, bench_batch=4, bench_repeats=2,
    )  # fmt: skip
    report = compress_model(cfg)
    steps = [s["step"] for s in report["stages"]]
    assert steps == ["original", "prune", "quantize", "onnx fp32 (prune)", "onnx int8 (prune)"]
    rows = {s["step"]: s for s in report["stages"]}
    assert rows["onnx int8 (prune)"]["size_mb"] < rows["onnx fp32 (prune)"]["size_mb"] / 2
    # the same weights, BatchNorm folded into the convolutions by the exporter
    assert rows["onnx fp32 (prune)"]["weights"] == pytest.approx(rows["prune"]["weights"], rel=0.05)
    assert rows["onnx fp32 (prune)"]["metrics"]["aupr"] == pytest.approx(
        rows["prune"]["metrics"]["aupr"], abs=1e-6
    )
    assert report["chosen"]["step"] in steps and report["chosen"]["reason"]
    assert (tmp_path / "c" / "onnx" / "int8.onnx.json").exists()


def test_factorised_head_screens_through_onnx_as_in_pytorch(tmp_path) -> None:
    from protdistill.students import build_student
    from protdistill.tasks.ppi.screen.blocks import SiameseScorer

    cfg = {"kind": "resnet1d", "embed_dim": 8, "channels": [8, 12], "head": "factorised",
           "head_width": 5}  # fmt: skip
    torch.manual_seed(3)
    model = build_student(cfg).eval()
    export_onnx(model, {"student": cfg}, tmp_path / "f.onnx")
    served, _ = load_onnx_student(tmp_path / "f.onnx")
    ta, ma, tb, mb = _batch(4, 30, 21, 0)
    with torch.no_grad():
        z = [model.embed(ta, ma)[i] for i in range(4)] + [model.embed(tb, mb)[i] for i in range(4)]
        ours = SiameseScorer(model, z, 2**20)
        theirs = SiameseScorer(served, z, 2**20)
        idx = torch.arange(8)
        assert torch.allclose(ours(idx, idx), theirs(idx, idx), atol=1e-4)
        pair = served(ta, ma, tb, mb).logits
        assert torch.allclose(pair, model(ta, ma, tb, mb).logits, atol=1e-4)
