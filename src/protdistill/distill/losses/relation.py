"""Relation KD: pairwise similarity and RKD distance / angle structure of a batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from protdistill.distill.losses.common import (
    EPS,
    as_mask,
    zero_loss,
)
from protdistill.errors import ModelError


def _check_rows(student: Tensor, teacher: Tensor, loss: str) -> None:
    if student.dim() != 2 or teacher.dim() != 2 or student.shape[0] != teacher.shape[0]:
        raise ModelError(
            f"expected (B, D) student and teacher, got {tuple(student.shape)} and "
            f"{tuple(teacher.shape)}",
            record=loss,
            fix="pool per-residue features to one vector per sample first",
        )


def _select_rows(student: Tensor, teacher: Tensor, mask: Tensor | None, loss: str):
    _check_rows(student, teacher, loss)
    if mask is None:
        return student, teacher
    mask = as_mask(mask, student.shape[:1], loss)
    return student[mask], teacher[mask]


def similarity_kd(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """MSE between in-batch cosine-similarity matrices ``(B, B)`` of ``(B, Ds)`` and ``(B, Dt)``.

    Widths may differ (only the ``B × B`` relations are compared). ``mask`` ``(B,)`` drops samples.
    """
    student, teacher = _select_rows(student, teacher, mask, "similarity_kd")
    if student.shape[0] == 0:
        return zero_loss(student, teacher)
    s = F.normalize(student, dim=-1, eps=1e-8)
    t = F.normalize(teacher, dim=-1, eps=1e-8)
    return F.mse_loss(s @ s.T, t @ t.T)


def _pairwise_distances(x: Tensor) -> Tensor:
    x = x - x.mean(0, keepdim=True)  # centring keeps the Gram trick accurate far from the origin
    sq = x.pow(2).sum(-1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * x @ x.T).clamp_min(EPS)
    return d2.sqrt() * (1.0 - torch.eye(len(x), dtype=x.dtype, device=x.device))


def rkd_distance(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """RKD distance loss (Park et al. 2019) on ``(B, Ds)`` / ``(B, Dt)`` embeddings.

    Pairwise Euclidean distances, each set divided by its mean off-diagonal distance, compared
    with smooth-L1 over the ``B(B−1)`` off-diagonal pairs. 0 when fewer than 2 valid samples.
    """
    student, teacher = _select_rows(student, teacher, mask, "rkd_distance")
    b = student.shape[0]
    if b < 2:
        return zero_loss(student, teacher)
    off = ~torch.eye(b, dtype=torch.bool, device=student.device)
    ds, dt = _pairwise_distances(student)[off], _pairwise_distances(teacher)[off]
    ds = ds / ds.mean().clamp_min(EPS)
    dt = dt / dt.mean().clamp_min(EPS)
    return F.smooth_l1_loss(ds, dt)


def _angles(x: Tensor) -> Tensor:
    e = F.normalize(
        x[None, :, :] - x[:, None, :], dim=-1, eps=1e-8
    )  # (B, B, D): e[j, i] = x_i - x_j
    return e @ e.transpose(1, 2)  # (B, B, B): cos of the angle at anchor j between i and k


def rkd_angle(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """RKD angle loss (Park et al. 2019): smooth-L1 between cosines of the angles ∠(x_i, x_j, x_k).

    Taken over all triplets of distinct samples; 0 when fewer than 3 valid samples.
    """
    student, teacher = _select_rows(student, teacher, mask, "rkd_angle")
    b = student.shape[0]
    if b < 3:
        return zero_loss(student, teacher)
    idx = torch.arange(b, device=student.device)
    distinct = (
        (idx[:, None, None] != idx[None, :, None])
        & (idx[:, None, None] != idx[None, None, :])
        & (idx[None, :, None] != idx[None, None, :])
    )
    return F.smooth_l1_loss(_angles(student)[distinct], _angles(teacher)[distinct])
