"""Teacher residue states of labelled chains, computed once into a teacher cache (float16).

Keys are :func:`~protdistill.teachers.cache.sequence_key` of each sequence, field ``states``
``(L, D)`` of the teacher's last layer; chains longer than the teacher's window are windowed
(per-residue average over overlapping windows, :mod:`protdistill.teachers.windows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from protdistill.teachers.cache import TeacherCache, build, sequence_key
from protdistill.teachers.esm import EsmTeacher

FIELD = "states"


def open_states(teacher: EsmTeacher, root: str | Path, readonly: bool = False) -> TeacherCache:
    """The cache of last-layer residue states for ``teacher`` (its windowing in the settings)."""
    settings = {
        "kind": "site_states",
        "layer": teacher.num_layers,
        "max_residues": teacher.max_residues,
        "window_overlap": teacher.window_overlap,
        "dtype": "float16",
    }
    return TeacherCache(root, teacher.identity, settings, readonly=readonly)


def fill_states(
    teacher: EsmTeacher,
    cache: TeacherCache,
    seqs: Sequence[str],
    batch_size: int = 32,
    progress: bool = False,
) -> int:
    """Compute the states of every sequence not yet cached (resumable); return how many."""
    items = {sequence_key(s): s for s in seqs}

    def compute(batch: list[str]) -> list[dict[str, torch.Tensor]]:
        with torch.no_grad():
            embs = teacher.embed(batch)
        return [{FIELD: e.per_residue.to(torch.float16)} for e in embs]

    return build(cache, items, compute, FIELD, batch_size=batch_size, progress=progress)


def load_states(cache: TeacherCache, seqs: Sequence[str]) -> list[torch.Tensor]:
    """Cached ``(L, D)`` float16 states, one per sequence, in order."""
    return cache.get_batch([sequence_key(s) for s in seqs], FIELD)
