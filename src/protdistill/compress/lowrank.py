"""Low rank: replace a large Linear ``W (out, in)`` by ``U_r (out, r) @ V_r (r, in)`` from a
truncated SVD, at a fixed rank or the smallest rank keeping a fraction of the spectral energy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from protdistill.compress.surgery import set_module, weighted_kinds
from protdistill.errors import ConfigError, ModelError


class LowRankLinear(nn.Module):
    """``second(first(x))``: Linear(in, rank, no bias) then Linear(rank, out).

    Input (..., in_features) -> (..., out_features).
    """

    def __init__(self, in_features: int, rank: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.rank, self.out_features = in_features, rank, out_features
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear, rank: int) -> LowRankLinear:
        w = linear.weight.detach().float()
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        root = s[:rank].sqrt()
        new = cls(linear.in_features, rank, linear.out_features, linear.bias is not None)
        with torch.no_grad():
            new.first.weight.copy_(root[:, None] * vh[:rank])
            new.second.weight.copy_(u[:, :rank] * root[None, :])
            if linear.bias is not None:
                new.second.bias.copy_(linear.bias)
        return new.to(linear.weight.device)

    def spec(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "rank": self.rank,
            "out_features": self.out_features,
            "bias": self.second.bias is not None,
        }

    def forward(self, x: Tensor) -> Tensor:
        return self.second(self.first(x))


def choose_rank(weight: Tensor, *, rank: int | None = None, energy: float | None = None) -> int:
    """``rank`` capped at min(out, in), or the smallest r with sum(s[:r]^2) >= energy * sum(s^2)."""
    full = min(weight.shape)
    if rank is not None:
        return max(1, min(rank, full))
    s2 = torch.linalg.svdvals(weight.detach().float()) ** 2
    cumulative = s2.cumsum(0) / s2.sum().clamp(min=1e-12)
    return int((cumulative < energy - 1e-9).sum().item()) + 1


def factorize_model(
    model: nn.Module,
    *,
    rank: int | None = None,
    energy: float | None = None,
    min_params: int = 4096,
    skip: Iterable[str] = (),
) -> dict[str, dict[str, int]]:
    """Factorise every Linear with at least ``min_params`` weights when the factors are smaller.

    Returns ``{layer: {"in", "out", "rank"}}`` for the layers replaced (a layer whose chosen rank
    saves nothing is left alone). :class:`ModelError` when the model has no Linear layer.
    """
    if (rank is None) == (energy is None):
        raise ConfigError(
            "give exactly one of rank or energy", fix="e.g. --energy 0.95 or --rank 32"
        )
    if rank is not None and rank < 1:
        raise ConfigError(f"rank must be >= 1, got {rank}", fix="e.g. --rank 32")
    if energy is not None and not 0.0 < energy <= 1.0:
        raise ConfigError(f"energy must be in (0, 1], got {energy}", fix="e.g. --energy 0.95")
    skip = tuple(skip)
    linears = [
        (p, m)
        for p, m in model.named_modules()
        if type(m) is nn.Linear and not any(p == s or p.startswith(s + ".") for s in skip)
    ]
    if not linears:
        raise ModelError(
            f"no Linear layer to factorise in {type(model).__name__} (weighted layers: "
            f"{weighted_kinds(model)})",
            record=type(model).__name__,
            fix="low rank applies to Linear layers; use prune or quantize for this model",
        )
    done = {}
    for path, linear in linears:
        if linear.weight.numel() < min_params:
            continue
        r = choose_rank(linear.weight, rank=rank, energy=energy)
        if r * (linear.in_features + linear.out_features) >= linear.weight.numel():
            continue
        set_module(model, path, LowRankLinear.from_linear(linear, r))
        done[path] = {"in": linear.in_features, "out": linear.out_features, "rank": r}
    return done
