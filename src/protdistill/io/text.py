"""Opening the text files users have: plain, gzip, bzip2 or xz (by content, not by name)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from protdistill.errors import InputError

#: Leading bytes of each compressed format we read.
_MAGIC = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}

#: Longest line read (characters): a whole titin is ~35,000; raise with PROTDISTILL_MAX_LINE.
MAX_LINE = 10_000_000
#: A compressed file may expand to max(FLOOR_MB MiB, RATIO x its size): FASTA and pair tables
#: compress 2-10x, a compression bomb 100-1000x and is refused once past the cap.
#: PROTDISTILL_MAX_DECOMPRESSED_MB sets the cap outright.
FLOOR_MB = 64
RATIO = 30


def max_line() -> int:
    """The line-length limit in characters (PROTDISTILL_MAX_LINE, else :data:`MAX_LINE`)."""
    return _env_int("PROTDISTILL_MAX_LINE", MAX_LINE)


def max_decompressed(compressed_bytes: int) -> int:
    """Bytes a compressed file of ``compressed_bytes`` may expand to."""
    cap_mb = _env_int("PROTDISTILL_MAX_DECOMPRESSED_MB", 0)
    if cap_mb:
        return cap_mb * 2**20
    return max(FLOOR_MB * 2**20, RATIO * compressed_bytes)


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    try:
        value = int(text)
    except ValueError:
        return default
    return value if value > 0 else default


class _Capped(io.RawIOBase):
    """A decompressed byte stream that refuses to yield more than ``limit`` bytes."""

    def __init__(self, raw: BinaryIO, limit: int, path: Path, what: str) -> None:
        self._raw, self._limit, self._path, self._what, self._seen = raw, limit, path, what, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer
        n = self._raw.readinto(buffer)
        self._seen += n or 0
        if self._seen > self._limit:
            raise InputError(
                f"{self._what} decompresses to more than {self._limit // 2**20} MiB "
                "(a compression bomb, or a very large file)",
                path=self._path,
                fix="decompress it yourself and pass the plain file, or raise the limit with "
                "PROTDISTILL_MAX_DECOMPRESSED_MB=<MiB>",
            )
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


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
        limit, lineno = max_line(), 0
        try:
            while line := self._handle.readline(limit + 1):
                lineno += 1
                if len(line) > limit and not line.endswith("\n"):
                    raise InputError(
                        f"line longer than {limit:,} characters",
                        path=self._path,
                        record=f"line {lineno}",
                        fix=f"check that this is a {self._what}; for longer lines set "
                        "PROTDISTILL_MAX_LINE=<characters>",
                    )
                yield line
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
            capped = _Capped(opener(path, "rb"), max_decompressed(path.stat().st_size), path, what)
            stream = io.TextIOWrapper(io.BufferedReader(capped), encoding="utf-8", errors="replace")
            return TextLines(stream, path, what)
    return TextLines(path.open(encoding="utf-8", errors="replace"), path, what)
