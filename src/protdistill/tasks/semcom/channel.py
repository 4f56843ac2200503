"""Physical channels for real-valued symbol tensors read as complex I/Q pairs.

A symbol tensor ``x (B, L, S)`` (S even) carries ``S/2`` complex symbols per token: the first half
of the last dimension is the in-phase part, the second half the quadrature part. After
:func:`power_normalize` the average complex-symbol power of every sentence is 1, so an SNR of
``snr_db`` means complex noise of variance ``10^(-snr_db/10)`` (half of it per real dimension).
"""

from __future__ import annotations

from typing import Literal

import torch

from protdistill.errors import ConfigError

ChannelKind = Literal["awgn", "rayleigh", "mixed", "none"]
CHANNELS: tuple[str, ...] = ("awgn", "rayleigh", "mixed", "none")


def power_normalize(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scale each sentence of ``x (B, L, S)`` to unit mean complex-symbol power over real tokens.

    Padded positions (``mask`` False) are set to zero and do not count.
    """
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    m = mask.unsqueeze(-1).to(x.dtype)
    x = x * m
    n_complex = (m.sum(dim=(1, 2)) * x.shape[-1] / 2).clamp_min(1.0)
    power = (x.pow(2).sum(dim=(1, 2)) / n_complex).clamp_min(1e-12)
    return x / power.sqrt().view(-1, 1, 1)


def noise_std(snr_db: torch.Tensor | float) -> torch.Tensor:
    """Per-real-dimension noise standard deviation for unit-power complex symbols."""
    snr = torch.as_tensor(snr_db, dtype=torch.float32)
    return torch.sqrt(0.5 * 10.0 ** (-snr / 10.0))


def _per_sentence(snr_db: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
    snr = torch.as_tensor(snr_db, dtype=torch.float32, device=device)
    return snr.expand(batch) if snr.dim() == 0 else snr


def transmit(
    x: torch.Tensor,
    snr_db: torch.Tensor | float,
    kind: str = "awgn",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pass symbols ``x (B, L, S)`` through a channel at ``snr_db`` (scalar or ``(B,)``).

    ``awgn``: y = x + n. ``rayleigh``: block fading, one complex gain h ~ CN(0, 1) per sentence,
    y = h·x + n, equalised with perfect channel knowledge (y / h), as in DeepSC. ``mixed``: each
    sentence goes through AWGN or Rayleigh with probability 1/2 (for training). ``none``: y = x.
    Noise comes from ``generator`` when given, so two models can see the same channel draw.
    """
    if kind not in CHANNELS:
        raise ConfigError(f"unknown channel {kind!r}", fix=f"use one of {', '.join(CHANNELS)}")
    if kind == "none":
        return x
    if kind == "mixed":
        pick = torch.rand(x.shape[0], generator=generator).to(x.device) < 0.5
        awgn = transmit(x, snr_db, "awgn", generator)
        fading = transmit(x, snr_db, "rayleigh", generator)
        return torch.where(pick.view(-1, 1, 1), fading, awgn)
    if x.shape[-1] % 2:
        raise ConfigError(
            f"symbol dimension {x.shape[-1]} is odd", fix="use an even symbol_dim (I/Q pairs)"
        )
    b = x.shape[0]
    std = noise_std(_per_sentence(snr_db, b, x.device)).to(x.dtype).view(b, 1, 1)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    noise = noise * std
    if kind == "awgn":
        return x + noise
    h = torch.randn((b, 2), generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    h = h * (0.5**0.5)
    hr, hi = h[:, 0].view(b, 1, 1), h[:, 1].view(b, 1, 1)
    half = x.shape[-1] // 2
    xr, xi = x[..., :half], x[..., half:]
    yr = hr * xr - hi * xi + noise[..., :half]
    yi = hr * xi + hi * xr + noise[..., half:]
    # Zero-forcing equalisation: (yr + i·yi) / (hr + i·hi).
    denom = (hr.pow(2) + hi.pow(2)).clamp_min(1e-9)
    er = (yr * hr + yi * hi) / denom
    ei = (yi * hr - yr * hi) / denom
    return torch.cat([er, ei], dim=-1)
