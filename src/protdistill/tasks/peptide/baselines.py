"""Baselines that need no learning: shuffled training peptides, position-specific composition."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import numpy as np

from protdistill.alphabet import AMINO_ACIDS


def sample_lengths(training: Sequence[str], n: int, rng: random.Random) -> list[int]:
    """``n`` lengths drawn from the empirical length distribution of ``training``."""
    lengths = [len(s) for s in training]
    return [rng.choice(lengths) for _ in range(n)]


def shuffled_baseline(training: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """Residue-shuffled copies of ``n`` randomly drawn training peptides (composition kept)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        letters = list(rng.choice(list(training)))
        rng.shuffle(letters)
        out.append("".join(letters))
    return out


def position_profile(
    training: Sequence[str], max_length: int, pseudocount: float = 0.01
) -> np.ndarray:
    """Per-position amino-acid frequencies ``(max_length, 20)`` with a small pseudocount."""
    counts = np.full((max_length, 20), pseudocount)
    index = {a: i for i, a in enumerate(AMINO_ACIDS)}
    for s in training:
        for pos, c in enumerate(s[:max_length]):
            if c in index:
                counts[pos, index[c]] += 1
    return counts / counts.sum(1, keepdims=True)


def profile_baseline(
    training: Sequence[str], n: int, seed: int = 0, length: int | None = None
) -> list[str]:
    """Sample each position independently from the training peptides' position profile."""
    rng = random.Random(seed)
    max_length = max(len(s) for s in training)
    profile = position_profile(training, max_length)
    lengths = [length] * n if length else sample_lengths(training, n, rng)
    gen = np.random.default_rng(seed)
    letters = np.array(list(AMINO_ACIDS))
    return [
        "".join(letters[[gen.choice(20, p=profile[min(i, max_length - 1)]) for i in range(k)]])
        for k in lengths
    ]


def length_distribution(training: Sequence[str]) -> dict[int, int]:
    """``{length: count}`` of the training peptides."""
    return dict(sorted(Counter(len(s) for s in training).items()))
