"""Peptide families: conditioning on sub-types found in the training data.

A peptide type such as avp mixes families that share little (cationic peptides of ~20
residues; anionic heptad-repeat peptides of viral fusion proteins, such as T20, of ~35); one
type label asks the denoiser for their average, which is none of them. With
``model.families: {avp: 8}`` the training peptides of avp are split into 8 families by k-means
on their mean teacher embeddings; each family is its own conditioning label (``avp/0`` …
``avp/7``, with its own length distribution), held-out peptides take the nearest family, and
sampling ``avp`` draws the families in their training proportions.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from torch import Tensor

from protdistill.errors import ConfigError
from protdistill.io.peptides import Peptide
from protdistill.tasks.peptide.data import PeptideSplit


def family_label(kind: str, index: int) -> str:
    return f"{kind}/{index}"


def family_split(
    split: PeptideSplit,
    embeddings: Mapping[str, Tensor],
    families: Mapping[str, int],
    seed: int = 0,
) -> tuple[PeptideSplit, dict[str, list[str]]]:
    """``split`` with the peptides of each type in ``families`` relabelled by family, and the
    families of each such type. Centres come from training peptides only."""
    from sklearn.cluster import KMeans  # lazy: scikit-learn start-up, only with families

    labels: dict[tuple[str, str], str] = {}
    named: dict[str, list[str]] = {}
    for kind, k in families.items():
        train = split.sequences("train", kind)
        if kind not in split.types or len(train) < k:
            raise ConfigError(
                f"model.families asks for {k} {kind} families, the training set has "
                f"{len(train)} {kind} peptides",
                record=f"types: {', '.join(split.types)}",
                fix=f"use a type of the data with at least {k} training peptides, or fewer",
            )
        x = _pooled(embeddings, train)
        mean, std = x.mean(0), x.std(0) + 1e-6
        km = KMeans(k, n_init=10, random_state=seed).fit((x - mean) / std)
        held = split.sequences("val", kind)
        found = km.predict((_pooled(embeddings, held) - mean) / std) if held else []
        for seq, j in [*zip(train, km.labels_, strict=True), *zip(held, found, strict=True)]:
            labels[kind, seq] = family_label(kind, int(j))
        named[kind] = [family_label(kind, j) for j in range(k)]

    def relabel(items: list[Peptide]) -> list[Peptide]:
        return [Peptide(p.sequence, labels.get((p.type, p.sequence), p.type)) for p in items]

    types = [f for t in split.types for f in named.get(t, [t])]
    return PeptideSplit(relabel(split.train), relabel(split.val), types), named


def _pooled(embeddings: Mapping[str, Tensor], seqs: list[str]) -> np.ndarray:
    return np.stack([embeddings[s].float().mean(0).numpy() for s in seqs])


def family_counts(n: int, weights: list[int]) -> list[int]:
    """``n`` split in proportion to ``weights`` (largest remainders; sums to ``n``)."""
    share = np.asarray(weights, dtype=float) / max(sum(weights), 1)
    counts = np.floor(share * n).astype(int)
    extra = np.argsort(-(share * n - counts), kind="stable")[: n - int(counts.sum())]
    counts[extra] += 1
    return counts.tolist()
