"""Response (logit) KD: temperature-scaled KL, masked cross-entropy and their mix."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from protdistill.distill.losses.common import (
    as_mask,
    check_same_shape,
    check_temperature,
    masked_mean,
)
from protdistill.errors import ConfigError, ModelError


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
    check_same_shape(student_logits, teacher_logits, "kd_kl", "give both models the same classes")
    check_temperature(temperature, "kd_kl")
    log_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits / temperature, dim=-1)
    per_item = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(-1)
    if mask is not None:
        mask = as_mask(mask, per_item.shape, "kd_kl")
    return temperature**2 * masked_mean(per_item, mask)


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
        valid = valid & as_mask(mask, labels.shape, "cross_entropy")
    safe = torch.where(valid, labels, 0).long()
    per_item = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), safe.reshape(-1), reduction="none"
    )
    return masked_mean(per_item.reshape(labels.shape), valid)


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
