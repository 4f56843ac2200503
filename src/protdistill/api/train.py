"""Train a PPI student from Python: the whole `protdistill ppi run` pipeline in one call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from protdistill.config import resolve
from protdistill.progress import Log, no_log
from protdistill.tasks.ppi.common.config import PpiConfig
from protdistill.tasks.ppi.run.pipeline import run


def run_ppi(
    out: str | Path, *, config: str | Path | None = None, log: Log = no_log, **options: Any
) -> dict[str, Any]:
    """`ppi run` into ``out``: validate -> split -> teacher -> student -> metrics and plots.

    ``options`` are :class:`PpiConfig` fields (``pairs``, ``fasta``, ``teacher``, ``epochs`` ...)
    over the YAML file ``config``; an unknown or invalid one is a :class:`ConfigError`. Returns
    the metrics (``metrics.json``); ``protdistill.load(out)`` opens the trained student.
    Re-running with the same ``out`` resumes."""
    cfg = resolve(PpiConfig, config, **{k: _plain(v) for k, v in options.items()})
    return run(cfg, out, log=log)


def _plain(value: Any) -> Any:
    """Paths (alone or in a list) as the strings the config holds."""
    if isinstance(value, (list, tuple)):
        return [str(v) if isinstance(v, Path) else v for v in value]
    return str(value) if isinstance(value, Path) else value
