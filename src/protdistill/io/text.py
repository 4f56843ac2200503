"""Opening the text files users have: plain, gzip, bzip2 or xz (by content, not by name)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from protdistill.errors import InputError

#: Leading bytes of each compressed format we read.
_MAGIC = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}


class TextLines:
    """Lines of an opened text file (a context manager, iterable once); a damaged or truncated
    compressed file becomes an :class:`InputError` naming it, not an ``EOFError`` mid-read."""

    def __init__(self, handle: TextIO, path: Path, what: str) -> None:
        self._handle, self._path, self._what = handle, path, what

    def __enter__(self) -> TextLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._handle
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            raise InputError(
                f"{self._what} is damaged or truncated ({type(exc).__name__}: {exc})",
                path=self._path,
                fix="download or compress the file again",
            ) from exc


def open_text(path: str | Path, what: str) -> TextLines:
    """``path`` opened for reading text lines (UTF-8, undecodable bytes replaced), decompressing
    gzip / bzip2 / xz files whatever their name. ``what`` names the file kind in errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found", path=path, fix=f"check the {what} path")
    with path.open("rb") as fh:
        head = fh.read(6)
    for magic, opener in _MAGIC.items():
        if head.startswith(magic):
            return TextLines(opener(path, "rt", encoding="utf-8", errors="replace"), path, what)
    return TextLines(path.open(encoding="utf-8", errors="replace"), path, what)
