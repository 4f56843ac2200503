"""General distillation: targets, crops, losses, the transfer set's exclusion of test proteins,
`ppi pretrain` resume, and `--init`."""

from __future__ import annotations

import json
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.pytorch.callbacks import Callback
from typer.testing import CliRunner

from protdistill.cli.main import app
from protdistill.distill.checkpoint import load_model_state
from protdistill.distill.losses import cosine_kd
from protdistill.errors import ConfigError
from protdistill.io.pairs import Pair
from protdistill.students import build_student
from protdistill.tasks.ppi.common.config import PpiConfig
from protdistill.tasks.ppi.common.data import PpiData
from protdistill.tasks.ppi.pretrain import general as pretrain_module
from protdistill.tasks.ppi.pretrain.batches import (
    TargetStats,
    TransferDataset,
    collate_transfer,
    pool_blocks,
    pooled_of,
)
from protdistill.tasks.ppi.pretrain.general import init_from_backbone
from protdistill.tasks.ppi.pretrain.transfer import (
    BLOCK,
    ResidueTargets,
    block_mean,
    build_transfer_set,
    teacher_window,
)
from protdistill.tasks.ppi.run.backbone import run_transfer_set
from protdistill.teachers.cache import sequence_key

runner = CliRunner()
LETTERS = "ACDEFGHIKLMNPQRSTVWY"


def _seq(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(n))


# ---------------------------------------------------------------- losses and targets
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 9), st.integers(2, 8))
def test_cosine_kd_zero_for_identical_and_ignores_padding(b, n, d) -> None:
    x = torch.randn(b, n, d)
    assert float(cosine_kd(x, x.clone())) == pytest.approx(0.0, abs=1e-6)
    mask = torch.zeros(b, n, dtype=torch.bool)
    mask[:, 0] = True
    y = x.clone()
    y[:, 1:] = float("nan")  # padding, whatever its value
    s = x.clone().requires_grad_(True)
    loss = cosine_kd(s, y, mask)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.all(s.grad[:, 1:] == 0)


def test_cosine_kd_is_one_for_orthogonal() -> None:
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    assert float(cosine_kd(a, b)) == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 5))
def test_block_mean_matches_residue_means(n, d) -> None:
    x = torch.randn(n, d)
    blocks = block_mean(x)
    assert blocks.shape == (-(-n // BLOCK), d)
    for j in range(blocks.shape[0]):
        torch.testing.assert_close(blocks[j], x[j * BLOCK : (j + 1) * BLOCK].mean(0))
    # the pooled target of the whole crop is the residue mean, exactly
    torch.testing.assert_close(pooled_of(blocks, n), x.mean(0), rtol=1e-5, atol=1e-5)


def test_pool_blocks_never_mixes_in_padding() -> None:
    blocks = torch.arange(12.0).view(1, 6, 2)
    mask = torch.tensor([[True, True, True, False, False, False]])
    blocks[0, 3:] = 1e6
    pooled, m = pool_blocks(blocks, mask, 4)
    assert m.tolist() == [[True, False]]
    torch.testing.assert_close(pooled[0, 0], blocks[0, :3].mean(0))


def test_teacher_window_is_fixed_on_a_block_and_inside_the_protein() -> None:
    rng = random.Random(1)
    starts = set()
    for _ in range(50):
        seq = _seq(rng, rng.randint(30, 90))
        start = teacher_window(seq, 24)
        assert start == teacher_window(seq, 24) and start % BLOCK == 0
        assert start >= 0 and start + 24 <= len(seq)
        starts.add(start)
    assert len(starts) > 3  # not always the first residues
    assert teacher_window("ACDE", 24) == 0


def _targets(seqs: dict[str, str], dim: int = 3) -> tuple[ResidueTargets, TargetStats]:
    blocks = {k: block_mean(torch.randn(len(s), dim)).half() for k, s in seqs.items()}
    stats = TargetStats(torch.zeros(dim), torch.ones(dim), torch.zeros(dim), torch.ones(dim))
    return ResidueTargets(blocks, dict.fromkeys(seqs, 0), "t", {}), stats


def test_random_crops_cover_long_proteins_and_match_their_targets() -> None:
    seqs = {"long": _seq(random.Random(2), 203)}
    targets, stats = _targets(seqs)
    data = TransferDataset(["long"], seqs, targets, stats, max_residues=32, train=True)
    covered: set[int] = set()
    torch.manual_seed(0)
    for _ in range(300):
        item = data[0]
        n = len(item["tokens"])
        assert 29 <= n <= 32 and item["blocks"].shape == (-(-n // BLOCK), 3)
        # locate the crop by its teacher blocks (they are unique random vectors)
        b0 = next(
            j
            for j in range(targets.blocks["long"].shape[0])
            if torch.equal(targets.blocks["long"][j].float(), item["blocks"][0])
        )
        covered.update(range(b0 * BLOCK, b0 * BLOCK + n))
    assert covered == set(range(203))
    fixed = TransferDataset(
        ["long"], seqs, targets, stats, max_residues=32, train=True, random_crops=False
    )
    torch.testing.assert_close(fixed[0]["blocks"], targets.blocks["long"][:8].float())


def test_collate_pads_blocks_to_the_token_length() -> None:
    seqs = {"a": "ACDEFGHIK", "b": "ACDE"}
    targets, stats = _targets(seqs)
    data = TransferDataset(["a", "b"], seqs, targets, stats, max_residues=16, train=False)
    batch = collate_transfer([data[0], data[1]])
    assert batch["tokens"].shape == (2, 9) and batch["blocks"].shape == (2, 3, 3)
    assert batch["block_mask"].tolist() == [[True, True, True], [True, False, False]]


# ---------------------------------------------------------------- transfer set
def _data_and_split() -> tuple[PpiData, dict[str, list[Pair]]]:
    rng = random.Random(3)
    seqs = {f"P{i}": _seq(rng, 30) for i in range(12)}
    pairs = lambda ids: [Pair(ids[i], ids[i + 1], 1) for i in range(len(ids) - 1)]  # noqa: E731
    split = {
        "train": pairs(["P0", "P1", "P2", "P3", "P4", "P5"]),
        "val": pairs(["P6", "P7"]),
        "test": pairs(["P8", "P9", "P10", "P11"]),
    }
    return PpiData([], seqs, None), split


def test_no_test_protein_leaks_into_the_transfer_set(tmp_path) -> None:
    data, split = _data_and_split()
    # the test proteins also appear in a transfer FASTA, under other names
    other = tmp_path / "other.fasta"
    other.write_text(
        "".join(f">renamed_{k}\n{data.sequences[k]}\n" for k in ("P8", "P9", "P10", "P11"))
        + ">extra\nMKVLAAGICW\n"
    )
    cfg = PpiConfig(pairs="x", fasta="y", transfer_fasta=[str(other)])
    transfer = run_transfer_set(cfg, data, split)
    test_keys = {sequence_key(data.sequences[p]) for p in ("P8", "P9", "P10", "P11")}
    assert not test_keys & set(transfer.sequences)
    assert len(transfer.sequences) == 8 + 1  # train + val + the extra protein
    assert transfer.report["excluded_test_sequences"] == 4 and not transfer.report["transductive"]
    transductive = run_transfer_set(cfg.model_copy(update={"transductive": True}), data, split)
    assert test_keys <= set(transductive.sequences)
    assert transductive.report["transductive"] and transductive.report["transductive_added"] == 4


def test_build_transfer_set_deduplicates_by_sequence(tmp_path) -> None:
    fasta = tmp_path / "a.fasta"
    fasta.write_text(">x\nACDEF\n>y\nACDEF\n>z\nGHIKL\n")
    transfer = build_transfer_set([fasta], exclude=["GHIKL"])
    assert list(transfer.sequences.values()) == ["ACDEF"]
    assert transfer.report["unique_sequences"] == 2 and transfer.report["records_read"] == 3


# ---------------------------------------------------------------- pretrain end to end
class Killed(Exception):
    """Stands for SIGKILL (Lightning turns a KeyboardInterrupt into a graceful stop)."""


class _KillAfterFirstEpoch(Callback):
    def on_train_epoch_end(self, trainer, module) -> None:
        if trainer.current_epoch == 0:
            raise Killed


def _pretrain_args(tmp_path, fasta, teacher, out, exclude) -> list[str]:
    cfg = tmp_path / "pre.yaml"
    cfg.write_text(
        "batch_size: 8\nprogress: false\ntokens_per_batch: 512\nmax_residues: 32\n"
        "transfer_cap: 48\nstudent: {kind: resnet1d, channels: [8, 8, 12], embed_dim: 8}\n"
        "residue_stages: [1, 2]\nepochs: 2\nval_fraction: 0.2\n"
    )
    return ["ppi", "pretrain", "--fasta", str(fasta), "--teacher", teacher, "--out", str(out),
            "--exclude-pairs", str(exclude), "--cache", str(tmp_path / "cache"),
            "--config", str(cfg)]  # fmt: skip


@pytest.fixture()
def transfer_fasta(tmp_path):
    rng = random.Random(4)
    fasta = tmp_path / "transfer.fasta"
    fasta.write_text("".join(f">T{i}\n{_seq(rng, rng.randint(20, 90))}\n" for i in range(30)))
    exclude = tmp_path / "test_pairs.tsv"
    exclude.write_text("T0\tT1\t1\nT2\tT3\t0\n")
    return fasta, exclude


def test_pretrain_resumes_to_the_same_backbone_and_leaves_test_proteins_out(
    tmp_path, transfer_fasta, tiny_teacher_dir, monkeypatch
) -> None:
    fasta, exclude = transfer_fasta
    whole = tmp_path / "whole"
    result = runner.invoke(app, _pretrain_args(tmp_path, fasta, tiny_teacher_dir, whole, exclude))
    assert result.exit_code == 0, result.output
    report = json.loads((whole / "report.json").read_text())
    assert report["transfer"]["proteins"] == 26 and report["epochs"] == 2
    assert report["val"]["val_pooled"] < 1.0  # learnt something of the teacher's direction

    fit = pretrain_module.fit
    calls = []

    def killed_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            kwargs["callbacks"] = [_KillAfterFirstEpoch()]
        return fit(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "fit", killed_once)
    resumed = tmp_path / "resumed"
    args = _pretrain_args(tmp_path, fasta, tiny_teacher_dir, resumed, exclude)
    with pytest.raises(Killed):
        runner.invoke(app, args, catch_exceptions=False)
    assert not (resumed / "backbone.safetensors").exists()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    a, _ = load_model_state(whole / "backbone.safetensors")
    b, _ = load_model_state(resumed / "backbone.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_init_loads_a_backbone_and_refuses_another_architecture(
    tmp_path, transfer_fasta, tiny_teacher_dir
) -> None:
    fasta, exclude = transfer_fasta
    out = tmp_path / "bb"
    result = runner.invoke(app, _pretrain_args(tmp_path, fasta, tiny_teacher_dir, out, exclude))
    assert result.exit_code == 0, result.output
    cfg = {"kind": "resnet1d", "channels": [8, 8, 12], "embed_dim": 8}
    student = build_student(cfg)
    info = init_from_backbone(student, cfg, out)
    for k, v in student.encoder.state_dict().items():
        torch.testing.assert_close(v, info["state"][f"encoder.{k}"])
    other = {"kind": "resnet1d", "channels": [8, 16, 12], "embed_dim": 8}
    with pytest.raises(ConfigError, match="channels"):
        init_from_backbone(build_student(other), other, out)


def test_run_with_transfer_fasta_pretrains_then_reports_it(
    tmp_path, ppi_files, transfer_fasta, tiny_teacher_dir
) -> None:
    pairs, fasta = ppi_files
    extra, _ = transfer_fasta
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "batch_size: 8\nprogress: false\nhead_epochs: 20\nhead_crossfit: 2\n"
        "tokens_per_batch: 512\npretrain_epochs: 1\nresidue_stages: [1, 2]\n"
        "student_config: {channels: [8, 8, 12], embed_dim: 8}\n"
    )
    out = tmp_path / "run"
    args = ["ppi", "run", "--pairs", str(pairs), "--fasta", str(fasta), "--teacher",
            tiny_teacher_dir, "--out", str(out), "--epochs", "1", "--transfer-fasta", str(extra),
            "--config", str(cfg)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    info = json.loads((out / "pretrain.json").read_text())
    split = json.loads((out / "split.json").read_text())
    test_ids = {i for row in split["test"] for i in row[:2]}
    assert info["transfer"]["test_sequences"] == len(test_ids)  # none was in the transfer FASTA
    fit_ids = {i for name in ("train", "val") for row in split[name] for i in row[:2]}
    assert info["transfer"]["proteins"] == 30 + len(fit_ids)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["student"]["general_distillation"]["test_proteins_in_transfer_set"] is False
    assert {"auroc", "aupr"} <= set(metrics["student_head_transplant"])
    cosine = metrics["student"]["embedding_cosine_test_proteins"]
    assert -1 <= cosine["min"] <= cosine["mean"] <= 1 and cosine["n"] == len(test_ids)
    r = metrics["retention"]
    assert ("R_ci95" in r) == (len({row[2] for row in split["test"]}) == 2)
    assert r["prior"] == pytest.approx(sum(row[2] for row in split["test"]) / len(split["test"]))
