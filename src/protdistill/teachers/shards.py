"""Immutable safetensors shards of the teacher cache: content fingerprints and header checks."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from protdistill.errors import CacheError
from protdistill.io.integrity import tensor_digest as fingerprint

__all__ = ["fingerprint", "read_header"]


def read_header(path: Path) -> tuple[list[str], dict[str, str]]:
    """Tensor names and metadata of a safetensors file; checks the file is complete.

    A truncated or corrupt file raises :class:`CacheError` naming it.
    """
    fix = (
        "delete this shard (its entries are recomputed by the next build) or open with repair=True"
    )
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            (size,) = struct.unpack("<Q", raw)
            header = json.loads(fh.read(size))
        file_size = path.stat().st_size
    except (OSError, struct.error, ValueError, MemoryError, OverflowError) as exc:
        raise CacheError(f"unreadable shard header ({exc})", path=path, fix=fix) from exc
    if not isinstance(header, dict):
        raise CacheError("shard header is not a mapping", path=path, fix=fix)
    meta = header.pop("__metadata__", None) or {}
    try:
        end = max((int(v["data_offsets"][1]) for v in header.values()), default=0)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CacheError("malformed shard header", path=path, fix=fix) from exc
    if 8 + size + end != file_size:
        raise CacheError(
            f"shard is truncated or padded: {file_size} bytes, header says {8 + size + end}",
            path=path,
            fix=fix,
        )
    return list(header), meta
