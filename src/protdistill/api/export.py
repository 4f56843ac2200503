"""`protdistill export`: a trained PPI student as ONNX graphs (fp32 or ONNX Runtime INT8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from protdistill.compress.config import CompressConfig
from protdistill.compress.steps import calibration_batches
from protdistill.errors import ConfigError, InputError
from protdistill.progress import Log, no_log
from protdistill.tasks.ppi.export.compress import ppi_task
from protdistill.tasks.ppi.export.onnx import check_free, export_onnx
from protdistill.tasks.ppi.run.student import load_student

FORMATS = ("onnx",)


def export_model(
    model: str | Path,
    out: str | Path,
    *,
    fmt: str = "onnx",
    int8: bool = False,
    calibration: int = 8,
    pairs: str | None = None,
    fasta: str | None = None,
    overwrite: bool = False,
    log: Log = no_log,
) -> dict[str, Any]:
    """Export the student of ``model`` (run dir, student.safetensors or compressed run) to
    ``out``; ``int8`` calibrates on ``calibration`` training batches of the run's split (or of
    ``pairs`` / ``fasta``). Returns the export manifest."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}", record="format", fix="use --format onnx")
    if Path(out).suffix != ".onnx":
        raise ConfigError("the output must be a .onnx file", path=out, fix="--out model.onnx")
    if not Path(model).exists():
        raise InputError("model not found", path=model, fix="pass a run directory")
    check_free(out, overwrite=overwrite)
    if not int8:
        student, meta = load_student(model)
        return export_onnx(student, meta, out, overwrite=overwrite, log=log)
    cfg = CompressConfig(model=str(model), pairs=pairs, fasta=fasta)
    cfg = cfg.model_copy(update={"calibration_batches": calibration})
    task = ppi_task(cfg, Path(model), log=log)  # loads the student once, with its data
    batches = calibration_batches(task, cfg)
    return export_onnx(
        task.model, task.meta, out, calibration=batches, overwrite=overwrite, log=log
    )
