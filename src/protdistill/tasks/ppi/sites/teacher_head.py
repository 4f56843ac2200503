"""The teacher site head: a small convolution over the teacher's cached residue states.

``LayerNorm -> Linear(D, h) -> Conv1d(h, h, k) -> GELU -> Linear(h, 1)``: the teacher's states
carry the context, the ``k``-residue convolution lets neighbouring states vote (surface patches).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from protdistill.tasks.ppi.sites.training import predict_logits


class TeacherSiteHead(nn.Module):
    def __init__(self, dim: int, hidden: int = 64, kernel: int = 5, dropout: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        """``(B, L, D)`` states -> ``(B, L)`` site logits (padding: -1e4, never leaks in)."""
        h = self.proj(self.norm(states)) * mask[..., None]
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)
        logits = self.out(self.drop(torch.nn.functional.gelu(h)))[..., 0]
        return logits.masked_fill(~mask, -1e4)


def teacher_probabilities(head: nn.Module, states: Sequence[Tensor]) -> list[Tensor]:
    """Per-chain sigmoid site probabilities of the head (float32), the soft targets of site KD."""
    return [torch.sigmoid(torch.from_numpy(x)) for x in predict_logits(head, states)]
