"""Structured pruning, INT8 quantization, low rank, manifests and the `compress` pipeline."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from protdistill.compress.lowrank import LowRankLinear, choose_rank, factorize_model
from protdistill.compress.prune import find_groups, prune_model
from protdistill.compress.quantize import (
    QuantConv1d,
    QuantLinear,
    fold_batchnorm,
    quantize_model,
    quantize_weight,
)
from protdistill.errors import ConfigError, ModelError
from tests.compress.conftest import pair_batch, tiny_esm, tiny_student


def _n(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _logits(model, batch):
    with torch.no_grad():
        return model(*batch).logits


# ----------------------------------------------------------------------------- pruning
def test_prune_resnet_removes_channels_and_units():
    model, _ = tiny_student()
    batch = pair_batch()
    names = [g.name for g in find_groups(model, lambda m: m(*batch))]
    assert names == ["encoder.blocks.0.conv1", "encoder.blocks.1.conv1", "head.classifier.0"]
    pruned = copy.deepcopy(model)
    groups = prune_model(pruned, 0.5, run_example=lambda m: m(*batch))
    assert groups["encoder.blocks.1.conv1"] == {"before": 24, "after": 12}
    block = pruned.encoder.blocks[1]
    assert block.conv1.weight.shape == (12, 16, 5)
    assert block.bn1.num_features == 12 and block.conv2.weight.shape == (24, 12, 5)
    assert (
        pruned.head.classifier[0].out_features == 8 and pruned.head.classifier[3].in_features == 8
    )
    assert _n(pruned) < 0.7 * _n(model)
    assert _logits(pruned, batch).shape == (6, 2)


def test_prune_zero_ratio_is_exact_and_l1_keeps_strong_units():
    model, _ = tiny_student()
    batch = pair_batch()
    same = copy.deepcopy(model)
    prune_model(same, 0.0, run_example=lambda m: m(*batch))
    torch.testing.assert_close(_logits(same, batch), _logits(model, batch))
    # a dead hidden unit (zero outgoing weight) is the first to go and changes nothing
    with torch.no_grad():
        model.head.classifier[3].weight[:, :8] = 0
    pruned = copy.deepcopy(model)
    prune_model(pruned, 0.5, run_example=lambda m: m(*batch), skip=["encoder"])
    assert pruned.head.classifier[0].out_features == 8
    torch.testing.assert_close(_logits(pruned, batch), _logits(model, batch))


def test_prune_without_example_does_not_cross_mask_multiplications():
    model, _ = tiny_student()
    # no shapes known: the mask product cannot be proven channel-wise, so only the MLP is found
    assert [g.name for g in find_groups(model)] == ["head.classifier.0"]


def test_taylor_importance_prunes_and_uses_gradients():
    model, _ = tiny_student()
    batch = pair_batch()
    labels = torch.tensor([0, 1, 0, 1, 1, 0])

    def loss(m):
        return nn.functional.cross_entropy(m(*batch).logits, labels)

    pruned = copy.deepcopy(model)
    prune_model(
        pruned, 0.5, importance="taylor", loss_batches=[loss], run_example=lambda m: m(*batch)
    )
    assert pruned.encoder.blocks[0].conv1.out_channels == 8
    assert all(p.grad is None for p in pruned.parameters())
    with pytest.raises(ConfigError, match="taylor"):
        prune_model(copy.deepcopy(model), 0.5, importance="taylor")


def test_prune_esm_heads_and_ffn():
    model = tiny_esm()
    ids = torch.randint(4, 24, (2, 12))
    pruned = copy.deepcopy(model)
    groups = prune_model(pruned, 0.5)
    assert groups["encoder.layer.0.attention.heads"] == {"before": 4, "after": 2}
    attn = pruned.encoder.layer[0].attention
    assert attn.self.query.out_features == 16 and attn.self.num_attention_heads == 2
    assert attn.output.dense.in_features == 16
    assert pruned.encoder.layer[1].intermediate.dense.out_features == 32
    assert _n(pruned) < _n(model)
    with torch.no_grad():
        out = pruned(input_ids=ids).last_hidden_state
    assert out.shape == (2, 12, 32) and torch.isfinite(out).all()


def test_prune_unsupported_model_names_layers():
    with pytest.raises(ModelError, match="Embedding"):
        prune_model(nn.Sequential(nn.Embedding(5, 4)), 0.5)


# ----------------------------------------------------------------------------- quantization
@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 9),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 1000),
)
def test_quantize_weight_error_within_half_step(rows, cols, scale, seed):
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * scale
    q, s = quantize_weight(w)
    assert q.dtype == torch.int8 and q.abs().max() <= 127
    err = (q.float() * s[:, None] - w).abs()
    assert (err <= s[:, None] / 2 + 1e-6 * scale).all()


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_quantize_resnet_int8_and_close(backend):
    model, _ = tiny_student()
    batch = pair_batch()
    q = copy.deepcopy(model)
    summary = quantize_model(q, run_batches=lambda m: m(*batch), backend=backend)
    assert len(summary["conv"]) == 7 and len(summary["linear"]) == 2
    assert "encoder.blocks.0.conv1" in summary["folded_batchnorm"]
    assert isinstance(q.encoder.blocks[0].bn1, nn.Identity)
    assert isinstance(q.encoder.blocks[0].conv1, QuantConv1d)
    dtypes = {t.dtype for k, t in q.state_dict().items() if k.endswith("qweight")}
    assert dtypes == {torch.int8}
    assert not any(isinstance(m, (nn.Linear, nn.Conv1d)) for m in q.modules())
    ref, out = _logits(model, batch), _logits(q, batch)
    assert (out - ref).abs().max() < 0.05 * ref.abs().max() + 0.02


def test_fold_batchnorm_is_exact():
    model, _ = tiny_student()
    batch = pair_batch()
    folded = copy.deepcopy(model)
    assert len(fold_batchnorm(folded)) == 4
    torch.testing.assert_close(_logits(folded, batch), _logits(model, batch), atol=1e-5, rtol=1e-4)


def test_quantize_esm_linear_dynamic():
    model = tiny_esm()
    ids = torch.randint(4, 24, (2, 12))
    q = copy.deepcopy(model)
    summary = quantize_model(q)
    assert "encoder.layer.0.attention.self.query" in summary["linear"]
    assert isinstance(q.encoder.layer[0].attention.self.query, QuantLinear)
    with torch.no_grad():
        ref = model(input_ids=ids).last_hidden_state
        out = q(input_ids=ids).last_hidden_state
    cos = nn.functional.cosine_similarity(ref.flatten(), out.flatten(), dim=0)
    assert cos > 0.99


def test_quantize_errors_name_the_layer():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(ModelError, match="'0' \\(Conv2d\\)"):
        quantize_model(model)
    conv = nn.Sequential(nn.Conv1d(3, 4, 3, padding=1, padding_mode="circular"))
    with pytest.raises(ModelError, match="padding_mode"):
        quantize_model(conv, run_batches=lambda m: m(torch.randn(1, 3, 8)))
    with pytest.raises(ModelError, match="calibration"):
        quantize_model(nn.Sequential(nn.Conv1d(3, 4, 3)))
    with pytest.raises(ModelError, match="Embedding"):
        quantize_model(nn.Sequential(nn.Embedding(4, 3)))


def test_quantize_skip_keeps_layer_float():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(16, 2))
    quantize_model(model, skip=["0"])
    assert isinstance(model[0], nn.Conv2d) and isinstance(model[2], QuantLinear)


# ----------------------------------------------------------------------------- low rank
def test_lowrank_full_rank_exact_and_energy():
    torch.manual_seed(0)
    lin = nn.Linear(40, 30)
    x = torch.randn(5, 40)
    full = LowRankLinear.from_linear(lin, 30)
    torch.testing.assert_close(full(x), lin(x), atol=1e-4, rtol=1e-4)
    with torch.no_grad():  # rank-3 weight: 0.999 energy needs exactly 3
        lin.weight.copy_(torch.randn(30, 3) @ torch.randn(3, 40))
    assert choose_rank(lin.weight, energy=0.999) == 3
    model = nn.Sequential(lin, nn.ReLU(), nn.Linear(30, 2))
    done = factorize_model(model, energy=0.999, min_params=100)
    assert done == {"0": {"in": 40, "out": 30, "rank": 3}}
    assert isinstance(model[0], LowRankLinear) and _n(model[0]) == 3 * 70 + 30
    torch.testing.assert_close(
        model[0](x), nn.functional.linear(x, lin.weight, lin.bias), atol=1e-4, rtol=1e-4
    )
    with pytest.raises(ConfigError):
        factorize_model(model, rank=2, energy=0.5)
    with pytest.raises(ModelError, match="Conv1d"):
        factorize_model(nn.Sequential(nn.Conv1d(2, 2, 1)), rank=1)


# ----------------------------------------------------------------------------- pipeline
def test_config_enforces_order():
    from protdistill.compress.config import CompressConfig
    from protdistill.config import resolve

    assert resolve(CompressConfig, method="prune,quantize").method == ["prune", "quantize"]
    with pytest.raises(ConfigError, match="quantize last"):
        resolve(CompressConfig, method="quantize,prune")
    with pytest.raises(ConfigError, match="unknown method"):
        resolve(CompressConfig, method="prune,zip")


def test_compress_ppi_run_end_to_end(ppi_run, tmp_path):
    from protdistill.api.compress import compress_model as compress
    from protdistill.compress.artifact import load_compressed
    from protdistill.compress.config import CompressConfig
    from protdistill.config import resolve
    from protdistill.tasks.ppi.run.evaluate import predict_file
    from protdistill.tasks.ppi.run.student import load_student

    out = tmp_path / "small"
    cfg = resolve(
        CompressConfig,
        model=str(ppi_run),
        out=str(out),
        method="prune,lowrank,quantize",
        finetune_steps=3,
        rank=4,
        lowrank_min_params=100,
        batch_size=8,
        calibration_batches=2,
        bench_batch=4,
        bench_repeats=2,
    )
    report = compress(cfg)
    assert [s["step"] for s in report["stages"]] == ["original", "prune", "lowrank", "quantize"]
    stages = {s["step"]: s for s in report["stages"]}
    assert stages["prune"]["weights"] < stages["original"]["weights"]
    assert stages["quantize"]["size_mb"] < stages["original"]["size_mb"] / 2
    assert 0 <= stages["quantize"]["metrics"]["aupr"] <= 1
    assert stages["original"]["speedup"] == stages["original"]["cpu_speedup"] == 1.0
    assert stages["quantize"]["cpu_ms"] > 0
    assert report["reload_max_abs_diff"] < 1e-5
    manifest = json.loads((out / "compression_manifest.json").read_text())
    assert [s["method"] for s in manifest["steps"]] == ["prune", "lowrank", "quantize"]
    assert manifest["modules"]["encoder.blocks.0.conv1"]["type"] == "QuantConv1d"
    assert json.loads((out / "compression_report.json").read_text())["stages"]
    # the PPI loader picks the manifest up: predict works on the compressed directory
    model, meta = load_student(out)
    assert meta["ppi"]["max_residues"] == 64
    again, _ = load_compressed(out)
    batch = pair_batch()
    torch.testing.assert_close(_logits(model, batch), _logits(again, batch))
    n = predict_file(
        out, ppi_run.parent / "pairs.tsv", ppi_run.parent / "seqs.fasta", tmp_path / "pred.tsv"
    )
    assert n == 80
    # the run's split travels with the compressed model (re-compressing keeps the same test set)
    assert (out / "split.json").read_text() == (ppi_run / "split.json").read_text()


def test_compress_cli_and_tampered_manifest(ppi_run, tmp_path):
    from typer.testing import CliRunner

    from protdistill.cli.main import app
    from protdistill.compress.artifact import load_compressed
    from protdistill.errors import CheckpointError

    out = tmp_path / "q"
    result = CliRunner().invoke(
        app,
        [
            "compress",
            str(ppi_run),
            "--out",
            str(out),
            "--method",
            "quantize",
            "--bench-batch",
            "4",
            "--bench-repeats",
            "1",
            "--calibration-batches",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "quantize" in result.output and (out / "model.safetensors").exists()
    manifest = json.loads((out / "compression_manifest.json").read_text())
    manifest["modules"].pop("encoder.blocks.0.conv1")
    (out / "compression_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="do not match"):
        load_compressed(out)


def test_compress_esm_directory(tmp_path):
    from transformers import EsmTokenizer

    from protdistill.api.compress import compress_model as compress
    from protdistill.compress.artifact import load_compressed
    from protdistill.compress.config import CompressConfig
    from protdistill.config import resolve

    model = tiny_esm()
    src = tmp_path / "esm"
    model.save_pretrained(src)
    vocab = [
        "<cls>",
        "<pad>",
        "<eos>",
        "<unk>",
        *"LAGVSERTIDPKQNFYMHWCXBUZO",
        ".",
        "-",
        "<null_1>",
        "<mask>",
    ]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    EsmTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(src)
    fasta = tmp_path / "s.fasta"
    fasta.write_text("".join(f">s{i}\n{'ACDEFGHIKLMNPQRSTVWY'[i:] * 2}\n" for i in range(10)))
    cfg = resolve(
        CompressConfig,
        model=str(src),
        out=str(tmp_path / "o"),
        fasta=str(fasta),
        method="prune,quantize",
        finetune_steps=2,
        batch_size=4,
        bench_batch=2,
        bench_repeats=1,
    )
    report = compress(cfg)
    final = report["stages"][-1]
    assert final["metrics"]["cosine_to_original"] > 0.5
    reloaded, meta = load_compressed(tmp_path / "o")
    assert isinstance(reloaded.encoder.layer[0].attention.self.query, QuantLinear)
    assert reloaded.encoder.layer[0].attention.self.num_attention_heads == 2
    assert meta["compression"]["steps"][0]["method"] == "prune"


def test_compress_small_esm_pt_file(tmp_path):
    from protdistill.api.compress import compress_model as compress
    from protdistill.compress.artifact import load_compressed
    from protdistill.compress.config import CompressConfig
    from protdistill.config import resolve
    from protdistill.students.small_esm import save_small_esm

    model = tiny_esm()
    pt = save_small_esm(tmp_path / "student.pt", model, {"layers": [0, 1]})
    fasta = tmp_path / "s.fasta"
    fasta.write_text("".join(f">s{i}\n{'MKTAYIAKQRQISFVKSHFSRQ'[i:] * 2}\n" for i in range(10)))
    cfg = resolve(
        CompressConfig,
        model=str(pt),
        out=str(tmp_path / "o"),
        fasta=str(fasta),
        method="quantize",
        bench_batch=2,
        bench_repeats=1,
    )
    report = compress(cfg)
    assert report["stages"][-1]["metrics"]["cosine_to_original"] > 0.99
    assert report["stages"][-1]["size_mb"] < report["stages"][0]["size_mb"]
    reloaded, _ = load_compressed(tmp_path / "o")
    ids = torch.randint(4, 24, (2, 9))
    with torch.no_grad():
        ref = model(input_ids=ids).last_hidden_state
        out = reloaded(input_ids=ids).last_hidden_state
    assert nn.functional.cosine_similarity(ref.flatten(), out.flatten(), dim=0) > 0.99
