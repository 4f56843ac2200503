"""Pair maps that use binding sites: the student's pairing map plus the outer combination of the
two site profiles, ``M[i, j] = s_a[i] + s_b[j] + weight * z(P)[i, j]`` (``s``: site logits,
``z(P)``: the pairing map logits z-scored over the pair). The same function on both sides and a
pairing map with ``P(B, A) = P(A, B)^T`` make ``M(B, A) = M(A, B)^T``. ``weight`` is fixed or
chosen on training complexes (:func:`choose_weight`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def combine(
    site_a: torch.Tensor, site_b: torch.Tensor, pairing: torch.Tensor | None, weight: float = 1.0
) -> torch.Tensor:
    """``(La, Lb)`` combined map from ``(La,)``, ``(Lb,)`` site logits and ``(La, Lb)`` pairing
    logits (``None`` or ``weight`` 0: the sites alone)."""
    out = site_a.float()[:, None] + site_b.float()[None, :]
    if pairing is None or weight == 0:
        return out
    p = pairing.float()
    return out + weight * (p - p.mean()) / p.std().clamp(min=1e-8)


def choose_weight(
    score: Callable[[torch.Tensor, int], float],
    build: Callable[[int, float], torch.Tensor],
    train: Sequence[int],
    weights: Sequence[float] = WEIGHTS,
) -> float:
    """The pairing weight with the best mean ``score(map, index)`` over training complexes."""
    means = [np.nanmean([score(build(i, w), i) for i in train]) for w in weights]
    return float(weights[int(np.nanargmax(means))])
