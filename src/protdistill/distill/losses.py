"""Pure distillation losses. Every function returns a scalar tensor.

Conventions shared by all losses:

- Masks are bool tensors, ``True`` = valid item (a real residue, a real sample). Masked items never
  contribute, whatever their values (even ``inf``/``nan``), neither to the value nor to gradients.
- "mean over valid items": the per-item losses are averaged over the valid items of the whole batch
  (not per sample first). With no valid item at all the loss is ``0`` (still attached to the graph).
- The teacher tensors are used as given: pass them detached (a frozen teacher) unless you mean to
  train through them.
- Bad hyper-parameters raise :class:`ConfigError`; mismatched shapes raise :class:`ModelError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from protdistill.errors import ConfigError, ModelError

__all__ = [
    "FeatureProjector",
    "attention_kd",
    "cross_entropy",
    "feature_kd",
    "kd_kl",
    "map_kd",
    "multi_feature_kd",
    "response_kd",
    "rkd_angle",
    "rkd_distance",
    "similarity_kd",
]

_EPS = 1e-12


# --------------------------------------------------------------------------- helpers


def _zero(*tensors: Tensor) -> Tensor:
    """A scalar 0 attached to the graph of ``tensors`` (so ``backward()`` still works)."""
    return sum((t.sum() * 0.0 for t in tensors), torch.zeros((), device=tensors[0].device))


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``values`` over ``mask`` (same shape); 0 when nothing is valid."""
    if mask is None:
        return values.mean()
    total = torch.where(mask, values, 0.0).sum()
    return total / mask.sum().clamp_min(1).to(values.dtype)


def _check_same_shape(student: Tensor, teacher: Tensor, loss: str, fix: str) -> None:
    if student.shape != teacher.shape:
        raise ModelError(
            f"student shape {tuple(student.shape)} != teacher shape {tuple(teacher.shape)}",
            record=loss,
            fix=fix,
        )


def _as_mask(mask: Tensor | None, shape: Sequence[int], loss: str, name: str = "mask") -> Tensor:
    """Validate a padding mask against the item ``shape``; returns a bool tensor."""
    if mask is None:
        raise AssertionError("internal: _as_mask called without a mask")
    if tuple(mask.shape) != tuple(shape):
        raise ModelError(
            f"{name} shape {tuple(mask.shape)} does not match the item shape {tuple(shape)}",
            record=loss,
            fix=f"pass a bool {name} of shape {tuple(shape)} (True = valid)",
        )
    return mask.bool()


def _check_temperature(temperature: float, loss: str) -> None:
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}", record=loss)


# --------------------------------------------------------------------------- response KD


def kd_kl(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """Hinton KD term ``T² · KL(softmax(t/T) ‖ softmax(s/T))``, mean over valid items.

    Logits are ``(B, C)`` or ``(B, L, C)`` (any ``(..., C)``); ``mask`` is ``(B,)`` or ``(B, L)``.
    The T² factor keeps gradient magnitudes roughly independent of T: for ``(B, C)`` logits
    ``∂/∂s = T · (softmax(s/T) − softmax(t/T)) / B``. Exactly 0 for identical logits.
    """
    _check_same_shape(student_logits, teacher_logits, "kd_kl", "give both models the same classes")
    _check_temperature(temperature, "kd_kl")
    log_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits / temperature, dim=-1)
    per_item = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(-1)
    if mask is not None:
        mask = _as_mask(mask, per_item.shape, "kd_kl")
    return temperature**2 * _masked_mean(per_item, mask)


def cross_entropy(
    logits: Tensor, labels: Tensor, mask: Tensor | None = None, ignore_index: int = -100
) -> Tensor:
    """Hard-label cross-entropy, mean over valid items.

    ``logits`` ``(B, C)`` or ``(B, L, C)``; integer ``labels`` ``(B,)`` or ``(B, L)``. Items that
    are masked out or labelled ``ignore_index`` are skipped (their label values are never read).
    """
    if tuple(labels.shape) != tuple(logits.shape[:-1]):
        raise ModelError(
            f"labels shape {tuple(labels.shape)} does not match logits {tuple(logits.shape)}",
            record="cross_entropy",
            fix=f"pass integer labels of shape {tuple(logits.shape[:-1])}",
        )
    valid = labels != ignore_index
    if mask is not None:
        valid = valid & _as_mask(mask, labels.shape, "cross_entropy")
    safe = torch.where(valid, labels, 0).long()
    per_item = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), safe.reshape(-1), reduction="none"
    )
    return _masked_mean(per_item.reshape(labels.shape), valid)


def response_kd(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor | None = None,
    *,
    alpha: float = 0.5,
    temperature: float = 4.0,
    mask: Tensor | None = None,
) -> Tensor:
    """``α · T² · KL(teacher ‖ student) + (1 − α) · CE(student, labels)``.

    Pure distillation (the KD term alone, whatever ``alpha``) when ``labels`` is None. ``alpha=1``
    is pure KD, ``alpha=0`` pure CE (the other term is not computed). Shapes as in :func:`kd_kl`.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha}", record="response_kd")
    if labels is None or alpha == 1.0:
        return kd_kl(student_logits, teacher_logits, temperature, mask)
    ce = cross_entropy(student_logits, labels, mask)
    if alpha == 0.0:
        return ce
    return alpha * kd_kl(student_logits, teacher_logits, temperature, mask) + (1.0 - alpha) * ce


# --------------------------------------------------------------------------- feature KD


class FeatureProjector(nn.Module):
    """Learned linear map from student width to teacher width (identity when they are equal).

    Input ``(..., student_dim)`` → output ``(..., teacher_dim)``. Register it in the module that
    owns the optimizer (``Objective`` does) so its parameters are trained.
    """

    def __init__(self, student_dim: int, teacher_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.student_dim = student_dim
        self.teacher_dim = teacher_dim
        self.proj: nn.Module = (
            nn.Identity()
            if student_dim == teacher_dim
            else nn.Linear(student_dim, teacher_dim, bias)
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.student_dim:
            raise ModelError(
                f"projector expects width {self.student_dim}, got {x.shape[-1]}",
                record="FeatureProjector",
                fix="set the projector's student_dim to the captured feature width",
            )
        return self.proj(x)


def feature_kd(
    student: Tensor, teacher: Tensor, mask: Tensor | None = None, normalize: bool = True
) -> Tensor:
    """MSE between features ``(B, D)`` or ``(B, L, D)``, L2-normalised along D by default.

    Per item the squared error is averaged over D, then averaged over valid items (``mask`` ``(B,)``
    or ``(B, L)``). Widths must match: project the student first with :class:`FeatureProjector`.
    """
    _check_same_shape(
        student, teacher, "feature_kd", "project the student with FeatureProjector(s_dim, t_dim)"
    )
    if normalize:
        student = F.normalize(student, dim=-1, eps=1e-8)
        teacher = F.normalize(teacher, dim=-1, eps=1e-8)
    if mask is not None:
        mask = _as_mask(mask, student.shape[:-1], "feature_kd")
        # zero masked items first so non-finite padding cannot leak into gradients
        student = torch.where(mask[..., None], student, 0.0)
        teacher = torch.where(mask[..., None], teacher, 0.0)
    per_item = (student - teacher).pow(2).mean(-1)
    return _masked_mean(per_item, mask)


def multi_feature_kd(
    pairs: Sequence[tuple[Tensor, Tensor]],
    weights: Sequence[float] | None = None,
    projectors: Sequence[nn.Module | None] | None = None,
    *,
    mask: Tensor | None = None,
    normalize: bool = True,
) -> Tensor:
    """Weighted sum ``Σ_i w_i · feature_kd(proj_i(s_i), t_i)`` over several layer pairs.

    ``pairs`` are ``(student, teacher)`` features; ``weights`` default to 1 each; ``projectors[i]``
    (or None) maps student ``i`` to the teacher width; one ``mask`` is shared by all pairs.
    """
    n = len(pairs)
    if n == 0:
        raise ConfigError("no feature pairs given", record="multi_feature_kd")
    weights = [1.0] * n if weights is None else list(weights)
    projectors = [None] * n if projectors is None else list(projectors)
    if len(weights) != n or len(projectors) != n:
        raise ConfigError(
            f"{n} pairs but {len(weights)} weights and {len(projectors)} projectors",
            record="multi_feature_kd",
            fix="give one weight (and one projector or None) per layer pair",
        )
    total = None
    for (s, t), w, proj in zip(pairs, weights, projectors, strict=True):
        term = w * feature_kd(proj(s) if proj is not None else s, t, mask, normalize)
        total = term if total is None else total + term
    return total


# --------------------------------------------------------------------------- relation KD


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
    mask = _as_mask(mask, student.shape[:1], loss)
    return student[mask], teacher[mask]


def similarity_kd(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """MSE between in-batch cosine-similarity matrices ``(B, B)`` of ``(B, Ds)`` and ``(B, Dt)``.

    Widths may differ (only the ``B × B`` relations are compared). ``mask`` ``(B,)`` drops samples.
    """
    student, teacher = _select_rows(student, teacher, mask, "similarity_kd")
    if student.shape[0] == 0:
        return _zero(student, teacher)
    s = F.normalize(student, dim=-1, eps=1e-8)
    t = F.normalize(teacher, dim=-1, eps=1e-8)
    return F.mse_loss(s @ s.T, t @ t.T)


def _pairwise_distances(x: Tensor) -> Tensor:
    x = x - x.mean(0, keepdim=True)  # centring keeps the Gram trick accurate far from the origin
    sq = x.pow(2).sum(-1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * x @ x.T).clamp_min(_EPS)
    return d2.sqrt() * (1.0 - torch.eye(len(x), dtype=x.dtype, device=x.device))


def rkd_distance(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """RKD distance loss (Park et al. 2019) on ``(B, Ds)`` / ``(B, Dt)`` embeddings.

    Pairwise Euclidean distances, each set divided by its mean off-diagonal distance, compared
    with smooth-L1 over the ``B(B−1)`` off-diagonal pairs. 0 when fewer than 2 valid samples.
    """
    student, teacher = _select_rows(student, teacher, mask, "rkd_distance")
    b = student.shape[0]
    if b < 2:
        return _zero(student, teacher)
    off = ~torch.eye(b, dtype=torch.bool, device=student.device)
    ds, dt = _pairwise_distances(student)[off], _pairwise_distances(teacher)[off]
    ds = ds / ds.mean().clamp_min(_EPS)
    dt = dt / dt.mean().clamp_min(_EPS)
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
        return _zero(student, teacher)
    idx = torch.arange(b, device=student.device)
    distinct = (
        (idx[:, None, None] != idx[None, :, None])
        & (idx[:, None, None] != idx[None, None, :])
        & (idx[None, :, None] != idx[None, None, :])
    )
    return F.smooth_l1_loss(_angles(student)[distinct], _angles(teacher)[distinct])


# --------------------------------------------------------------------------- attention KD


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
    mask = _as_mask(mask, (bs, ls), "attention_kd")
    cells = mask[:, None, :, None] & mask[:, None, None, :]  # (B, 1, L, L)
    s = torch.where(cells, student_attn, 0.0)
    t = torch.where(cells, teacher_attn, 0.0)
    if mode == "kl":  # each head's row becomes a distribution over the valid keys (in float32)
        s, t = s.float(), t.float()
        s = s.clamp_min(0.0) / s.clamp_min(0.0).sum(-1, keepdim=True).clamp_min(_EPS)
        t = t.clamp_min(0.0) / t.clamp_min(0.0).sum(-1, keepdim=True).clamp_min(_EPS)
    if heads == "mean":
        s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    if mode == "mse":
        return _masked_mean((s - t).pow(2), cells.expand_as(s))
    per_row = (t * (t.clamp_min(_EPS).log() - s.clamp_min(_EPS).log())).sum(-1)
    return _masked_mean(per_row, mask[:, None, :].expand_as(per_row))


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
    p = t / t.sum(1, keepdim=True).clamp_min(_EPS)
    if from_logits:
        x = student.float().flatten(1).masked_fill(~flat_valid, torch.finfo(torch.float32).min)
        log_q = x.log_softmax(1)
    else:
        s = torch.where(valid, student, 0.0).float().clamp_min(0.0).flatten(1)
        log_q = (s / s.sum(1, keepdim=True).clamp_min(_EPS)).clamp_min(_EPS).log()
    per_cell = torch.xlogy(p, p) - torch.where(flat_valid, p * log_q, 0.0)
    has_cells = flat_valid.any(1)
    return _masked_mean(per_cell.sum(1), has_cells)


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
    b, la, lb = student_map.shape
    dev = student_map.device
    ones = torch.ones((), dtype=torch.bool, device=dev)
    mask_a = ones.expand(b, la) if mask_a is None else _as_mask(mask_a, (b, la), "map_kd", "mask_a")
    mask_b = ones.expand(b, lb) if mask_b is None else _as_mask(mask_b, (b, lb), "map_kd", "mask_b")
    _, ta, tb = teacher_map.shape
    t_mask_a = _resize_mask(mask_a, ta) if teacher_mask_a is None else teacher_mask_a
    t_mask_b = _resize_mask(mask_b, tb) if teacher_mask_b is None else teacher_mask_b
    t_mask_a = _as_mask(t_mask_a, (b, ta), "map_kd", "teacher_mask_a")
    t_mask_b = _as_mask(t_mask_b, (b, tb), "map_kd", "teacher_mask_b")
    if (ta, tb) == (la, lb):
        teacher, support = teacher_map, t_mask_a[:, :, None] & t_mask_b[:, None, :]
    else:
        teacher, support = _resize_map(teacher_map, t_mask_a, t_mask_b, (la, lb))
    valid = mask_a[:, :, None] & mask_b[:, None, :] & support
    teacher = torch.where(valid, teacher, 0.0)
    if mode == "mse":
        return _masked_mean((torch.where(valid, student_map, 0.0) - teacher).pow(2), valid)
    if mode == "spatial":
        return _spatial_kl(student_map, teacher, valid, from_logits)
    t = teacher.float().clamp(0.0, 1.0)  # logs in float32, also under half precision
    if from_logits:
        x = torch.where(valid, student_map, 0.0).float()
        log_s, log_1s = F.logsigmoid(x), F.logsigmoid(-x)
    else:
        s = torch.where(valid, student_map, 0.5).float().clamp(_EPS, 1.0 - 1e-7)
        log_s, log_1s = s.log(), (1.0 - s).log()
    per_cell = -(t * log_s + (1.0 - t) * log_1s)
    if mode == "kl":
        per_cell = per_cell + torch.xlogy(t, t) + torch.xlogy(1.0 - t, 1.0 - t)
    return _masked_mean(per_cell, valid)
