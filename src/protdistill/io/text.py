"""Opening the text files users have: plain, gzip, bzip2 or xz (by content, not by name)."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path
from typing import TextIO

from protdistill.errors import InputError

#: Leading bytes of each compressed format we read.
_MAGIC = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}


def open_text(path: str | Path, what: str) -> TextIO:
    """``path`` opened for reading text (UTF-8, undecodable bytes replaced), decompressing
    gzip / bzip2 / xz files whatever their name. ``what`` names the file kind in errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found", path=path, fix=f"check the {what} path")
    with path.open("rb") as fh:
        head = fh.read(6)
    for magic, opener in _MAGIC.items():
        if head.startswith(magic):
            return opener(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")
