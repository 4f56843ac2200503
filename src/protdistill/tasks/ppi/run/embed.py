"""Per-protein student embeddings, computed once and cached: what screening scores pairs from.

A Siamese student (``embed(tokens, mask) -> (B, D)`` plus a ``head`` on
``[a+b, |a-b|, a*b]``) scores a pair from two cached vectors. Proteins are batched by length
(longest first, at most ``tokens_per_batch`` residues per batch) and cropped to the student's
``max_residues`` exactly as training and ``ppi predict`` crop them, so a screen's probabilities
equal ``ppi predict``'s. A protein whose embedding fails is skipped and reported, never the batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from protdistill.alphabet import encode_batch
from protdistill.errors import ModelError
from protdistill.io.integrity import tensor_digest
from protdistill.progress import Log, no_log, progress
from protdistill.teachers.cache import TeacherCache, sequence_key


def weights_digest(model: nn.Module) -> str:
    """sha256 (16 hex) of a model's state dict: names, shapes and bytes (an ONNX student: of its
    graphs)."""
    if isinstance(getattr(model, "digest", None), str):
        return model.digest
    return tensor_digest(model.state_dict())[:16]


def is_siamese(model: nn.Module) -> bool:
    """True for students that score a pair from two pooled vectors (an ``embed`` method and a
    ``head`` on ``[a+b, |a-b|, a*b]``); an ``embed`` *layer* does not count."""
    embed = getattr(model, "embed", None)
    return (
        callable(embed)
        and not isinstance(embed, nn.Module)
        and isinstance(getattr(model, "head", None), nn.Module)
        and not is_interaction(model)
    )


def is_interaction(model: nn.Module) -> bool:
    """True for students that score a pair from residue features and a residue map."""
    return callable(getattr(model, "residues", None)) and callable(
        getattr(model, "interaction_map", None)
    )


def check_siamese(model: nn.Module) -> None:
    """Per-protein embeddings exist only for Siamese students (``embed`` / ``head``)."""
    if not is_siamese(model):
        raise ModelError(
            f"{type(model).__name__} does not score pairs from per-protein embeddings",
            record="embed",
            fix="use a resnet1d (Siamese) student, or screen the interaction student (slower)",
        )


def length_batches(lengths: list[int], tokens_per_batch: int) -> list[list[int]]:
    """Indices grouped longest first so that ``len(batch) * longest <= tokens_per_batch``."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= tokens_per_batch:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


@torch.inference_mode()
def _embed(model: nn.Module, seqs: list[str], max_residues: int) -> list[Tensor]:
    """Siamese students: (D,) pooled embeddings; interaction students: (C, L) residue features
    of each (cropped) sequence, padding removed."""
    tokens, mask = encode_batch(seqs, max_residues)
    if is_siamese(model):
        return list(model.embed(tokens, mask).float())
    feats = model.residues(tokens, mask).float()
    return [f[:, : int(m.sum())].clone() for f, m in zip(feats, mask, strict=True)]


def _embed_robust(
    model: nn.Module, seqs: list[str], max_residues: int, log: Log
) -> list[Tensor | None]:
    """Embeddings of ``seqs``; when the batch fails, one by one, None for each that fails."""
    try:
        return _embed(model, seqs, max_residues)
    except (RuntimeError, ValueError) as exc:
        if len(seqs) == 1:
            log(f"skipped a protein of {len(seqs[0])} residues: {str(exc).splitlines()[0]}")
            return [None]
    return [e for s in seqs for e in _embed_robust(model, [s], max_residues, log)]


def student_features(
    model: nn.Module,
    sequences: dict[str, str],
    cache_dir: str | Path,
    *,
    max_residues: int,
    tokens_per_batch: int = 64_000,
    show_progress: bool = False,
    log: Log = no_log,
) -> tuple[dict[str, Tensor], list[str]]:
    """``({id: features}, skipped ids)``: (D,) embeddings of a Siamese student, (C, L) residue
    features of an interaction student; only sequences the cache lacks are computed."""
    if not is_interaction(model):
        check_siamese(model)
    model.eval()
    field = "embedding" if is_siamese(model) else "residues"
    settings = {"max_residues": max_residues, "crop": "first", "field": field}
    cache = TeacherCache(Path(cache_dir), f"student-{weights_digest(model)}", settings)
    keyed = {sequence_key(s): s for s in sequences.values()}
    todo = cache.missing(list(keyed), field)
    crops = [min(len(keyed[k]), max_residues) for k in todo]
    batches = length_batches(crops, tokens_per_batch)
    log(f"student embeddings: {len(keyed)} proteins, {len(todo)} to compute, cache {cache.root}")
    failed: set[str] = set()
    for batch in progress(batches, "embedding proteins", show=show_progress and bool(batches)):
        keys = [todo[i] for i in batch]
        values = _embed_robust(model, [keyed[k] for k in keys], max_residues, log)
        failed |= {k for k, v in zip(keys, values, strict=True) if v is None}
        done = {k: {field: v.clone()} for k, v in zip(keys, values, strict=True) if v is not None}
        if done:
            cache.put_batch(done)
    ids = [pid for pid, s in sequences.items() if sequence_key(s) not in failed]
    skipped = [pid for pid, s in sequences.items() if sequence_key(s) in failed]
    values = cache.get_batch([sequence_key(sequences[p]) for p in ids], field)
    return dict(zip(ids, values, strict=True)), skipped


def student_embeddings(
    model: nn.Module, sequences: dict[str, str], cache_dir: str | Path, **options: Any
) -> tuple[dict[str, Tensor], list[str]]:
    """:func:`student_features` of a Siamese student: ``({id: (D,) embedding}, skipped ids)``."""
    check_siamese(model)
    return student_features(model, sequences, cache_dir, **options)
