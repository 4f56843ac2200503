"""Pair maps that use binding sites: the student's pairing map plus the outer combination of the
two site profiles, ``M[i, j] = s_a[i] + s_b[j] + weight * z(P)[i, j]`` (``s``: site logits,
``z(P)``: the pairing map logits z-scored over the pair). The same function on both sides and a
pairing map with ``P(B, A) = P(A, B)^T`` make ``M(B, A) = M(A, B)^T``. ``weight`` is fixed or
chosen on training complexes (:func:`choose_weight`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from protdistill.errors import InputError
from protdistill.io.contacts import Complex
from protdistill.tasks.ppi.sites.model import load_site_model, site_logits

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


#: Pairing weight of `ppi interfaces` / `ppi explain`. 0 by measurement (benchmarks/sites.py,
#: 2026-12-07): the only pairing map at hand (a Guo-distilled interaction student) ranks DIPS
#: interface residues below random (AUROC 0.46), weight 1 cost every site profile 0.08-0.10
#: AUROC, and the weight chosen on the training folds gave the sites-only figures.
DEFAULT_WEIGHT = 0.0


def site_sources(
    run: str | Path,
    pairing: Callable[[Complex], torch.Tensor] | None,
    weight: float = DEFAULT_WEIGHT,
) -> dict[str, Callable[[Complex], torch.Tensor]]:
    """Map sources of a run trained with ``--sites`` (none without a site model): the site maps
    ``s_a[i] + s_b[j]`` and, with a pairing map and ``weight`` > 0, the combined map."""
    try:
        model, _ = load_site_model(run)
    except InputError:
        return {}

    def profiles(c: Complex) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(site_logits(model, [c.seq_a, c.seq_b]))  # type: ignore[return-value]

    sources = {"student_sites": lambda c: combine(*profiles(c), None)}
    if pairing is not None and weight > 0:
        sources["student_combined"] = lambda c: combine(*profiles(c), pairing(c), weight)
    return sources
