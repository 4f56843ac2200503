"""Peptide data for StructDiff: seeded split, teacher features (cached), padded batches.

Teacher features per unique sequence: last-layer ESM-2 embeddings ``(L, D)`` and contact maps
``(L, L)``; with ESMFold also distance channels ``(L, L, K)`` and residue features ``(L, F)``.
Embeddings are standardised per dimension with training-set statistics before diffusion.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset, WeightedRandomSampler

from protdistill.errors import InputError
from protdistill.io.peptides import Peptide
from protdistill.teachers.cache import TeacherCache, sequence_key


@dataclass
class PeptideSplit:
    """Train / validation peptides; a sequence never appears on both sides."""

    train: list[Peptide]
    val: list[Peptide]
    types: list[str]

    def sequences(self, part: str, kind: str | None = None) -> list[str]:
        """Unique sequences of ``part`` ('train' / 'val'), optionally of one type only."""
        items = self.train if part == "train" else self.val
        return sorted({p.sequence for p in items if kind is None or p.type == kind})


def split_peptides(
    peptides: Sequence[Peptide], val_fraction: float = 0.1, seed: int = 0
) -> PeptideSplit:
    """Seeded split by unique sequence (a peptide of several types stays on one side)."""
    seqs = sorted({p.sequence for p in peptides})
    random.Random(seed).shuffle(seqs)
    n_val = round(len(seqs) * val_fraction) if len(seqs) > 1 else 0
    val = set(seqs[:n_val])
    types = sorted({p.type for p in peptides})
    return PeptideSplit(
        train=[p for p in peptides if p.sequence not in val],
        val=[p for p in peptides if p.sequence in val],
        types=types,
    )


def split_like(
    peptides: Sequence[Peptide], fixed: PeptideSplit, source: str | Path
) -> PeptideSplit:
    """``peptides`` on the side ``fixed`` (an earlier run's split) put their sequences, so models
    trained on other types or subsets are scored on the same held-out peptides."""
    val = set(fixed.sequences("val"))
    known = val | set(fixed.sequences("train"))
    unknown = [p for p in peptides if p.sequence not in known]
    if unknown:
        raise InputError(
            f"{len(unknown)} peptides are in neither side of this split",
            path=source,
            record=f"{unknown[0].type} {unknown[0].sequence}",
            fix="use the split.json of a run trained on the same data file, or drop split_from",
        )
    return PeptideSplit(
        train=[p for p in peptides if p.sequence not in val],
        val=[p for p in peptides if p.sequence in val],
        types=sorted({p.type for p in peptides}),
    )


@dataclass
class TeacherFeatures:
    """Per-sequence teacher outputs (CPU tensors, float32)."""

    embeddings: dict[str, Tensor] = field(default_factory=dict)  # (L, D)
    contacts: dict[str, Tensor] = field(default_factory=dict)  # (L, L)
    fold_pair: dict[str, Tensor] = field(default_factory=dict)  # (L, L, K)
    fold_residue: dict[str, Tensor] = field(default_factory=dict)  # (L, F)


def _fold_fields(
    fold,  # noqa: ANN001 - structure.FoldFeaturizer
    seqs: list[str],
    root: Path | None,
    batch: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, list[Tensor]]:
    """ESMFold pair / residue features for ``seqs`` (one fold per sequence feeds both)."""
    folded: dict[str, tuple[Tensor, Tensor]] = {}

    def fold_feats(xs: list[str], part: int) -> list[Tensor]:
        todo = [x for x in xs if x not in folded]
        folded.update(zip(todo, fold.features(todo), strict=True))
        return [folded[x][part].half() for x in xs]

    fold_fields = {
        "fold_pair": lambda xs: fold_feats(xs, 0),
        "fold_residue": lambda xs: fold_feats(xs, 1),
    }
    return _cached_fields(
        fold.identity,
        {"task": "peptide"},
        seqs,
        fold_fields,
        root and root / "esmfold",
        batch,
        progress,
    )


def compute_features(
    teacher,  # noqa: ANN001 - protdistill.teachers.esm.EsmTeacher
    seqs: Sequence[str],
    *,
    cache_root: str | Path | None = None,
    contacts: bool = True,
    fold=None,  # noqa: ANN001 - structure.FoldFeaturizer
    batch: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> TeacherFeatures:
    """Teacher features for ``seqs``, computing only what the cache (if any) lacks."""
    seqs = sorted(set(seqs))
    root = None if cache_root is None else Path(cache_root)
    esm_fields: dict[str, Callable[[list[str]], list[Tensor]]] = {
        "per_residue": lambda xs: [e.per_residue.half() for e in teacher.embed(xs)]
    }
    if contacts:
        esm_fields["contacts"] = lambda xs: [c.half() for c in teacher.contacts(xs)]
    settings = {"task": "peptide", "layer": "last"}
    values = _cached_fields(
        teacher.identity,
        settings,
        seqs,
        esm_fields,
        root and root / "esm" / _safe(teacher.identity),
        batch,
        progress,
    )
    if fold is not None:
        values.update(_fold_fields(fold, seqs, root, batch, progress))
    out = TeacherFeatures()
    store = {
        "per_residue": out.embeddings,
        "contacts": out.contacts,
        "fold_pair": out.fold_pair,
        "fold_residue": out.fold_residue,
    }
    for name, tensors in values.items():
        store[name].update({s: t.float() for s, t in zip(seqs, tensors, strict=True)})
    return out


def _cached_fields(
    identity: str,
    settings: dict,
    seqs: list[str],
    fields: dict[str, Callable[[list[str]], list[Tensor]]],
    cache_root: str | Path | None,
    batch: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, list[Tensor]]:
    if cache_root is None:
        return {name: _batched(fn, seqs, batch) for name, fn in fields.items()}

    cache = TeacherCache(Path(cache_root), identity, settings)
    keys = {sequence_key(s): s for s in seqs}
    out = {}
    for name, fn in fields.items():
        missing = cache.missing(list(keys), name)
        for i in range(0, len(missing), batch):
            chunk = missing[i : i + batch]
            values = fn([keys[k] for k in chunk])
            cache.put_batch({k: {name: v} for k, v in zip(chunk, values, strict=True)})
            if progress is not None:
                progress(min(i + batch, len(missing)), len(missing))
        out[name] = cache.get_batch([sequence_key(s) for s in seqs], name)
    return out


def _safe(name: str) -> str:
    """A directory name for a teacher identity (one cache per teacher)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


def _batched(fn: Callable[[list[str]], list[Tensor]], seqs: list[str], batch: int) -> list[Tensor]:
    out: list[Tensor] = []
    for i in range(0, len(seqs), batch):
        out.extend(fn(seqs[i : i + batch]))
    return out


def embedding_stats(embeddings: Sequence[Tensor], scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """Per-dimension ``mean`` and ``std`` ``(D,)`` over all residues of ``embeddings``
    ``[(L, D)]``: ``(x - mean) / std`` has mean 0 and standard deviation ``scale`` per dimension
    (``scale`` < 1 lowers the signal-to-noise ratio of every diffusion step)."""
    flat = torch.cat([e.float() for e in embeddings], dim=0)
    return flat.mean(0), flat.std(0).clamp_min(1e-4) / scale


def type_balanced_sampler(
    peptides: Sequence[Peptide], generator: torch.Generator
) -> WeightedRandomSampler:
    """Draws (with replacement, ``len(peptides)`` per epoch) giving every type equal weight, so a
    type with few peptides is seen as often as a large one."""
    counts: dict[str, int] = {}
    for p in peptides:
        counts[p.type] = counts.get(p.type, 0) + 1
    weights = torch.tensor([1.0 / counts[p.type] for p in peptides], dtype=torch.double)
    return WeightedRandomSampler(weights, len(peptides), replacement=True, generator=generator)


class PeptideDataset(Dataset):
    """Items ``(sequence, type id)`` with standardised embeddings and structure features."""

    def __init__(
        self,
        peptides: Sequence[Peptide],
        types: Sequence[str],
        features: TeacherFeatures,
        mean: Tensor,
        std: Tensor,
        *,
        contacts: bool = True,
        fold: bool = False,
    ) -> None:
        self.items = [(p.sequence, list(types).index(p.type)) for p in peptides]
        self.features, self.mean, self.std = features, mean, std
        self.contacts, self.fold = contacts, fold

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        seq, type_id = self.items[i]
        f = self.features
        item = {"seq": seq, "type": type_id, "x0": (f.embeddings[seq] - self.mean) / self.std}
        pair = []
        if self.contacts:
            pair.append(f.contacts[seq][..., None])
        if self.fold:
            pair.append(f.fold_pair[seq])
            item["residue"] = f.fold_residue[seq]
        if pair:
            item["pair"] = torch.cat(pair, dim=-1)
        return item


def collate(items: list[dict]) -> dict:
    """Pad to ``x0`` ``(B, L, D)``, ``mask`` ``(B, L)``, ``pair`` ``(B, L, L, P)``, ``residue``."""
    n = max(it["x0"].shape[0] for it in items)
    b, d = len(items), items[0]["x0"].shape[1]
    x0 = torch.zeros(b, n, d)
    mask = torch.zeros(b, n, dtype=torch.bool)
    batch: dict = {"seqs": [it["seq"] for it in items]}
    batch["type_ids"] = torch.tensor([it["type"] for it in items], dtype=torch.long)
    if "pair" in items[0]:
        batch["pair"] = torch.zeros(b, n, n, items[0]["pair"].shape[-1])
    if "residue" in items[0]:
        batch["residue"] = torch.zeros(b, n, items[0]["residue"].shape[-1])
    for i, it in enumerate(items):
        k = it["x0"].shape[0]
        x0[i, :k] = it["x0"]
        mask[i, :k] = True
        if "pair" in batch:
            batch["pair"][i, :k, :k] = it["pair"]
        if "residue" in batch:
            batch["residue"][i, :k] = it["residue"]
    batch["x0"], batch["mask"] = x0, mask
    return batch
