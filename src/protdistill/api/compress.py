"""Compress any model protdistill knows: pick the task that fits ``cfg.model``, then run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protdistill.compress.artifact import MANIFEST
from protdistill.compress.config import CompressConfig
from protdistill.compress.run import compress
from protdistill.compress.task import Task
from protdistill.errors import ConfigError, InputError
from protdistill.progress import Log, no_log
from protdistill.tasks.esm.compress import esm_task
from protdistill.tasks.ppi.export.compress import ppi_task


def load_task(cfg: CompressConfig, *, log: Log = no_log) -> Task:
    """The model behind ``cfg.model`` plus the data it is calibrated / tuned / scored on."""
    if not cfg.model:
        raise ConfigError("no model given", fix="protdistill compress MODEL --out DIR")
    path = Path(cfg.model)
    if not path.exists():
        raise InputError("model not found", path=path, fix="pass a run dir or .safetensors file")
    if _is_esm(path):
        return esm_task(cfg, path)
    return ppi_task(cfg, path, log=log)


def _is_esm(path: Path) -> bool:
    """An HF ESM directory, a small-ESM ``.pt`` file, or a compressed ESM directory."""
    if path.suffix == ".pt":
        return True
    if not path.is_dir():
        return False
    manifest = path / MANIFEST
    if not manifest.exists():
        return (path / "config.json").exists()
    base = json.loads(manifest.read_text(encoding="utf-8")).get("base", {})
    return base.get("kind") == "esm"


def compress_model(cfg: CompressConfig, *, log: Log = no_log) -> dict[str, Any]:
    """`protdistill compress`: load the task for ``cfg.model``, compress it, return the report."""
    return compress(cfg, load_task(cfg, log=log), log=log)
