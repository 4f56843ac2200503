"""How the library reports progress without printing: a ``Log`` callback and an optional bar."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from rich.progress import track

Log = Callable[[str], None]
T = TypeVar("T")


def no_log(_: str) -> None:
    """The default ``log``: the library stays silent unless a caller (the CLI) listens."""


def progress(
    items: Iterable[T], description: str, *, show: bool, total: int | None = None
) -> Iterator[T]:
    """``items``, with a rich progress bar (rate and ETA) on stderr when ``show``."""
    if not show:
        yield from items
        return
    yield from track(items, description=description, total=total, transient=False)
