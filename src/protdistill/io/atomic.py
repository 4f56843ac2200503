"""Atomic writes: a file is either the old version or the complete new one, never half written."""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file


@contextmanager
def atomic_path(path: str | Path, *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed to disk (fsync) and
    renamed over ``path``. With ``exclusive`` an existing ``path`` is never replaced:
    FileExistsError is raised instead. An OSError on the way (a full disk, a permission)
    leaves ``path`` as it was, removes the temporary file and names ``path``, not the
    temporary one."""
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        _fsync(tmp_path)  # the bytes are on disk before the name points at them
        if exclusive:
            os.link(tmp_path, path)  # atomic, and fails when another writer took the name
        else:
            os.replace(tmp_path, path)
        _fsync(path.parent, directory=True)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.filename is not None and str(exc.filename) not in (str(tmp_path), str(path)):
            raise  # about another file (e.g. read by the writer): its own name is the right one
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def _fsync(path: Path, *, directory: bool = False) -> None:
    """Flush ``path`` (a file, or a directory's entries) to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if not (directory and exc.errno == errno.EINVAL):  # some file systems cannot sync dirs
            raise
    finally:
        os.close(fd)


def atomic_write(
    path: str | Path, writer: Callable[[Path], None], *, exclusive: bool = False
) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path, exclusive=exclusive) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    """``obj`` as JSON that every parser reads: NaN / infinity become ``null``."""
    text = json.dumps(_finite(obj), indent=2, sort_keys=True, default=str, allow_nan=False)
    return write_text(path, text + "\n")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def save_tensors(
    path: str | Path,
    tensors: dict,
    metadata: dict[str, str] | None = None,
    *,
    exclusive: bool = False,
) -> Path:
    """Save a flat ``{name: tensor}`` dict as safetensors, atomically (``exclusive``: never
    replacing an existing file)."""
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return atomic_write(
        path, lambda p: save_file(contiguous, str(p), metadata=metadata), exclusive=exclusive
    )


def torch_save(path: str | Path, obj: Any) -> Path:
    """``torch.save`` atomically (objects must load with ``weights_only=True``)."""
    return atomic_write(path, lambda p: torch.save(obj, p))


def remove_stale_temps(folder: str | Path, older_than: float = 0.0) -> int:
    """Delete the temporary files of :func:`atomic_path` in ``folder`` that killed writes left
    behind, only those older than ``older_than`` seconds (a younger one may be a live writer's
    in another process); returns how many were removed."""
    removed, now = 0, time.time()
    for tmp in Path(folder).glob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime >= older_than:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            pass
    return removed
