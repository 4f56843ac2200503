"""How the library reports progress without printing: a ``Log`` callback and an optional bar."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from rich.progress import track

Log = Callable[[str], None]
T = TypeVar("T")


def no_log(_: str) -> None:
    """The default ``log``: the library stays silent unless a caller (the CLI) listens."""


#: How much the command line shows: 0 quiet (results and errors only), 1 normal, 2 verbose.
_VERBOSITY = [1]


def set_verbosity(level: int) -> None:
    """0 quiet, 1 normal, 2 verbose (the CLI's ``--quiet`` / ``--verbose``)."""
    _VERBOSITY[0] = level


def verbosity() -> int:
    """The level set by :func:`set_verbosity`: verbose runs keep third-party logs and warnings."""
    return _VERBOSITY[0]


def progress(
    items: Iterable[T], description: str, *, show: bool, total: int | None = None
) -> Iterator[T]:
    """``items``, with a rich progress bar (rate and ETA) on stderr when ``show``."""
    if not show:
        yield from items
        return
    yield from track(items, description=description, total=total, transient=False)


class Meter:
    """A counter with a rate and ETA on stderr (rich) when ``show``; silent otherwise."""

    def __init__(self, total: int, description: str, unit: str, *, show: bool) -> None:
        self._progress = None
        if show:
            from rich.progress import (  # lazy: only long jobs that show a bar need it
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} " + unit),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self._task = self._progress.add_task(description, total=total, rate="")
            self._progress.start()

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)
            speed = self._progress.tasks[0].speed
            rate = "" if not speed else f"{speed:,.0f}/s"
            self._progress.update(self._task, rate=rate)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
