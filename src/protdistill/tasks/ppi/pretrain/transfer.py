"""The transfer set of general distillation: unlabelled proteins whose teacher representation
the student learns before it sees a label.

Proteins are identified by content (:func:`sequence_key`), so a test protein is kept out of the
transfer set whatever its id in the file it came from. The teacher's per-residue hidden states
are stored in blocks of :data:`BLOCK` residues (their mean, float16) through the content-addressed
teacher cache: a crop of the student's input at a block boundary maps exactly to a slice of
blocks, and the crop's pooled target is the mean of that slice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from protdistill.io.fasta import read_fasta
from protdistill.tasks.ppi.common.cache_fill import fill_cache
from protdistill.teachers.cache import TeacherCache, sequence_key
from protdistill.teachers.loading import with_precision

#: Residues per stored block of teacher hidden states.
BLOCK = 4


@dataclass
class TransferSet:
    """``sequences``: ``{sequence_key: sequence}`` in a stable order; ``report``: counts."""

    sequences: dict[str, str]
    report: dict[str, int | bool | list[str]] = field(default_factory=dict)


def build_transfer_set(
    fastas: Iterable[str | Path],
    *,
    extra: Mapping[str, str] | None = None,
    exclude: Iterable[str] = (),
    transductive: Iterable[str] = (),
) -> TransferSet:
    """Unique sequences of ``fastas`` and ``extra`` (e.g. a run's training proteins), minus every
    sequence in ``exclude`` (the test split), plus those of ``transductive``.

    ``transductive`` is for screening, where the proteins to be scored are known but not their
    labels; the report says how many were added so that no figure hides it.
    """
    fastas = [str(f) for f in fastas]
    records = 0
    seqs: dict[str, str] = {}
    for path in fastas:
        fasta = read_fasta(path)
        records += len(fasta)
        for seq in fasta.values():
            seqs.setdefault(sequence_key(seq), seq)
    for seq in (extra or {}).values():
        records += 1
        seqs.setdefault(sequence_key(seq), seq)
    unique = len(seqs)
    banned = {sequence_key(s) for s in exclude}
    n_banned = len(banned)
    kept = {k: s for k, s in seqs.items() if k not in banned}
    added = 0
    for seq in transductive:
        key = sequence_key(seq)
        if key not in kept:
            kept[key], added = seq, added + 1
    report = {
        "fasta": fastas,
        "records_read": records,
        "unique_sequences": unique,
        "test_sequences": n_banned,
        "excluded_test_sequences": unique - (len(kept) - added),
        "transductive_added": added,
        "transductive": added > 0,
        "proteins": len(kept),
        "residues": sum(len(s) for s in kept.values()),
    }
    return TransferSet(dict(sorted(kept.items())), report)


def teacher_window(seq: str, cap: int) -> int:
    """Start of the ``cap``-residue window the teacher sees of ``seq`` (0 when it fits): a fixed
    offset drawn from the sequence's hash, on a block boundary, so a long protein is not always
    represented by its first residues and the choice is the same on every machine."""
    if len(seq) <= cap:
        return 0
    slots = (len(seq) - cap) // BLOCK + 1
    return int(hashlib.sha256(seq.encode()).hexdigest()[:12], 16) % slots * BLOCK


def block_mean(per_residue: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """(L, D) -> (ceil(L / block), D): the mean of each run of ``block`` residues (the last run
    may be shorter; its mean is over the residues it has)."""
    n, d = per_residue.shape
    blocks = -(-n // block)
    padded = per_residue.new_zeros(blocks * block, d)
    padded[:n] = per_residue
    counts = torch.full((blocks,), float(block), dtype=per_residue.dtype)
    counts[-1] = n - (blocks - 1) * block
    return padded.view(blocks, block, d).sum(1) / counts[:, None]


@dataclass
class ResidueTargets:
    """Teacher targets of the transfer set: ``blocks[key]`` (n_blocks, D) float16 for the
    residues ``sequence[start[key]: start[key] + BLOCK * n_blocks]``."""

    blocks: dict[str, torch.Tensor]
    start: dict[str, int]
    teacher_id: str
    settings: dict


def residue_targets(
    teacher,
    cache_dir: str | Path,
    sequences: Mapping[str, str],
    *,
    layer: int = -1,
    cap: int = 1022,
    batch: int = 32,
    show: bool = True,
) -> ResidueTargets:
    """Block-averaged teacher hidden states of layer ``layer`` for every sequence (its
    :func:`teacher_window` of ``cap`` residues), computing only what ``cache_dir`` lacks.

    The cache directory is keyed by these settings and the teacher's identity: another teacher or
    layer gets its own directory. Resumable: each batch is one immutable shard. Under several
    ranks each computes its share (:func:`fill_cache`).
    """
    settings = {"layer": layer, "cap": cap, "block": BLOCK, "window": "sha256"}
    settings = with_precision(settings, teacher)  # reduced precision: its own directory
    digest = hashlib.sha256(repr(sorted(settings.items())).encode()).hexdigest()[:12]
    cache = TeacherCache(Path(cache_dir) / f"residues-{digest}", teacher.identity, settings)
    start = {k: teacher_window(s, cap) for k, s in sequences.items()}
    windows = {k: s[start[k] : start[k] + cap] for k, s in sequences.items()}

    def compute(seqs: list[str]) -> list[torch.Tensor]:
        out = teacher.embed(seqs, layers=layer)
        return [block_mean(e.per_residue.float()).half() for e in out]

    fill_cache(cache, windows, compute, "blocks", batch, "teacher residue targets", show)
    keys = list(windows)
    blocks = dict(zip(keys, cache.get_batch(keys, "blocks"), strict=True))
    return ResidueTargets(blocks, start, teacher.identity, settings)
