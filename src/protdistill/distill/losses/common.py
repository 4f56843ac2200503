"""Helpers shared by the losses: masked means, shape and mask checks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from protdistill.errors import ConfigError, ModelError

EPS = 1e-12


# --------------------------------------------------------------------------- helpers


def zero_loss(*tensors: Tensor) -> Tensor:
    """A scalar 0 attached to the graph of ``tensors`` (so ``backward()`` still works)."""
    return sum((t.sum() * 0.0 for t in tensors), torch.zeros((), device=tensors[0].device))


def masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``values`` over ``mask`` (same shape); 0 when nothing is valid."""
    if mask is None:
        return values.mean()
    total = torch.where(mask, values, 0.0).sum()
    return total / mask.sum().clamp_min(1).to(values.dtype)


def check_same_shape(student: Tensor, teacher: Tensor, loss: str, fix: str) -> None:
    if student.shape != teacher.shape:
        raise ModelError(
            f"student shape {tuple(student.shape)} != teacher shape {tuple(teacher.shape)}",
            record=loss,
            fix=fix,
        )


def as_mask(mask: Tensor | None, shape: Sequence[int], loss: str, name: str = "mask") -> Tensor:
    """Validate a padding mask against the item ``shape``; returns a bool tensor."""
    if mask is None:
        raise AssertionError("internal: as_mask called without a mask")
    if tuple(mask.shape) != tuple(shape):
        raise ModelError(
            f"{name} shape {tuple(mask.shape)} does not match the item shape {tuple(shape)}",
            record=loss,
            fix=f"pass a bool {name} of shape {tuple(shape)} (True = valid)",
        )
    return mask.bool()


def check_temperature(temperature: float, loss: str) -> None:
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}", record=loss)
