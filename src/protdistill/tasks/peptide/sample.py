"""Sampling peptides from a trained StructDiff: DDPM / DDIM, guidance, lengths, seeded.

Optionally each late clean estimate is *projected* onto real embeddings: decoded to residues and
re-embedded by the teacher, so the sampler's remaining steps refine the embedding of an actual
sequence instead of a point between sequences (the continuous analogue of Diffusion-LM's
rounding "clamp"). Off by default: with a starting-noise temperature of 1.2 it lowered the
Fréchet distance on some models but cost predicted activity on all (BENCHMARKS.md, StructDiff).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
from torch import Tensor

from protdistill.errors import ConfigError
from protdistill.tasks.peptide.denoiser import StructureFeatures
from protdistill.tasks.peptide.diffusion import classifier_free_guidance
from protdistill.tasks.peptide.families import family_counts
from protdistill.tasks.peptide.model import StructDiff
from protdistill.tasks.peptide.typicality import best_of, length_mask, teacher_embedding


def draw_lengths(model: StructDiff, type_name: str, n: int, seed: int) -> list[int]:
    """``n`` lengths from the training length distribution of ``type_name`` (seeded)."""
    hist = model.lengths.get(type_name) or {}
    if not hist:
        raise ConfigError(
            f"no length distribution stored for type {type_name!r}", fix="pass --length"
        )
    rng = random.Random(seed)
    return rng.choices(list(hist), weights=list(hist.values()), k=n)


def guided_model_fn(
    model: StructDiff,
    type_ids: Tensor,
    mask: Tensor,
    guidance: float,
    structure: bool,
    interval: tuple[int, int] | None = None,
    rescale: float = 0.0,
) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    """The network call of the sampler: conditional and null-type passes combined by guidance.

    With ``structure`` and a structure head, the structure features predicted from the previous
    clean estimate ``x0_prev`` condition the next step (none on the first step); a
    self-conditioning model also reads ``x0_prev`` itself. ``interval``
    ``(lo, hi)`` guides only the steps ``lo <= t < hi`` and uses the plain conditional
    prediction elsewhere (Kynkäänniemi et al. 2024: guidance at high noise costs diversity).
    ``rescale`` (0–1) undoes guidance's overshoot of the conditional prediction's spread
    (``classifier_free_guidance``).
    """
    den = model.net.denoiser
    null = torch.full_like(type_ids, den.null_type)
    lo, hi = interval if interval is not None else (0, model.diffusion.timesteps)

    def fn(x: Tensor, t: Tensor, x0_prev: Tensor | None) -> Tensor:
        feats: StructureFeatures | None = None
        if structure and den.structure_head is not None and x0_prev is not None:
            feats = den.structure_head(x0_prev, mask)
        own = x0_prev if den.self_cond is not None else None
        if guidance == 1.0 or not lo <= int(t[0]) < hi:
            return den(x, t, type_ids, mask, feats, own).prediction
        if guidance == 0.0:
            return den(x, t, null, mask, feats, own).prediction
        both = _repeat_structure(feats)
        out = den(
            torch.cat([x, x]),
            torch.cat([t, t]),
            torch.cat([type_ids, null]),
            torch.cat([mask, mask]),
            both,
            None if own is None else torch.cat([own, own]),
        ).prediction
        cond, uncond = out.chunk(2)
        return classifier_free_guidance(cond, uncond, guidance, rescale, mask)

    return fn


def teacher_projector(
    model: StructDiff,
    teacher,  # noqa: ANN001 - protdistill.teachers.esm.EsmTeacher
    mask: Tensor,
) -> Callable[[Tensor], Tensor]:
    """``z -> standardised teacher embedding of decode(z)`` for standardised ``z`` ``(B, L, D)``."""
    model.check_teacher(teacher)

    def project(z: Tensor) -> Tensor:
        x0, _ = teacher_embedding(model, teacher, model.net.decode(z, mask).sequences())
        return x0.to(z)

    return project


def _check_options(
    model: StructDiff,
    teacher,  # noqa: ANN001 - protdistill.teachers.esm.EsmTeacher | None
    project_below: float,
    guidance_rescale: float,
    candidates: int,
) -> None:
    needs = {"projection": (project_below > 0, "project_below 0"),
             "best-of-m selection": (candidates > 1, "candidates 1")}  # fmt: skip
    for what, (wanted, off) in needs.items():
        if wanted and teacher is None:
            raise ConfigError(
                f"{what} needs the teacher the model was trained with",
                fix=f"pass it (model meta: {model.meta.get('teacher_path')}) or set {off}",
            )
    if candidates < 1:
        raise ConfigError(f"candidates {candidates} < 1", fix="give 1 (off) or more per peptide")
    if not 0.0 <= guidance_rescale <= 1.0:
        raise ConfigError(
            f"guidance rescale {guidance_rescale:g} is outside 0..1",
            fix="give a fraction, e.g. 0.7 (0 = plain guidance)",
        )


def _checked_lengths(
    model: StructDiff, type_name: str, n: int, length: int | None, seed: int
) -> list[int]:
    max_len = model.net.denoiser.cfg.max_length
    lengths = [length] * n if length else draw_lengths(model, type_name, n, seed)
    if max(lengths) > max_len:
        raise ConfigError(
            f"length {max(lengths)} exceeds the model's maximum of {max_len}",
            fix=f"ask for at most {max_len} residues",
        )
    return lengths


def _timestep_interval(fractions: tuple[float, float], timesteps: int) -> tuple[int, int]:
    lo, hi = fractions
    if not 0.0 <= lo < hi <= 1.0:
        raise ConfigError(
            f"guidance interval {lo:g}..{hi:g} is not a range inside 0..1",
            fix="give two fractions of the timesteps, low < high, e.g. 0.1 0.7",
        )
    return round(lo * timesteps), round(hi * timesteps)


def _repeat_structure(feats: StructureFeatures | None) -> StructureFeatures | None:
    if feats is None:
        return None

    def rep(x: Tensor | None) -> Tensor | None:
        return None if x is None else torch.cat([x, x])

    return StructureFeatures(rep(feats.pair), rep(feats.residue), rep(feats.present))


@torch.no_grad()
def sample_peptides(
    model: StructDiff,
    type_name: str,
    n: int,
    *,
    length: int | None = None,
    guidance: float = 2.0,
    steps: int = 50,
    sampler: str = "ddpm",
    eta: float = 0.0,
    structure: bool = True,
    batch_size: int = 256,
    seed: int = 0,
    temperature: float = 1.0,
    teacher=None,  # noqa: ANN001 - protdistill.teachers.esm.EsmTeacher
    project_below: float = 0.0,
    guidance_interval: tuple[float, float] = (0.0, 1.0),
    guidance_rescale: float = 0.0,
    candidates: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Generate ``n`` peptides of ``type_name``; each has ``length`` residues (or a drawn one).

    ``project_below`` > 0 (a fraction of the diffusion's timesteps) projects the clean estimates
    of the later steps through ``teacher`` (see the module docstring). ``guidance_interval``
    (fractions of the timesteps) limits guidance to the steps inside it; ``guidance_rescale``
    undoes its overshoot (``classifier_free_guidance``). ``candidates`` > 1 draws that many
    candidates of each peptide's length and label and keeps the one the model finds most typical
    (typicality.py; needs ``teacher``). Seeded: the same
    arguments give the same peptides. Batches group equal lengths. A type the model knows by
    families (families.py) is sampled family by family, in their training proportions.
    """
    if type_name in model.families:
        return _sample_families(model, type_name, n, locals())
    type_id = model.type_id(type_name)
    lengths = _checked_lengths(model, type_name, n, length, seed)
    _check_options(model, teacher, project_below, guidance_rescale, candidates)
    lengths = [k for k in lengths for _ in range(candidates)]
    below = round(project_below * model.diffusion.timesteps)
    interval = _timestep_interval(guidance_interval, model.diffusion.timesteps)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[str] = [""] * len(lengths)
    gen = torch.Generator().manual_seed(seed)
    model.net.eval()
    dim = model.net.denoiser.cfg.embed_dim
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        mask = length_mask([lengths[i] for i in idx])
        type_ids = torch.full((len(idx),), type_id, dtype=torch.long)
        fn = guided_model_fn(model, type_ids, mask, guidance, structure, interval, guidance_rescale)
        project = teacher_projector(model, teacher, mask) if below > 0 else None
        z = model.diffusion.sample(
            fn, mask, dim, steps=steps, method=sampler, eta=eta, generator=gen,
            temperature=temperature, project=project, project_below=below,
        )  # fmt: skip
        for row, seq in zip(idx, model.net.decode(z, mask).sequences(), strict=True):
            out[row] = seq
        if progress is not None:
            progress((start + len(idx)) // candidates - start // candidates)
    return best_of(model, out, candidates, type_name, teacher) if candidates > 1 else out


def _sample_families(model: StructDiff, type_name: str, n: int, kwargs: dict) -> list[str]:
    """``n`` peptides of ``type_name`` drawn from its families (seeded per family)."""
    labels = model.families[type_name]
    sizes = [sum(model.lengths.get(f, {}).values()) for f in labels]
    args = {k: v for k, v in kwargs.items() if k not in ("model", "type_name", "n", "seed")}
    out: list[str] = []
    for j, (label, k) in enumerate(zip(labels, family_counts(n, sizes), strict=True)):
        if k:
            out += sample_peptides(model, label, k, seed=kwargs["seed"] + 1000 * j, **args)
    return out
