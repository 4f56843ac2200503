"""A tiny random ESM-2 teacher saved as a local directory, and a handful of labelled pairs."""

from __future__ import annotations

import random

import pytest


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory) -> str:
    from protdistill.testing import save_tiny_esm

    return save_tiny_esm(tmp_path_factory.mktemp("tiny_esm"), emb_layer_norm_before=False)


@pytest.fixture()
def ppi_files(tmp_path):
    """24 proteins and 60 labelled pairs; positives share a motif so there is signal to learn."""
    rng = random.Random(0)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    seqs = {
        f"P{i}": "".join(rng.choice(letters) for _ in range(rng.randint(20, 60))) for i in range(24)
    }
    for i in range(0, 24, 2):
        seqs[f"P{i}"] = "WWCCWW" + seqs[f"P{i}"]
    fasta = tmp_path / "seqs.fasta"
    fasta.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    pairs, seen = [], set()
    while len(pairs) < 60:
        a, b = rng.sample(range(24), 2)
        if frozenset((a, b)) in seen:
            continue
        seen.add(frozenset((a, b)))
        pairs.append(f"P{a}\tP{b}\t{int(a % 2 == 0 and b % 2 == 0)}")
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("protein_a\tprotein_b\tlabel\n" + "\n".join(pairs) + "\n")
    return tsv, fasta
