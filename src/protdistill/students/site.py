"""Per-residue binding-site heads: on a student's residue encoder (``residues(tokens, mask)`` ->
``(B, C, L)``), and a site loss that masks padding and mixes labels with a teacher's soft targets.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SiteHead(nn.Module):
    """``(B, C, L)`` residue features -> ``(B, L)`` site logits (two 1x1 convolutions: the
    context comes from the encoder; a residue's logit depends on its own features only)."""

    def __init__(self, channels: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.GELU(), nn.Conv1d(hidden, 1, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)[:, 0]


class SiteStudent(nn.Module):
    """A residue encoder (any module with ``residues``) plus a :class:`SiteHead`."""

    def __init__(self, encoder: nn.Module, hidden: int = 64) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = SiteHead(encoder.embedding_dim, hidden)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` tokens and mask -> ``(B, L)`` site logits (padding: -1e4)."""
        logits = self.head(self.encoder.residues(tokens, mask))
        return logits.masked_fill(~mask, -1e4)


def site_kd_loss(
    logits: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor | None = None,
    teacher_probs: torch.Tensor | None = None,
    *,
    alpha: float = 0.5,
    pos_weight: float = 1.0,
) -> torch.Tensor:
    """Masked site loss: ``alpha`` x BCE to the teacher's probabilities + ``1 - alpha`` x
    class-weighted BCE to the labels (positives weighted ``pos_weight``), mean over real residues.

    Padding (``mask`` False) contributes nothing, whatever its logits or targets hold."""
    if labels is None and teacher_probs is None:
        raise ValueError("site_kd_loss needs labels, teacher_probs or both")
    weight = mask.float()
    total = weight.sum().clamp(min=1)
    loss = logits.new_zeros(())
    a = alpha if labels is not None and teacher_probs is not None else float(labels is None)
    safe = logits.masked_fill(~mask, 0.0)
    if teacher_probs is not None and a > 0:
        soft = teacher_probs.float().masked_fill(~mask, 0.5)
        loss = loss + a * (F.binary_cross_entropy_with_logits(safe, soft, reduction="none")
                           * weight).sum() / total  # fmt: skip
    if labels is not None and a < 1:
        target = labels.float().masked_fill(~mask, 0.0)
        per = F.binary_cross_entropy_with_logits(
            safe, target, reduction="none", pos_weight=torch.tensor(pos_weight)
        )
        loss = loss + (1 - a) * (per * weight).sum() / total
    return loss
