"""Reading back what protdistill itself wrote (resume state: JSON settings, safetensors parts).

Such files can still be damaged (a full disk, a copy cut short, a hand edit) or replaced: every
failure is a :class:`CheckpointError` naming the file and saying how to start over, never a
``KeyError`` or a traceback from the safetensors or JSON parser. The safetensors library
itself refuses lying headers (a length past the file, overlapping or uncovered offsets).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from protdistill.errors import CheckpointError

#: A resume file is small; anything bigger than this is not one of ours.
MAX_JSON_BYTES = 16 * 2**20


def read_json(path: str | Path, *, fix: str, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON object in ``path``, holding at least ``keys``; anything else is a
    :class:`CheckpointError` with ``fix``."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise CheckpointError("file is too large to be resume state", path=path, fix=fix)
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"unreadable ({reason})", path=path, fix=fix) from exc
    if not isinstance(data, dict):
        raise CheckpointError("not a JSON object", path=path, fix=fix)
    missing = [k for k in keys if k not in data]
    if missing:
        raise CheckpointError(f"missing {missing[0]!r}", path=path, fix=fix)
    return data


def read_tensors(
    path: str | Path,
    *,
    fix: str,
    expect: Mapping[str, tuple[torch.dtype, int]] | None = None,
    metadata: tuple[str, ...] = (),
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file. ``expect`` names each tensor that must be
    there with its dtype and number of dimensions; ``metadata`` the header keys that must be."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - no iteration
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"not a readable safetensors file ({reason})", path=path,
                              fix=fix) from exc  # fmt: skip
    for name, (dtype, ndim) in (expect or {}).items():
        t = tensors.get(name)
        if t is None or t.dtype != dtype or t.dim() != ndim:
            got = "absent" if t is None else f"{t.dtype}, {t.dim()} dims"
            raise CheckpointError(
                f"tensor {name!r} should be {dtype}, {ndim} dims ({got})", path=path, fix=fix
            )
    missing = [k for k in metadata if k not in header]
    if missing:
        raise CheckpointError(f"header lacks {missing[0]!r}", path=path, fix=fix)
    return tensors, header


def header_int(header: Mapping[str, str], key: str, path: str | Path, *, fix: str) -> int:
    """``int(header[key])`` as a non-negative count, or a :class:`CheckpointError`."""
    try:
        value = int(header[key])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"header {key!r} is not a count", path=path, fix=fix) from exc
    if value < 0:
        raise CheckpointError(f"header {key!r} is negative", path=path, fix=fix)
    return value
