"""Filling a teacher cache in per-rank shares (docs/scale.md): what every stage that runs the
teacher over many inputs (pooled embeddings, pair maps, transfer-set targets) does the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from protdistill.distill.parallel import barrier, current_ranks
from protdistill.progress import progress
from protdistill.teachers.cache import TeacherCache


def fill_cache(
    cache: TeacherCache,
    items: Mapping[str, Any],
    compute: Callable[[list[Any]], list[Any]],
    field: str,
    batch: int,
    desc: str,
    show: bool,
    cost: Callable[[Any], float] = len,
) -> None:
    """Compute ``field`` for the keys of ``items`` not yet cached, one shard per batch of
    ``batch`` items, the costliest first (similar sizes batch together).

    Under several ranks each computes its deterministic share (longest items first, by ``cost``)
    and writes its own shards; after the barrier every rank's cache sees all of them.
    """
    ranks = current_ranks()
    todo = cache.missing(list(items), field)
    if ranks.world > 1:
        barrier()  # every rank has listed the same missing entries before any is written
    missing = ranks.share(todo, cost=lambda k: cost(items[k]))
    chunks = [missing[i : i + batch] for i in range(0, len(missing), batch)]
    label = f"{desc} ({len(missing)} of {len(items)} to do" + (
        f", rank {ranks.rank}/{ranks.world})" if ranks.world > 1 else ")"
    )
    for keys in progress(chunks, label, show=show and bool(chunks)):
        values = compute([items[k] for k in keys])
        cache.put_batch({k: {field: v} for k, v in zip(keys, values, strict=True)})
    if ranks.world > 1:
        barrier()
        cache.refresh()
