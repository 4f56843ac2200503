"""I/O fault injection: make the N-th write, fsync or rename of a command fail with an OSError
(ENOSPC: a full disk, EACCES: a permission), as SQLite's tests do for every I/O call.

Counted events (only paths under the test's folder, so pytest's own files are left alone):
``write`` — a file opened for writing (``open`` / ``Path.open`` / ``os.open`` with a write
flag, which covers ``tempfile.mkstemp``), ``fsync`` — ``os.fsync``, ``rename`` —
``os.replace`` / ``os.rename`` / ``os.link``. Writes done inside compiled code (safetensors'
Rust writer, ONNX Runtime) are not seen; the fsync before each rename stands in for them.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from collections import Counter
from pathlib import Path

import pytest

KINDS = ("write", "fsync", "rename")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class IOFaults:
    """Counts I/O events under ``root``; when armed, the ``at``-th event of ``kind`` raises."""

    def __init__(self, root: Path) -> None:
        self.root = str(root.resolve())
        self.counts: Counter[str] = Counter()
        self.kind: str | None = None
        self.at = 0
        self.code = errno.ENOSPC
        self.fired: str | None = None  # the path whose event failed

    def arm(self, kind: str | None, at: int = 0, code: int = errno.ENOSPC) -> None:
        self.counts, self.kind, self.at, self.code, self.fired = Counter(), kind, at, code, None

    def event(self, kind: str, path: object) -> None:
        name = _name(path)
        if name is None or not name.startswith(self.root):
            return
        self.counts[kind] += 1
        if kind == self.kind and self.counts[kind] == self.at and self.fired is None:
            self.fired = name
            raise OSError(self.code, os.strerror(self.code), name)


def _name(path: object) -> str | None:
    if isinstance(path, int):  # a file descriptor
        try:
            return os.readlink(f"/proc/self/fd/{path}")
        except OSError:
            return None
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.path.abspath(os.fsdecode(path))
    return None


@pytest.fixture()
def io_faults(tmp_path, monkeypatch) -> IOFaults:
    """An :class:`IOFaults` over ``tmp_path`` with the OS calls patched for the test."""
    faults = IOFaults(tmp_path)
    patch_io(faults, monkeypatch)
    return faults


def patch_io(faults: IOFaults, monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the OS calls that write, fsync and rename through ``faults``."""
    real_open, real_os_open = builtins.open, os.open
    real_fsync, real_replace, real_rename, real_link = os.fsync, os.replace, os.rename, os.link

    def fake_open(file, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if any(c in mode for c in "wax+"):
            faults.event("write", file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if flags & _WRITE_FLAGS:
            faults.event("write", path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_fsync(fd):  # noqa: ANN001, ANN202
        faults.event("fsync", fd)
        return real_fsync(fd)

    def renamer(real):  # noqa: ANN001, ANN202
        def fake(src, dst, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            faults.event("rename", dst)
            return real(src, dst, *args, **kwargs)

        return fake

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "fsync", fake_fsync)
    monkeypatch.setattr(os, "replace", renamer(real_replace))
    monkeypatch.setattr(os, "rename", renamer(real_rename))
    monkeypatch.setattr(os, "link", renamer(real_link))
