"""Shared inputs of the loss tests: seeded tensors, random masks, junk behind masks."""

from __future__ import annotations

import torch
from hypothesis import settings

FAST = settings(max_examples=25, deadline=None)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed))


def random_mask(shape: tuple[int, ...], seed: int, keep_first: bool = True) -> torch.Tensor:
    mask = torch.rand(*shape, generator=gen(seed)) > 0.4
    if keep_first:
        mask.view(-1)[0] = True
    return mask


def scramble(x: torch.Tensor, mask: torch.Tensor, seed: int, scale: float = 1e3) -> torch.Tensor:
    """Replace the masked-out items of ``x`` (``mask`` covers x's leading dims) with junk."""
    junk = torch.randn(x.shape, generator=gen(seed)) * scale
    m = mask.reshape(mask.shape + (1,) * (x.dim() - mask.dim()))
    return torch.where(m, x, junk)
