"""Scores a screen ranks by, beyond the probability: specificity and calibration.

- ``profile(b)``: the mean and spread of protein b's logits against a reference set of proteins
  (a seeded sample of the proteome): how high b scores with *anybody* — the degree a model has
  learned from sequence.
- ``specificity(a -> b) = (logit(a, b) - mean(b)) / sd(b)``: how far this pair stands above b's
  usual scores, in standard deviations (a per-candidate z). Ranked by it, hubs stop filling every
  protein's list, since every candidate is judged against its own scores.
- ``prior_shift``: a probability trained at prior pi_train, re-stated for a prior pi (Bayes: add
  logit(pi) - logit(pi_train) to the logit). Order is unchanged; the numbers mean what they say at
  the interactome's real share of interacting pairs (roughly 1 in several hundred, not 1 in 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

Scorer = Callable[[Tensor, Tensor], Tensor]


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def prior_shift(train_prior: float, prior: float | None) -> float:
    """What to add to a logit so its sigmoid is the probability at ``prior`` (0 when ``None``)."""
    if prior is None:
        return 0.0
    return logit(prior) - logit(min(max(train_prior, 1e-6), 1 - 1e-6))


def reference_set(cols: Tensor, size: int, seed: int = 0) -> Tensor:
    """At most ``size`` of ``cols`` (a seeded sample, sorted; all of them when they fit)."""
    if len(cols) <= size:
        return cols
    g = torch.Generator().manual_seed(seed)
    return cols[torch.randperm(len(cols), generator=g)[:size]].sort().values


@torch.inference_mode()
def profile(
    scorer: Scorer, proteins: Tensor, reference: Tensor, side: int
) -> tuple[Tensor, Tensor]:
    """((P,) mean, (P,) standard deviation) of each protein's logits against ``reference``
    (itself left out), in row blocks of ``side``."""
    means, sds = [], []
    for s in range(0, len(proteins), side):
        rows = proteins[s : s + side]
        logits = torch.cat(
            [scorer(rows, reference[c : c + side]) for c in range(0, len(reference), side)], dim=1
        ).double()
        keep = rows[:, None] != reference[None, :]
        n = keep.sum(1).clamp(min=1)
        mean = (logits * keep).sum(1) / n
        var = (((logits - mean[:, None]) * keep) ** 2).sum(1) / n
        means.append(mean.float())
        sds.append(var.sqrt().float())
    if not means:
        return torch.zeros(0), torch.zeros(0)
    return torch.cat(means), torch.cat(sds)


def specificity(logits: Tensor, mean_cols: Tensor, sd_cols: Tensor) -> Tensor:
    """(R, C) logits as z-scores of each column protein's own logits (a new tensor)."""
    return (logits - mean_cols[None, :]).div_(sd_cols.clamp(min=1e-6)[None, :])
