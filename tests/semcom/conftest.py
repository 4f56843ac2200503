"""Tiny Europarl-like corpus and a tiny trained DeepSC teacher shared by the semcom tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

WORDS = (
    "the council commission parliament report vote debate member state union policy budget "
    "european proposal question agreement market country citizen right"
).split()


def make_corpus(root: Path, n: int = 48, seed: int = 0) -> Path:
    """Write a Europarl-style file: markup lines and paragraphs of several sentences."""
    gen = torch.Generator().manual_seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["<CHAPTER ID=1>", "Opening of the session", '<SPEAKER ID=1 NAME="President">']
    para = []
    for i in range(n):
        k = int(torch.randint(4, 9, (1,), generator=gen))
        idx = torch.randint(0, len(WORDS), (k,), generator=gen).tolist()
        words = [WORDS[j] for j in idx]
        para.append(" ".join(words).capitalize() + ".")
        if i % 3 == 2:
            lines += [" ".join(para), "<P>"]
            para = []
    lines.append(" ".join(para))
    (root / "ep-00-01-01.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("europarl"))


@pytest.fixture(scope="session")
def tiny_teacher(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2+2-layer, width-16 DeepSC trained for one epoch; returns its teacher.pt."""
    from protdistill.tasks.semcom.train import SemcomTrainConfig, train_teacher

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("teacher")
    cfg = SemcomTrainConfig(
        corpus=str(corpus),
        output_path=str(out),
        max_sentences=None,
        vocab_size=64,
        d_model=16,
        n_heads=2,
        d_ff=32,
        enc_layers=2,
        dec_layers=2,
        symbol_dim=4,
        epochs=1,
        batch_size=16,
        val_sentences=8,
        progress=False,
    )
    return train_teacher(cfg).path
