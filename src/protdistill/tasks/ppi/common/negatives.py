"""Degree-matched negatives (Bernett et al. 2024's sampler) for data whose negatives are not.

When a data set's negatives are drawn uniformly (Guo, most user data) while its positives
concentrate on hubs, "how often does this protein appear as a positive" alone separates the
classes, and a model learns hub-likeness instead of partners. Drawing *both* ends of every
negative from the multiset of proteins in the positive pairs gives each protein, in expectation,
as many negatives as positives: degree no longer predicts the label.
"""

from __future__ import annotations

import random

from protdistill.errors import ConfigError
from protdistill.io.pairs import Pair


def degree_negatives(
    positives: list[Pair], n: int, *, seed: int, known: set[frozenset[str]]
) -> list[Pair]:
    """``n`` distinct negative pairs whose ends are drawn from the proteins of ``positives``
    with probability proportional to their positive degree; never a self pair, never a pair in
    ``known`` (every known interaction, whatever its split)."""
    ends = sorted(p for pair in positives for p in (pair.a, pair.b))
    rng = random.Random(seed)
    seen: set[frozenset[str]] = set()
    out: list[Pair] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ConfigError(
                f"could draw only {len(out)} of {n} degree-matched negatives: the positive "
                "pairs leave too few unseen protein pairs",
                record="negatives",
                fix="use --negatives given for this data set",
            )
        a, b = rng.choice(ends), rng.choice(ends)
        key = frozenset((a, b))
        if a == b or key in known or key in seen:
            continue
        seen.add(key)
        out.append(Pair(a, b, 0.0))
    return out


def with_degree_negatives(
    split: dict[str, list[Pair]], known: set[frozenset[str]], seed: int
) -> dict[str, list[Pair]]:
    """``split`` with the negatives of train and val replaced by degree-matched ones drawn from
    each side's own positives (as many as it had; the test split is left as given)."""
    out = dict(split)
    for offset, name in enumerate(("train", "val")):
        pos = [p for p in split[name] if p.label == 1]
        n_neg = sum(1 for p in split[name] if p.label != 1)
        neg = degree_negatives(pos, n_neg, seed=seed + offset, known=known)
        out[name] = pos + neg
    return out
