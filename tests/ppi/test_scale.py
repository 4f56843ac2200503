"""Scale-out on Lightning DDP with 2 CPU processes (gloo): sharded teacher caching equals the
single-process cache, DDP training runs and learns, and 2 x batch B/2 gives the gradient of
1 x batch B on the first step."""

from __future__ import annotations

import gzip
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from protdistill.distill.parallel import Ranks
from protdistill.testing import first_step_gradient, screen_rank

CLI = [sys.executable, "-m", "protdistill"]
TINY = {
    "batch_size": 8, "progress": False, "head_epochs": 20, "head_crossfit": 2,
    "tokens_per_batch": 512, "epochs": 4, "lr": 0.01,
}  # fmt: skip


@pytest.mark.parametrize("world", [1, 2, 3])
def test_rank_shares_are_disjoint_cover_everything_and_balance_cost(world):
    items = [f"s{i}" * (i % 7 + 1) for i in range(20)]
    shares = [Ranks(r, world).share(items, cost=len) for r in range(world)]
    assert sorted(x for s in shares for x in s) == sorted(items)
    assert all(s == sorted(s, key=len, reverse=True) for s in shares)  # longest first
    costs = [sum(map(len, s)) for s in shares]
    assert max(costs) - min(costs) <= max(map(len, items))


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _cache_tensors(cache_dir: Path) -> dict[str, torch.Tensor]:
    out = {}
    for shard in sorted(cache_dir.glob("embed-*/shard-*.safetensors")):
        out.update(load_file(shard))
    return out


@pytest.mark.slow
def test_two_rank_cache_equals_one_rank_and_ddp_training_learns(
    tmp_path, ppi_files, tiny_teacher_dir
):
    pairs, fasta = ppi_files
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("".join(f"{k}: {v}\n" for k, v in TINY.items()))
    common = ["--pairs", str(pairs), "--fasta", str(fasta), "--teacher", tiny_teacher_dir,
              "--split", "random", "--config", str(cfg), "--accelerator", "cpu"]  # fmt: skip
    _cli(["ppi", "embed", *common, "--out", "one", "--cache", "c1"], tmp_path)
    # a "killed" 2-rank build: some entries already cached, the rest computed in two shares
    _cli(["ppi", "embed", *common, "--out", "part", "--cache", "c2", "--max-pairs", "10"], tmp_path)
    before = len(_cache_tensors(tmp_path / "c2"))
    shards_before = len(list(tmp_path.glob("c2/embed-*/shard-*")))
    proc = _cli(
        ["ppi", "run", *common, "--out", "two", "--cache", "c2", "--devices", "2"], tmp_path
    )
    one, two = _cache_tensors(tmp_path / "c1"), _cache_tensors(tmp_path / "c2")
    assert 0 < before < len(two) and one.keys() == two.keys()
    assert all(torch.allclose(one[k].float(), two[k].float(), atol=1e-5) for k in one)
    assert len(list(tmp_path.glob("c2/embed-*/shard-*"))) == shards_before + 2  # one per rank
    assert "MEMBER: 2/2" in proc.stderr
    history = json.loads((tmp_path / "two" / "student" / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    n_train = len(json.loads((tmp_path / "two" / "split.json").read_text())["train"])
    per_rank = -(-n_train // 2)  # DistributedSampler pads to equal shares
    assert history[0]["step"] == -(-per_rank // TINY["batch_size"])
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["student"]["n"] == metrics["teacher"]["n"] > 0


def _residue_tensors(cache_dir: Path) -> dict[str, torch.Tensor]:
    out = {}
    for shard in sorted(cache_dir.glob("residues-*/shard-*.safetensors")):
        out.update(load_file(shard))
    return out


@pytest.mark.slow
def test_two_rank_pretrain_shares_the_teacher_pass_and_trains_a_backbone(
    tmp_path, tiny_teacher_dir
):
    import random

    rng = random.Random(4)
    aa = "ACDEFGHIKLMNPQRSTVWY"
    fasta = tmp_path / "transfer.fasta"
    fasta.write_text("".join(f">T{i}\n{''.join(rng.choices(aa, k=rng.randint(20, 90)))}\n"
                             for i in range(40)))  # fmt: skip
    cfg = tmp_path / "pre.yaml"
    cfg.write_text(
        "batch_size: 8\nprogress: false\ntokens_per_batch: 512\nmax_residues: 32\n"
        "transfer_cap: 48\nstudent: {kind: resnet1d, channels: [8, 8, 12], embed_dim: 8}\n"
        "residue_stages: [1, 2]\nepochs: 3\nval_fraction: 0.2\nlr: 0.01\n"
    )
    common = ["ppi", "pretrain", "--fasta", str(fasta), "--teacher", tiny_teacher_dir,
              "--config", str(cfg), "--accelerator", "cpu"]  # fmt: skip
    _cli([*common, "--out", "one", "--cache", "c1"], tmp_path)
    proc = _cli([*common, "--out", "two", "--cache", "c2", "--devices", "2"], tmp_path)
    assert "MEMBER: 2/2" in proc.stderr
    one, two = _residue_tensors(tmp_path / "c1"), _residue_tensors(tmp_path / "c2")
    assert len(one) == 40 and one.keys() == two.keys()
    assert all(torch.allclose(one[k].float(), two[k].float(), atol=1e-3) for k in one)
    assert len(list(tmp_path.glob("c2/residues-*/shard-*"))) == 2  # one shard per rank
    history = json.loads((tmp_path / "two" / "train" / "history.json").read_text())
    n_train = json.loads((tmp_path / "two" / "report.json").read_text())["train_proteins"]
    per_rank = math.ceil(n_train / 2)  # DistributedSampler pads to equal shares
    assert history[0]["step"] == math.ceil(per_rank / 8)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert (tmp_path / "two" / "backbone.safetensors").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_with_half_batches_match_one_rank_with_the_full_batch(tmp_path):
    first_step_gradient(0, 1, 0, str(tmp_path), batch=16)
    torch.multiprocessing.spawn(
        first_step_gradient, args=(2, _free_port(), str(tmp_path), 8), nprocs=2, join=True
    )
    one = torch.load(tmp_path / "grad1.pt", weights_only=True)
    two = torch.load(tmp_path / "grad2.pt", weights_only=True)
    assert one.abs().sum() > 0 and torch.allclose(one, two, atol=1e-6)


def _screen_two_ranks(model_path, fasta, out, die_after=None, **kw) -> None:
    options = {"model": str(model_path), "fasta": str(fasta), "out": str(out), **kw}
    args = (2, _free_port(), options, die_after)
    torch.multiprocessing.spawn(screen_rank, args=args, nprocs=2, join=True)


def _text(path: Path) -> str:
    with gzip.open(path, "rt") as fh:
        return fh.read()


def _proteome(tmp_path):
    import random

    from protdistill.io.fasta import write_fasta

    rng = random.Random(1)
    aa = "ACDEFGHIKLMNPQRSTVWY"
    seqs = {f"P{i:02d}": "".join(rng.choices(aa, k=rng.randint(5, 90))) for i in range(37)}
    seqs["P36"] = seqs["P35"]  # identical proteins: exact ties in the top-K
    return write_fasta(tmp_path / "proteome.fasta", seqs)


def _student(tmp_path, head: str = "mlp"):
    from protdistill.distill.checkpoint import save_model
    from protdistill.students import build_student

    torch.manual_seed(0)
    cfg = {"kind": "resnet1d", "channels": [8, 8, 8, 8], "embed_dim": 8, "hidden": 16,
           "head": head}  # fmt: skip
    model = build_student(cfg).eval()
    return save_model(tmp_path / "student.safetensors", model, {"student": cfg})


@pytest.mark.slow
@pytest.mark.parametrize("head,rank_by", [("mlp", "probability"), ("factorised", "specificity")])
def test_two_rank_screen_equals_one_rank_and_a_killed_rank_resumes(tmp_path, head, rank_by):
    from protdistill.tasks.ppi.screen.screening import ScreenConfig, screen

    model, fasta = _student(tmp_path, head), _proteome(tmp_path)
    kw = {"top_k": 5, "threshold": 0.5, "block": 8, "rank_by": rank_by}
    out = {name: tmp_path / f"{name}.tsv.gz" for name in ("one", "two", "three")}
    screen(ScreenConfig(model=str(model), fasta=str(fasta), out=str(out["one"]),
                        progress=False, **kw))  # fmt: skip
    _screen_two_ranks(model, fasta, out["two"], **kw)
    one = _text(out["one"])
    assert _text(out["two"]) == one and len(one.splitlines()) > 37
    # the last rank dies after committing one row block; the re-run finishes the grid
    with pytest.raises(Exception):  # noqa: B017 (a spawned rank died)
        _screen_two_ranks(model, fasta, out["three"], die_after=1, **kw)
    parts = tmp_path / "three.parts"
    assert (parts / "topk-rank1-of-2.safetensors").exists() and not out["three"].exists()
    _screen_two_ranks(model, fasta, out["three"], **kw)
    assert _text(out["three"]) == one and not parts.exists()
    summary = json.loads((tmp_path / "three.summary.json").read_text())
    assert 0 < summary["pairs_scored_this_run"] < summary["pairs_total"]
