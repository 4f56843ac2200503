"""Feature KD: projected, normalised MSE between student and teacher representations."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from protdistill.distill.losses.common import (
    as_mask,
    check_same_shape,
    masked_mean,
)
from protdistill.errors import ConfigError, ModelError


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

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> FeatureProjector:
        """A projector rebuilt from its saved weights (``proj.weight``, ``proj.bias``)."""
        weight = state["proj.weight"]
        projector = cls(weight.shape[1], weight.shape[0], bias="proj.bias" in state)
        projector.load_state_dict(state)
        return projector

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
    check_same_shape(
        student, teacher, "feature_kd", "project the student with FeatureProjector(s_dim, t_dim)"
    )
    if normalize:
        student = F.normalize(student, dim=-1, eps=1e-8)
        teacher = F.normalize(teacher, dim=-1, eps=1e-8)
    if mask is not None:
        mask = as_mask(mask, student.shape[:-1], "feature_kd")
        # zero masked items first so non-finite padding cannot leak into gradients
        student = torch.where(mask[..., None], student, 0.0)
        teacher = torch.where(mask[..., None], teacher, 0.0)
    per_item = (student - teacher).pow(2).mean(-1)
    return masked_mean(per_item, mask)


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


def cosine_kd(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean ``1 - cos(student, teacher)`` over valid items of ``(B, D)`` or ``(B, L, D)``.

    In ``[0, 2]`` whatever the width D (an L2-normalised MSE shrinks as 1/D); 0 for identical
    inputs. Masked items (``mask`` ``(B,)`` or ``(B, L)``) never contribute, not even NaN ones.
    """
    check_same_shape(
        student, teacher, "cosine_kd", "project the student with FeatureProjector(s_dim, t_dim)"
    )
    if mask is not None:
        mask = as_mask(mask, student.shape[:-1], "cosine_kd")
        student = torch.where(mask[..., None], student, 1.0)
        teacher = torch.where(mask[..., None], teacher, 1.0)
    per_item = 1.0 - F.cosine_similarity(student, teacher, dim=-1, eps=1e-8)
    return masked_mean(per_item, mask)
