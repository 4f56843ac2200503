"""`protdistill distill`: one command for every teacher family; each task supplies a distiller."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from protdistill.distill.config import DistillConfig
from protdistill.distill.parallel import finish, launch
from protdistill.errors import CheckpointError, ConfigError
from protdistill.tasks.esm.distill import distill_esm
from protdistill.tasks.semcom.distill import distill_semcom

#: Family name -> the task function that distils a teacher of that family.
DISTILLERS: dict[str, Callable[[DistillConfig], dict[str, Any]]] = {
    "esm": distill_esm,
    "semcom": distill_semcom,
}


def detect_family(cfg: DistillConfig) -> str:
    """``semcom`` for a DeepSC ``.pt``, ``esm`` for an ESM-2 folder or hub id."""
    if not cfg.teacher_checkpoint:
        raise ConfigError("no teacher given", fix="pass --teacher-checkpoint PATH")
    path = Path(cfg.teacher_checkpoint)
    if cfg.family != "auto":
        return cfg.family
    if path.is_dir():
        if (path / "config.json").is_file():
            return "esm"
        raise CheckpointError(
            "folder holds no config.json", path=path, fix="pass an ESM-2 model folder"
        )
    if path.is_file():
        return "semcom"
    hub_like = "/" in str(path) and not str(path).startswith((".", "/")) and not path.suffix
    if hub_like:
        return "esm"
    raise CheckpointError(
        "teacher checkpoint not found",
        path=path,
        fix="train one with `protdistill semcom train` or pass an ESM-2 folder / hub id",
    )


def run_distill(cfg: DistillConfig) -> dict[str, Any]:
    """Distil by ``cfg`` (family detected from the teacher); returns the saved report dict.

    With ``devices`` / ``num_nodes`` > 1 the processes are started (or joined) here and the
    student trains with DDP; rank 0 writes every file and returns the report, the others ``{}``.
    """
    family = detect_family(cfg)
    launch(cfg.scale)
    report = DISTILLERS[family](cfg)
    return report if finish().is_main else {}
