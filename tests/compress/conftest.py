"""Tiny models and a tiny trained-looking PPI run directory for the compression tests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

from protdistill.testing import tiny_esm  # noqa: E402,F401 (used by the tests)

AA = "ACDEFGHIKLMNPQRSTVWY"


def tiny_student(kind: str = "resnet1d"):
    from protdistill.students import build_student

    torch.manual_seed(0)
    extra = {"channels": [16, 24], "hidden": 16, "embed_dim": 8} if kind == "resnet1d" else {}
    if kind == "interaction":
        extra = {"channels": 16, "layers": 2, "map_dim": 8, "hidden": 16, "embed_dim": 8}
    model = build_student({"kind": kind, **extra})
    # non-trivial BatchNorm statistics and weights
    tokens = torch.randint(1, 21, (8, 40))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(tokens, mask, tokens.flip(0), mask)
    return model.eval(), {"kind": kind, **extra}


def pair_batch(n: int = 6, length: int = 30, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ta = torch.randint(1, 21, (n, length), generator=g)
    tb = torch.randint(1, 21, (n, length + 7), generator=g)
    ma, mb = ta != 0, tb != 0
    ma[0, length - 5 :] = False
    ta[0, length - 5 :] = 0
    return ta, ma, tb, mb


@pytest.fixture()
def ppi_run(tmp_path: Path) -> Path:
    """A run directory like `ppi run` writes: student.safetensors, split.json, FASTA, pairs."""
    from protdistill.distill.checkpoint import save_model
    from protdistill.io.pairs import Pair
    from protdistill.tasks.ppi.common.data import save_split

    rng = random.Random(0)
    seqs = {f"P{i}": "".join(rng.choice(AA) for _ in range(rng.randint(20, 50))) for i in range(40)}
    fasta = tmp_path / "seqs.fasta"
    fasta.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    ids = sorted(seqs)
    pairs = [
        Pair(ids[i % 40], ids[(i % 40 + 1 + 5 * (i // 40)) % 40], float(i % 2)) for i in range(80)
    ]
    (tmp_path / "pairs.tsv").write_text("".join(f"{p.a}\t{p.b}\t{int(p.label)}\n" for p in pairs))
    split = {"train": list(range(0, 56)), "val": list(range(56, 64)), "test": list(range(64, 80))}
    run = tmp_path / "run"
    run.mkdir()
    save_split(run / "split.json", pairs, split)
    model, student_cfg = tiny_student()
    meta = {
        "student": student_cfg,
        "ppi": {"max_residues": 64, "fasta": str(fasta), "pairs": str(tmp_path / "pairs.tsv")},
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    save_model(run / "student.safetensors", model, meta)
    return run
