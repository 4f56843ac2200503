"""Relation KD: pairwise similarity and RKD distance / angle structure of a batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from protdistill.distill.losses.common import (
    EPS,
    as_mask,
    check_same_shape,
    check_temperature,
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


def ranking_kd(
    student: Tensor,
    teacher: Tensor,
    mask: Tensor | None = None,
    *,
    temperature: float = 1.0,
    centre_columns: bool = False,
    standardise: bool = False,
) -> Tensor:
    """Listwise KD: per row, KL(softmax(teacher / T) || softmax(student / T)) over its valid
    columns, times T², averaged over rows with at least two valid columns.

    ``student`` / ``teacher``: (R, C) scores of R queries against C candidates; ``mask`` (R, C)
    marks valid entries. A row's loss ignores any constant added to that row (only the order and
    gaps within a row count); ``centre_columns`` subtracts each column's mean over its valid
    entries first, so a candidate's overall level (how much every query likes it) is not taught
    either: what is left is which queries prefer which candidates. ``standardise`` divides both
    by the sd of the teacher's valid (centred) scores first, so a teacher whose scores barely
    vary still gives peaked targets (without it, KL x T² of near-flat softmaxes is about half the
    squared error of the scores, and vanishes with their spread).
    """
    check_same_shape(student, teacher, "ranking_kd", "score the same queries x candidates")
    check_temperature(temperature, "ranking_kd")
    if student.dim() != 2:
        raise ModelError(f"expected (R, C) scores, got {tuple(student.shape)}", record="ranking_kd")
    valid = (
        torch.ones_like(student, dtype=torch.bool)
        if mask is None
        else as_mask(mask, student.shape, "ranking_kd")
    )
    s, t = (torch.where(valid, x, 0.0) for x in (student, teacher))
    if centre_columns:
        count = valid.sum(0, keepdim=True).clamp_min(1)
        s, t = s - s.sum(0, keepdim=True) / count, t - t.sum(0, keepdim=True) / count
    if standardise:
        spread = t[valid].std().detach() if valid.sum() > 1 else t.new_ones(())
        s, t = s / spread.clamp_min(EPS), t / spread.clamp_min(EPS)
    rows = valid.sum(1) >= 2
    if not rows.any():
        return zero_loss(student, teacher)
    log_s = _masked_log_softmax(s[rows] / temperature, valid[rows])
    log_t = _masked_log_softmax(t[rows] / temperature, valid[rows])
    kl = torch.where(valid[rows], log_t.exp() * (log_t - log_s), 0.0).sum(1)
    return kl.mean() * temperature**2


def _masked_log_softmax(x: Tensor, valid: Tensor) -> Tensor:
    """log_softmax over the valid entries of each row (invalid entries: a finite filler)."""
    x = torch.where(valid, x, torch.finfo(x.dtype).min)
    return torch.where(valid, torch.log_softmax(x, dim=1), 0.0)
