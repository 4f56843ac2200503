"""Figures are files, never windows: pyplot on the Agg backend, imported on first use."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend selected (safe on machines without a display)."""
    import matplotlib  # lazy: start-up time of every command that draws nothing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: as above

    return plt
