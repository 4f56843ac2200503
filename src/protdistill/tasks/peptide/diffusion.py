"""Gaussian diffusion over per-residue embeddings, independent of the denoiser network.

In the spirit of denoising-diffusion-pytorch: a noise schedule, ``q_sample``, the training loss
(epsilon- or x0-prediction) and two samplers (DDPM, DDIM), each a short function. The network is
any callable ``model_fn(x_t (B, L, D), t (B,), x0_prev (B, L, D) | None) -> (B, L, D)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from protdistill.errors import ConfigError

Schedule = Literal["linear", "cosine", "sqrt"]
Objective = Literal["eps", "x0"]
ModelFn = Callable[[Tensor, Tensor, Tensor | None], Tensor]


def make_betas(schedule: Schedule, timesteps: int = 1000) -> Tensor:
    """Noise variances ``(T,)`` in float64 for the ``linear``, ``cosine`` or ``sqrt`` schedule."""
    if timesteps < 2:
        raise ConfigError(f"timesteps={timesteps} must be at least 2", fix="use e.g. 1000")
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    if schedule == "linear":  # Ho et al. 2020, rescaled to the number of steps
        scale = 1000 / timesteps
        betas = torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
        return betas.clamp(1e-8, 0.999)
    if schedule == "cosine":  # Nichol & Dhariwal 2021
        s = 0.008
        abar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    elif schedule == "sqrt":  # Li et al. 2022 (Diffusion-LM)
        abar = 1 - torch.sqrt(steps + 1e-4)
    else:
        raise ConfigError(f"unknown noise schedule {schedule!r}", fix="use linear, cosine or sqrt")
    abar = abar / abar[0]
    return (1 - abar[1:] / abar[:-1]).clamp(1e-8, 0.999)


def _gather(values: Tensor, t: Tensor, ndim: int) -> Tensor:
    """``values[t]`` shaped ``(B, 1, ..., 1)`` to broadcast over a ``ndim`` tensor."""
    return values.to(t.device)[t].float().view(-1, *([1] * (ndim - 1)))


class GaussianDiffusion:
    """Forward process and samplers for a fixed schedule (``alphas_cumprod`` is ``ᾱ_t``)."""

    def __init__(
        self,
        timesteps: int = 1000,
        schedule: Schedule = "cosine",
        objective: Objective = "eps",
    ) -> None:
        if objective not in ("eps", "x0"):
            raise ConfigError(f"unknown objective {objective!r}", fix="use eps or x0")
        self.timesteps = timesteps
        self.schedule = schedule
        self.objective = objective
        self.betas = make_betas(schedule, timesteps)
        self.alphas_cumprod = torch.cumprod(1 - self.betas, dim=0)

    # ---- forward process -------------------------------------------------------------------
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor | None = None) -> Tensor:
        """Draw ``x_t ~ q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1 - ᾱ_t) I)``; shapes ``(B, ...)``."""
        noise = torch.randn_like(x0) if noise is None else noise
        abar = _gather(self.alphas_cumprod, t, x0.ndim)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def predict_x0(self, x_t: Tensor, t: Tensor, prediction: Tensor) -> Tensor:
        """The clean estimate ``x̂_0`` implied by a network ``prediction`` at step ``t``."""
        if self.objective == "x0":
            return prediction
        abar = _gather(self.alphas_cumprod, t, x_t.ndim)
        return (x_t - (1 - abar).sqrt() * prediction) / abar.sqrt()

    def predict_eps(self, x_t: Tensor, t: Tensor, x0: Tensor) -> Tensor:
        """The noise implied by ``x_t`` and a clean estimate ``x0``."""
        abar = _gather(self.alphas_cumprod, t, x_t.ndim)
        return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()

    def loss(
        self,
        model_fn: ModelFn,
        x0: Tensor,
        mask: Tensor,
        *,
        t: Tensor | None = None,
        noise: Tensor | None = None,
        x0_prev: Tensor | None = None,
    ) -> Tensor:
        """Masked MSE between the network output and its target (``eps`` or ``x0``).

        ``x0`` is ``(B, L, D)``, ``mask`` ``(B, L)`` bool (True = residue). Padded positions of the
        noised input are zeroed and never contribute to the loss.
        """
        return self.loss_terms(model_fn, x0, mask, t=t, noise=noise, x0_prev=x0_prev)[0]

    def loss_terms(
        self,
        model_fn: ModelFn,
        x0: Tensor,
        mask: Tensor,
        *,
        t: Tensor | None = None,
        noise: Tensor | None = None,
        x0_prev: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(loss, x̂_0, t)``: the :meth:`loss`, the clean estimate it implies and the steps."""
        batch = x0.shape[0]
        if t is None:
            t = torch.randint(0, self.timesteps, (batch,), device=x0.device)
        noise = torch.randn_like(x0) if noise is None else noise
        m = mask.unsqueeze(-1).to(x0.dtype)
        x_t = self.q_sample(x0, t, noise) * m
        prediction = model_fn(x_t, t, x0_prev)
        target = noise if self.objective == "eps" else x0
        err = ((prediction - target) ** 2 * m).sum()
        loss = err / (m.sum() * x0.shape[-1]).clamp_min(1.0)
        return loss, self.predict_x0(x_t, t, prediction) * m, t

    # ---- samplers --------------------------------------------------------------------------
    def sample_steps(self, steps: int | None) -> list[int]:
        """Descending timesteps for a sampler with ``steps`` steps (None = all of them)."""
        steps = self.timesteps if steps is None else steps
        if not 1 <= steps <= self.timesteps:
            raise ConfigError(
                f"steps={steps} outside 1..{self.timesteps}",
                fix="choose a number of sampling steps no larger than the diffusion timesteps",
            )
        grid = torch.linspace(0, self.timesteps - 1, steps).round().long().unique()
        return grid.flip(0).tolist()

    @torch.no_grad()
    def sample(
        self,
        model_fn: ModelFn,
        mask: Tensor,
        dim: int,
        *,
        steps: int | None = 50,
        method: Literal["ddpm", "ddim"] = "ddim",
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        clip_x0: float | None = None,
        temperature: float = 1.0,
        project: Callable[[Tensor], Tensor] | None = None,
        project_below: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> Tensor:
        """Generate ``(B, L, D)`` embeddings for the residues marked in ``mask`` ``(B, L)``.

        ``ddpm`` is ancestral sampling (respaced when ``steps`` < T); ``ddim`` is deterministic for
        ``eta=0``. ``x0_prev`` (the previous clean estimate) is passed to the network for
        self-conditioning (None on the first step). Padded positions stay zero. ``temperature``
        scales the starting noise (and DDPM's step noise). ``project`` maps each clean estimate
        of the steps ``t < project_below`` back onto the data, e.g. decode and re-embed.
        """
        if method not in ("ddpm", "ddim"):
            raise ConfigError(f"unknown sampler {method!r}", fix="use ddpm or ddim")
        device = mask.device
        m = mask.unsqueeze(-1).float()
        shape = (*mask.shape, dim)
        x = torch.randn(shape, generator=generator, device="cpu").to(device) * m * temperature
        x0_prev: Tensor | None = None
        times = self.sample_steps(steps)
        abars = self.alphas_cumprod
        for i, step in enumerate(times):
            t = torch.full((mask.shape[0],), step, device=device, dtype=torch.long)
            x0 = self.predict_x0(x, t, model_fn(x, t, x0_prev))
            if clip_x0 is not None:
                x0 = x0.clamp(-clip_x0, clip_x0)
            if project is not None and step < project_below:
                x0 = project(x0)
            x0 = x0 * m
            eps = self.predict_eps(x, t, x0)
            abar = float(abars[step])
            abar_prev = float(abars[times[i + 1]]) if i + 1 < len(times) else 1.0
            if method == "ddim":
                sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
            else:
                sigma = math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
            noise = torch.randn(shape, generator=generator, device="cpu").to(device)
            direction = math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
            x = (math.sqrt(abar_prev) * x0 + direction + sigma * temperature * noise) * m
            x0_prev = x0
            if progress is not None:
                progress(i + 1)
        return x0_prev if x0_prev is not None else x


def classifier_free_guidance(
    cond: Tensor,
    uncond: Tensor,
    scale: float,
    rescale: float = 0.0,
    mask: Tensor | None = None,
) -> Tensor:
    """``uncond + scale · (cond − uncond)``: scale 1 is the conditional, 0 the unconditional.

    ``rescale`` φ in [0, 1] pulls each sample's guided prediction back toward the spread of its
    conditional one (Lin et al. 2024, "Common diffusion noise schedules ... are flawed"):
    ``φ · guided · std(cond) / std(guided) + (1 − φ) · guided``, standard deviations over the
    residues of ``mask`` ``(B, L)`` and all dimensions. Strong guidance overshoots into extreme
    embeddings; the rescale keeps its direction and undoes the overshoot.
    """
    if scale == 1.0:
        return cond
    if scale == 0.0:
        return uncond
    guided = uncond + scale * (cond - uncond)
    if rescale == 0.0:
        return guided
    m = torch.ones(cond.shape[:2], device=cond.device) if mask is None else mask.float()
    ratio = _masked_std(cond, m) / _masked_std(guided, m).clamp_min(1e-8)
    return rescale * guided * ratio[:, None, None] + (1 - rescale) * guided


def _masked_std(x: Tensor, mask: Tensor) -> Tensor:
    """Per-sample standard deviation of ``x`` ``(B, L, D)`` over the residues of ``mask``."""
    w = mask.unsqueeze(-1).expand_as(x)
    n = w.sum(dim=(1, 2)).clamp_min(1.0)
    mean = (x * w).sum(dim=(1, 2)) / n
    var = (((x - mean[:, None, None]) ** 2) * w).sum(dim=(1, 2)) / n
    return var.sqrt()
