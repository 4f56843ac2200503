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


def stage_residues(student: nn.Module, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-residue features of a ResNet-1D pair student (a read-out hook on
    ``student.encoder.stages``; the pair head is not used): every stage's output repeated back to
    residue resolution and concatenated, ``(B, sum C_i, L)``, zero on padding."""
    length = tokens.shape[1]
    encoder = student.encoder
    parts = [
        x.repeat_interleave(stride, dim=2)[..., :length]
        for (x, _), stride in zip(encoder.stages(tokens, mask), encoder.strides, strict=True)
    ]
    return torch.cat(parts, 1) * mask[:, None, :]


def residue_dim(student: nn.Module) -> int:
    """Width of the per-residue features a :class:`SiteStudent` reads from ``student``: its
    ``residues`` (interaction student) or its stages (ResNet-1D)."""
    if hasattr(student, "residues"):
        return int(student.embedding_dim)
    if hasattr(getattr(student, "encoder", None), "stages"):
        return int(sum(student.encoder.stage_dims))
    raise TypeError(f"{type(student).__name__} has no per-residue features for a site head")


class SiteStudent(nn.Module):
    """A pair student (``encoder``) read per residue (:func:`residue_dim`) + a :class:`SiteHead`."""

    def __init__(self, encoder: nn.Module, hidden: int = 64) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = SiteHead(residue_dim(encoder), hidden)

    def residues(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if hasattr(self.encoder, "residues"):
            return self.encoder.residues(tokens, mask)
        return stage_residues(self.encoder, tokens, mask)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` tokens and mask -> ``(B, L)`` site logits (padding: -1e4)."""
        logits = self.head(self.residues(tokens, mask))
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
