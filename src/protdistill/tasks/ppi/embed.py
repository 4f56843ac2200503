"""Per-protein student embeddings, computed once and cached: what screening scores pairs from.

A Siamese student (``embed(tokens, mask) -> (B, D)`` plus a ``head`` on
``[a+b, |a-b|, a*b]``) scores a pair from two cached vectors. Proteins are batched by length
(longest first, at most ``tokens_per_batch`` residues per batch) and cropped to the student's
``max_residues`` exactly as training and ``ppi predict`` crop them, so a screen's probabilities
equal ``ppi predict``'s. A protein whose embedding fails is skipped and reported, never the batch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor, nn

from protdistill.alphabet import encode_batch
from protdistill.errors import ModelError
from protdistill.progress import Log, no_log, progress
from protdistill.teachers.cache import TeacherCache, sequence_key


def weights_digest(model: nn.Module) -> str:
    """sha256 (16 hex) of a model's state dict: names, shapes and bytes."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        t = value.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def check_siamese(model: nn.Module) -> None:
    """Screening scores pairs from per-protein vectors: the student must have ``embed``/``head``."""
    if not (
        callable(getattr(model, "embed", None))
        and isinstance(getattr(model, "head", None), nn.Module)
    ):
        raise ModelError(
            f"{type(model).__name__} does not score pairs from per-protein embeddings",
            record="screen",
            fix="screen with a resnet1d (Siamese) student; interaction students use `ppi predict`",
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
def _embed(model: nn.Module, seqs: list[str], max_residues: int) -> Tensor:
    tokens, mask = encode_batch(seqs, max_residues)
    return model.embed(tokens, mask).float()


def _embed_robust(
    model: nn.Module, seqs: list[str], max_residues: int, log: Log
) -> list[Tensor | None]:
    """Embeddings of ``seqs``; when the batch fails, one by one, None for each that fails."""
    try:
        return list(_embed(model, seqs, max_residues))
    except (RuntimeError, ValueError) as exc:
        if len(seqs) == 1:
            log(f"skipped a protein of {len(seqs[0])} residues: {str(exc).splitlines()[0]}")
            return [None]
    return [e for s in seqs for e in _embed_robust(model, [s], max_residues, log)]


def student_embeddings(
    model: nn.Module,
    sequences: dict[str, str],
    cache_dir: str | Path,
    *,
    max_residues: int,
    tokens_per_batch: int = 64_000,
    show_progress: bool = False,
    log: Log = no_log,
) -> tuple[dict[str, Tensor], list[str]]:
    """``({id: (D,) embedding}, skipped ids)``; only sequences the cache lacks are computed."""
    check_siamese(model)
    model.eval()
    settings = {"max_residues": max_residues, "crop": "first"}
    cache = TeacherCache(Path(cache_dir), f"student-{weights_digest(model)}", settings)
    keyed = {sequence_key(s): s for s in sequences.values()}
    todo = cache.missing(list(keyed), "embedding")
    crops = [min(len(keyed[k]), max_residues) for k in todo]
    batches = length_batches(crops, tokens_per_batch)
    log(f"student embeddings: {len(keyed)} proteins, {len(todo)} to compute, cache {cache.root}")
    failed: set[str] = set()
    for batch in progress(batches, "embedding proteins", show=show_progress and bool(batches)):
        keys = [todo[i] for i in batch]
        values = _embed_robust(model, [keyed[k] for k in keys], max_residues, log)
        failed |= {k for k, v in zip(keys, values, strict=True) if v is None}
        done = {
            k: {"embedding": v.clone()} for k, v in zip(keys, values, strict=True) if v is not None
        }
        if done:
            cache.put_batch(done)
    ids = [pid for pid, s in sequences.items() if sequence_key(s) not in failed]
    skipped = [pid for pid, s in sequences.items() if sequence_key(s) in failed]
    values = cache.get_batch([sequence_key(sequences[p]) for p in ids], "embedding")
    return dict(zip(ids, values, strict=True)), skipped
