"""protdistill: distil protein language models (ESM-2) into small, fast, interpretable students.

``protdistill.load(run)`` opens a trained run (see :mod:`protdistill.api`); ``run_ppi`` trains one.
Every public name is listed by ``dir(protdistill)`` and imported on first use, so that
``import protdistill`` (and the CLI's start-up) does not pay for torch and transformers."""

import importlib as _importlib
from typing import Any as _Any

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first use).
_LAZY = {
    "load": "protdistill.api.model",
    "PairModel": "protdistill.api.model",
    "run_ppi": "protdistill.api.train",
    "iter_hits": "protdistill.api.frames",
    "compress_model": "protdistill.api.compress",
    "export_model": "protdistill.api.export",
    "run_distill": "protdistill.api.distill",
    "ProtdistillError": "protdistill.errors",
    "InputError": "protdistill.errors",
    "ConfigError": "protdistill.errors",
    "CacheError": "protdistill.errors",
    "CheckpointError": "protdistill.errors",
    "ModelError": "protdistill.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> _Any:
    """Import a public name's module on first use (lazy: start-up time, see the docstring)."""
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'protdistill' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (what tab completion offers), imported or not yet."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__")})
