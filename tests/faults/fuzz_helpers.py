"""Hypothesis strategies for the parser fuzz tests: random bytes, and mutations of valid files
(bytes flipped, inserted, deleted, duplicated, cut short), optionally gzip / bzip2 / xz wrapped."""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Callable

from hypothesis import strategies as st

from protdistill.errors import ProtdistillError

#: Characters that matter to the text formats (separators, quotes, markers, line ends, NUL,
#: non-ASCII), so generated text reaches the parsers' branches rather than their first check.
TEXT_ALPHABET = ">;#|\t ,\"'=*\r\n\x00\x85\u2028é-_.0123456789ACDEFGHIKLMNPQRSTVWYXUObjz"

_OPS = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "duplicate", "truncate"]),
    st.integers(0, 1 << 20),
    st.binary(min_size=1, max_size=12),
)
_WRAP = st.sampled_from(["plain", "plain", "plain", "gzip", "bzip2", "xz", "gzip-cut"])


def _apply(data: bytes, op: tuple[str, int, bytes]) -> bytes:
    kind, pos, payload = op
    at = pos % (len(data) + 1)
    if kind == "flip" and data:
        at = pos % len(data)
        return data[:at] + bytes([data[at] ^ (payload[0] or 1)]) + data[at + 1 :]
    if kind == "insert":
        return data[:at] + payload + data[at:]
    if kind == "delete":
        return data[:at] + data[at + len(payload) :]
    if kind == "duplicate":
        return data[:at] + data[at : at + 4 * len(payload)] * 2 + data[at + 4 * len(payload) :]
    return data[:at]  # truncate


def wrap(data: bytes, how: str) -> bytes:
    """``data`` as stored: plain, compressed, or compressed and cut short."""
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "bzip2":
        return bz2.compress(data)
    if how == "xz":
        return lzma.compress(data)
    if how == "gzip-cut":
        packed = gzip.compress(data, mtime=0)
        return packed[: max(10, len(packed) // 2)]
    return data


def variants(valid: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, random format-ish text, and mutations of ``valid`` (possibly compressed)."""
    mutated = st.builds(
        lambda ops, how: wrap(_mutate(valid, ops), how), st.lists(_OPS, max_size=4), _WRAP
    )
    text = st.text(TEXT_ALPHABET, max_size=300).map(lambda t: t.encode("utf-8"))
    return st.one_of(st.binary(max_size=600), text, mutated)


def _mutate(data: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    for op in ops:
        data = _apply(data, op)
    return data


def parses_or_refuses(read: Callable[[], object]) -> str:
    """Run ``read``: "ok" when it parses, "refused" on the project's typed error (one line);
    any other exception propagates and fails the test."""
    try:
        read()
    except ProtdistillError as exc:
        assert not {"\n", "\r"} & set(str(exc)), repr(str(exc))  # one line in the CLI
        return "refused"
    return "ok"
