"""Attention-map and interaction-map KD (maps resized to the student's, masks kept)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from protdistill.distill.losses.common import (
    EPS,
    as_mask,
    masked_mean,
)
from protdistill.errors import ConfigError, ModelError


def attention_kd(
    student_attn: Tensor,
    teacher_attn: Tensor,
    mask: Tensor | None = None,
    mode: Literal["mse", "kl"] = "mse",
    heads: Literal["mean", "match"] = "mean",
) -> Tensor:
    """Distil attention maps ``(B, H, L, L)`` (rows = queries, softmax over keys).

    ``heads="mean"`` averages the heads of each model first (head counts may differ);
    ``"match"`` compares head ``h`` with head ``h``. ``mask`` ``(B, L)``: masked query rows and key
    columns never contribute. ``"mse"`` averages the squared error over valid (query, key) cells;
    ``"kl"`` renormalises each head's row over the valid keys (before any head averaging) and
    averages the row-wise ``KL(teacher ‖ student)`` over valid rows.
    """
    if student_attn.dim() != 4 or teacher_attn.dim() != 4:
        raise ModelError("attention maps must be (B, H, L, L)", record="attention_kd")
    bs, hs, ls, _ = student_attn.shape
    if (bs, ls) != (teacher_attn.shape[0], teacher_attn.shape[2]) or (
        student_attn.shape[-2:] != teacher_attn.shape[-2:]
    ):
        raise ModelError(
            f"student {tuple(student_attn.shape)} vs teacher {tuple(teacher_attn.shape)}",
            record="attention_kd",
            fix="tokenise both models' inputs to the same length",
        )
    if heads not in ("mean", "match"):
        raise ConfigError(
            f"unknown heads {heads!r}", record="attention_kd", fix="'mean' or 'match'"
        )
    if mode not in ("mse", "kl"):
        raise ConfigError(f"unknown mode {mode!r}", record="attention_kd", fix="'mse' or 'kl'")
    if heads == "match" and hs != teacher_attn.shape[1]:
        raise ModelError(
            f"heads='match' needs equal head counts, got {hs} and {teacher_attn.shape[1]}",
            record="attention_kd",
            fix="use heads='mean'",
        )
    if mask is None:
        mask = torch.ones(bs, ls, dtype=torch.bool, device=student_attn.device)
    mask = as_mask(mask, (bs, ls), "attention_kd")
    cells = mask[:, None, :, None] & mask[:, None, None, :]  # (B, 1, L, L)
    s = torch.where(cells, student_attn, 0.0)
    t = torch.where(cells, teacher_attn, 0.0)
    if mode == "kl":  # each head's row becomes a distribution over the valid keys (in float32)
        s, t = s.float(), t.float()
        s = s.clamp_min(0.0) / s.clamp_min(0.0).sum(-1, keepdim=True).clamp_min(EPS)
        t = t.clamp_min(0.0) / t.clamp_min(0.0).sum(-1, keepdim=True).clamp_min(EPS)
    if heads == "mean":
        s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    if mode == "mse":
        return masked_mean((s - t).pow(2), cells.expand_as(s))
    per_row = (t * (t.clamp_min(EPS).log() - s.clamp_min(EPS).log())).sum(-1)
    return masked_mean(per_row, mask[:, None, :].expand_as(per_row))


# --------------------------------------------------------------------------- interaction-map KD


def _resize_mask(mask: Tensor, length: int) -> Tensor:
    """Nearest-neighbour resize of a ``(B, L)`` mask to ``(B, length)``."""
    if mask.shape[1] == length:
        return mask
    return F.interpolate(mask[:, None, :].float(), size=length, mode="nearest")[:, 0] > 0.5


def _resize_map(teacher: Tensor, mask_a: Tensor, mask_b: Tensor, size: tuple[int, int]):
    """Masked bilinear resize: padded cells have no weight. Returns ``(map, support)``."""
    cells = (mask_a[:, :, None] & mask_b[:, None, :])[:, None]
    weights = cells.to(teacher.dtype)
    values = torch.where(cells, teacher[:, None], 0.0)
    kw = {"size": size, "mode": "bilinear", "align_corners": False, "antialias": True}
    num = F.interpolate(values, **kw)[:, 0]
    den = F.interpolate(weights, **kw)[:, 0]
    support = den > 1e-6
    return num / den.clamp_min(1e-6), support


def _spatial_kl(student: Tensor, teacher: Tensor, valid: Tensor, from_logits: bool) -> Tensor:
    """Per-pair KL between the maps normalised to distributions over their valid cells."""
    flat_valid = valid.flatten(1)
    t = torch.where(valid, teacher, 0.0).float().clamp_min(0.0).flatten(1)
    p = t / t.sum(1, keepdim=True).clamp_min(EPS)
    if from_logits:
        x = student.float().flatten(1).masked_fill(~flat_valid, torch.finfo(torch.float32).min)
        log_q = x.log_softmax(1)
    else:
        s = torch.where(valid, student, 0.0).float().clamp_min(0.0).flatten(1)
        log_q = (s / s.sum(1, keepdim=True).clamp_min(EPS)).clamp_min(EPS).log()
    per_cell = torch.xlogy(p, p) - torch.where(flat_valid, p * log_q, 0.0)
    has_cells = flat_valid.any(1)
    return masked_mean(per_cell.sum(1), has_cells)


def map_kd(
    student_map: Tensor,
    teacher_map: Tensor,
    mask_a: Tensor | None = None,
    mask_b: Tensor | None = None,
    mode: Literal["mse", "bce", "kl", "spatial"] = "mse",
    *,
    teacher_mask_a: Tensor | None = None,
    teacher_mask_b: Tensor | None = None,
    from_logits: bool = False,
) -> Tensor:
    """Distil an interaction / contact map ``(B, La, Lb)``; padded rows/columns never contribute.

    ``mask_a`` ``(B, La)`` and ``mask_b`` ``(B, Lb)`` mark the student's valid rows/columns. When
    the teacher map ``(B, La', Lb')`` has another shape it is resized to ``(La, Lb)`` by bilinear
    interpolation (``align_corners=False``, anti-aliased when shrinking) *with its padding masked
    out*: ``resize(t·m) / resize(m)``, so padded teacher cells carry no weight and student cells
    with no valid teacher support are skipped. The teacher masks default to the student masks
    resized by nearest neighbour (right when both maps cover the same padded length at different
    resolutions); pass ``teacher_mask_a/b`` to be exact.

    Modes, averaged over valid cells of the batch: ``"mse"`` squared error; ``"bce"`` binary
    cross-entropy with the teacher value in [0, 1] as a soft target; ``"kl"`` per-cell Bernoulli
    ``KL(t ‖ s)`` (= BCE − H(t), 0 when maps agree). For ``"bce"``/``"kl"`` the student map holds
    probabilities, or logits when ``from_logits=True``.

    ``"spatial"`` compares *where* each map puts its mass, not its level: per pair,
    ``KL(p ‖ q)`` with ``p = t / Σt`` and ``q = s / Σs`` over the valid cells (``q`` is a softmax of
    the logits when ``from_logits=True``), averaged over the pairs that have a valid cell. It is
    invariant to rescaling either map, so a teacher whose contact probabilities are ~0.01
    everywhere still passes on its pattern instead of rewarding a flat student map.
    """
    if student_map.dim() != 3 or teacher_map.dim() != 3 or len(student_map) != len(teacher_map):
        raise ModelError(
            f"expected (B, La, Lb) maps, got {tuple(student_map.shape)} and "
            f"{tuple(teacher_map.shape)}",
            record="map_kd",
        )
    if mode not in ("mse", "bce", "kl", "spatial"):
        raise ConfigError(
            f"unknown mode {mode!r}", record="map_kd", fix="'mse', 'bce', 'kl' or 'spatial'"
        )
    teacher, valid = _aligned(
        student_map, teacher_map, mask_a, mask_b, teacher_mask_a, teacher_mask_b
    )
    if mode == "mse":
        return masked_mean((torch.where(valid, student_map, 0.0) - teacher).pow(2), valid)
    if mode == "spatial":
        return _spatial_kl(student_map, teacher, valid, from_logits)
    return _bernoulli(student_map, teacher, valid, from_logits, kl=mode == "kl")


def _aligned(
    student_map: Tensor,
    teacher_map: Tensor,
    mask_a: Tensor | None,
    mask_b: Tensor | None,
    teacher_mask_a: Tensor | None,
    teacher_mask_b: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """The teacher map on the student's grid (zero off the valid cells) and the valid cells."""
    b, la, lb = student_map.shape
    dev = student_map.device
    ones = torch.ones((), dtype=torch.bool, device=dev)
    mask_a = ones.expand(b, la) if mask_a is None else as_mask(mask_a, (b, la), "map_kd", "mask_a")
    mask_b = ones.expand(b, lb) if mask_b is None else as_mask(mask_b, (b, lb), "map_kd", "mask_b")
    _, ta, tb = teacher_map.shape
    t_mask_a = _resize_mask(mask_a, ta) if teacher_mask_a is None else teacher_mask_a
    t_mask_b = _resize_mask(mask_b, tb) if teacher_mask_b is None else teacher_mask_b
    t_mask_a = as_mask(t_mask_a, (b, ta), "map_kd", "teacher_mask_a")
    t_mask_b = as_mask(t_mask_b, (b, tb), "map_kd", "teacher_mask_b")
    if (ta, tb) == (la, lb):
        teacher, support = teacher_map, t_mask_a[:, :, None] & t_mask_b[:, None, :]
    else:
        teacher, support = _resize_map(teacher_map, t_mask_a, t_mask_b, (la, lb))
    valid = mask_a[:, :, None] & mask_b[:, None, :] & support
    return torch.where(valid, teacher, 0.0), valid


def _bernoulli(
    student_map: Tensor, teacher: Tensor, valid: Tensor, from_logits: bool, *, kl: bool
) -> Tensor:
    """Per-cell BCE with the teacher as a soft target, minus H(t) when ``kl``."""
    t = teacher.float().clamp(0.0, 1.0)  # logs in float32, also under half precision
    if from_logits:
        x = torch.where(valid, student_map, 0.0).float()
        log_s, log_1s = F.logsigmoid(x), F.logsigmoid(-x)
    else:
        s = torch.where(valid, student_map, 0.5).float().clamp(EPS, 1.0 - 1e-7)
        log_s, log_1s = s.log(), (1.0 - s).log()
    per_cell = -(t * log_s + (1.0 - t) * log_1s)
    if kl:
        per_cell = per_cell + torch.xlogy(t, t) + torch.xlogy(1.0 - t, 1.0 - t)
    return masked_mean(per_cell, valid)
