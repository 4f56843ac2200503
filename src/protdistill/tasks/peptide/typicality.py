"""The model's own typicality of a peptide, for best-of-m sampling.

A peptide's score is the denoiser's error in recovering the teacher embedding of its sequence
from fixed noise at fixed noise levels, conditioned on its label: a Monte-Carlo proxy of the
diffusion ELBO (low = what the model finds typical of the label). It uses no held-out data and
no other model, so selecting by it cannot leak an evaluation into sampling. The noise of a
peptide is seeded by the peptide alone, so a score does not depend on its batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from protdistill.tasks.peptide.model import StructDiff
from protdistill.teachers.windows import stack_padded

#: Noise levels of the score, as fractions of the diffusion's timesteps (the near-clean and
#: pure-noise ends say little about a sequence).
SCORE_LEVELS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def _peptide_noise(seq: str, levels: int, width: int, dim: int, seed: int) -> Tensor:
    """``(levels, width, dim)`` noise seeded by ``seq`` (zero past its length)."""
    gen = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{seq}".encode()))
    noise = torch.zeros(levels, width, dim)
    noise[:, : len(seq)] = torch.randn((levels, len(seq), dim), generator=gen)
    return noise


def length_mask(lengths: Sequence[int]) -> Tensor:
    """``(B, max length)`` bool: True at each sequence's residues."""
    return torch.arange(max(lengths))[None, :] < torch.tensor(list(lengths))[:, None]


def teacher_embedding(
    model: StructDiff,
    teacher,  # noqa: ANN001 - protdistill.teachers.esm.EsmTeacher
    seqs: Sequence[str],
) -> tuple[Tensor, Tensor]:
    """Standardised teacher embeddings ``(B, L, D)`` of ``seqs`` (zero past each length) and
    their mask ``(B, L)``: what the denoiser works on."""
    emb, _ = stack_padded([e.per_residue for e in teacher.embed(list(seqs))])
    mask = length_mask([len(s) for s in seqs])
    return model.net.standardise(emb.float()) * mask.unsqueeze(-1), mask


@torch.no_grad()
def denoising_error(
    model: StructDiff,
    seqs: Sequence[str],
    label: str,
    teacher,  # noqa: ANN001 - protdistill.teachers.esm.EsmTeacher (the model's)
    *,
    batch_size: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """``(N,)`` mean squared error of the clean estimates of ``seqs`` under ``label``."""
    model.check_teacher(teacher)
    den, diff = model.net.denoiser, model.diffusion
    type_id = model.type_id(label)
    steps = [min(round(f * diff.timesteps), diff.timesteps - 1) for f in SCORE_LEVELS]
    model.net.eval()
    out = []
    for start in range(0, len(seqs), batch_size):
        batch = list(seqs[start : start + batch_size])
        x0, mask = teacher_embedding(model, teacher, batch)
        m = mask.unsqueeze(-1).float()
        width, dim = x0.shape[1:]
        noise = torch.stack([_peptide_noise(s, len(steps), width, dim, seed) for s in batch], 1)
        feats = den.structure_head(x0, mask) if den.structure_head is not None else None
        types = torch.full((len(batch),), type_id, dtype=torch.long)
        err = torch.zeros(len(batch))
        for step, eps in zip(steps, noise, strict=True):
            t = torch.full((len(batch),), step, dtype=torch.long)
            x_t = diff.q_sample(x0, t, eps) * m
            x0_hat = diff.predict_x0(x_t, t, den(x_t, t, types, mask, feats, None).prediction)
            err += ((x0_hat - x0) ** 2 * m).sum((1, 2)) / (m.sum((1, 2)) * x0.shape[-1])
        out.append(err / len(steps))
    return torch.cat(out).numpy() if out else np.zeros(0)


def best_of(
    model: StructDiff,
    candidates: Sequence[str],
    per_peptide: int,
    label: str,
    teacher,  # noqa: ANN001 - protdistill.teachers.esm.EsmTeacher
) -> list[str]:
    """From each run of ``per_peptide`` consecutive candidates, the one of lowest error."""
    if len(candidates) % per_peptide:
        raise ValueError(f"{len(candidates)} candidates are not groups of {per_peptide}")
    err = denoising_error(model, candidates, label, teacher).reshape(-1, per_peptide)
    return [candidates[i * per_peptide + int(j)] for i, j in enumerate(err.argmin(1))]
