"""protdistill: distil protein language models (ESM-2) into small, fast, interpretable students.

``protdistill.load(run)`` opens a trained run (see :mod:`protdistill.api`)."""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``protdistill.load`` / ``protdistill.PairModel``, imported on first use (lazy: the CLI and
    ``import protdistill.errors`` must not pay for torch and transformers)."""
    if name in ("load", "PairModel"):
        from protdistill import api  # lazy: start-up time, see the docstring

        return getattr(api, name)
    raise AttributeError(f"module 'protdistill' has no attribute {name!r}")
