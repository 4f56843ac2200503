"""Scale-out on Lightning DDP with 2 CPU processes (gloo): sharded teacher caching equals the
single-process cache, DDP training runs and learns, and 2 x batch B/2 gives the gradient of
1 x batch B on the first step."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from protdistill.distill.parallel import Ranks
from protdistill.testing import first_step_gradient

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
