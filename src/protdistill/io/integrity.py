"""Content hashes of what the project writes and reads back."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor


def tensor_digest(tensors: Mapping[str, Tensor]) -> str:
    """Hex sha256 over the names, dtypes, shapes and bytes of ``tensors`` (order-independent)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def nested_tensors(obj: object, prefix: str = "") -> dict[str, Tensor]:
    """Every tensor inside nested dicts / lists / tuples, named by its path (``a/0/b``)."""
    found: dict[str, Tensor] = {}
    if isinstance(obj, Tensor):
        found[prefix] = obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            found |= nested_tensors(value, f"{prefix}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            found |= nested_tensors(value, f"{prefix}/{i}")
    return found


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
