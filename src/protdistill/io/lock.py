"""A run folder written by one process at a time: ``folder/.lock`` names the writer."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from protdistill.errors import InputError

LOCK = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> dict | None:
    """The live writer recorded in ``path`` (None: no lock, unreadable or stale)."""
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
    same_host = owner.get("host") == socket.gethostname()
    if same_host and not _alive(int(owner.get("pid", -1))):
        return None  # its writer was killed: the lock is stale
    return owner


@contextmanager
def run_lock(folder: str | Path, name: str = LOCK) -> Iterator[None]:
    """Hold ``folder/name`` while writing into ``folder`` (or the output that ``name`` is
    named after); a second writer gets a one-line :class:`InputError` instead of interleaving
    its files with the first's. A lock left by a killed process on this host is taken over
    (resuming after a kill works as before)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _holder(path)
            if owner is not None and owner != me:
                raise InputError(
                    f"another protdistill process (pid {owner.get('pid')} on "
                    f"{owner.get('host')}) is writing here",
                    path=folder if name == LOCK else path,
                    fix=f"wait for it to finish, or delete {path} if that process is gone",
                ) from None
            path.unlink(missing_ok=True)  # stale (or our own): take it over
            continue
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
        except OSError:
            path.unlink(missing_ok=True)  # no half-written lock left behind
            raise
        break
    try:
        yield
    finally:
        if _holder(path) == me:
            path.unlink(missing_ok=True)
