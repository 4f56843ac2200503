"""Typed outputs of the pair students."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class PairOutput:
    """Output of a pair classifier.

    logits: (B, 2) class logits (index 1 = interacting).
    features: (B, F) the symmetric pair representation fed to the classifier.
    interaction_map: (B, La, Lb) residue-pair logits, or None for models without a map.
    mask_a, mask_b: (B, La), (B, Lb) True on real residues of the map's rows / columns.
    embedding_a, embedding_b: (B, D) pooled protein embeddings (what feature KD aligns with the
        teacher's per-protein embeddings).
    """

    logits: torch.Tensor
    features: torch.Tensor
    interaction_map: torch.Tensor | None = None
    mask_a: torch.Tensor | None = None
    mask_b: torch.Tensor | None = None
    embedding_a: torch.Tensor | None = None
    embedding_b: torch.Tensor | None = None

    @property
    def probability(self) -> torch.Tensor:
        """(B,) probability of interaction."""
        return self.logits.softmax(-1)[:, 1]


def symmetric_combine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[a + b, |a - b|, a * b]``: (B, D) x 2 -> (B, 3D), invariant to swapping a and b."""
    return torch.cat([a + b, (a - b).abs(), a * b], dim=-1)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over positions of (B, D, L) features where ``mask`` (B, L) is True -> (B, D)."""
    return x.masked_fill(~mask[:, None, :], torch.finfo(x.dtype).min).amax(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over positions of (B, D, L) features where ``mask`` (B, L) is True -> (B, D)."""
    m = mask[:, None, :].to(x.dtype)
    return (x * m).sum(-1) / m.sum(-1).clamp(min=1)


def masked_pool(x: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """``"max"``, ``"mean"`` or ``"max+mean"`` (their sum: the width stays D) over the positions
    where ``mask`` is True; padding never contributes."""
    if kind == "max":
        return masked_max(x, mask)
    if kind == "mean":
        return masked_mean(x, mask)
    return masked_max(x, mask) + masked_mean(x, mask)


class PairHead(nn.Module):
    """LayerNorm -> Linear -> GELU -> Dropout -> Linear: pair features (B, F) -> logits (B, 2).

    The LayerNorm matters: ``a * b`` of max-pooled conv features reaches the hundreds, and without
    it every hidden ReLU of the old head died within two epochs on Guo yeast (constant output).
    ``classifier`` keeps the Linear/act/Linear chain that structured pruning finds.
    """

    def __init__(self, in_features: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_features)
        self.classifier = nn.Sequential(
            nn.Linear(in_features, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 2)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.norm(features))
