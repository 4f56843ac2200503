"""The Python API, what notebooks import: ``protdistill.load(run)`` opens a trained run (plain or
compressed) as a :class:`~protdistill.api.model.PairModel` with ``predict`` and ``embed``."""

from protdistill.api.model import PairModel, load

__all__ = ["PairModel", "load"]
