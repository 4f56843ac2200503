"""Scores a screen ranks by, beyond the probability: hubness, specificity and calibration.

- ``hubness(x)``: the mean of protein x's ``k`` highest logits against a reference set of proteins
  (CSLS, Conneau et al. 2018: how much x scores high with *everyone*, the degree a model has
  learned from sequence).
- ``specificity(a, b) = logit(a, b) - (hubness(a) + hubness(b)) / 2``: a pair that stands out from
  what either protein scores with anybody. Ranked by it, hubs stop filling every protein's list.
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
def hubness(scorer: Scorer, proteins: Tensor, reference: Tensor, k: int, side: int) -> Tensor:
    """(len(proteins),) mean of each protein's ``k`` highest logits against ``reference``
    (itself left out), in row blocks of ``side``."""
    out = []
    for s in range(0, len(proteins), side):
        rows = proteins[s : s + side]
        logits = torch.cat(
            [scorer(rows, reference[c : c + side]) for c in range(0, len(reference), side)], dim=1
        )
        logits = logits.masked_fill(rows[:, None] == reference[None, :], -torch.inf)
        kk = min(k, max(1, len(reference) - 1))
        top = logits.topk(kk, dim=1).values
        out.append(top.masked_fill(~torch.isfinite(top), torch.nan).nanmean(1))
    return torch.cat(out) if out else torch.zeros(0)


def specificity(logits: Tensor, hub_rows: Tensor, hub_cols: Tensor) -> Tensor:
    """(R, C) logits less the mean hubness of each pair's two proteins."""
    return logits - (hub_rows[:, None] + hub_cols[None, :]) / 2
