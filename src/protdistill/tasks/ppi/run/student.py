"""A PPI student's description in configs and checkpoints, and rebuilding one from a run."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from protdistill.compress.artifact import MANIFEST, load_compressed
from protdistill.distill.checkpoint import load_model_state
from protdistill.errors import CheckpointError, InputError
from protdistill.students import build_student
from protdistill.tasks.ppi.common.config import PpiConfig


def student_config(cfg: PpiConfig) -> dict:
    head = {} if cfg.student == "interaction" else {"head": cfg.head, "head_width": cfg.head_width}
    return {"kind": cfg.student, **head, **cfg.student_config}


def load_student(path: str | Path, *, backend: str | None = None) -> tuple[nn.Module, dict]:
    """``(model in eval mode, meta)`` from ``student.safetensors``, a run directory holding one, or
    a compressed run directory (``backend``: its INT8 kernels, default as saved) or an ONNX export
    (``model.onnx``: served by ONNX Runtime)."""
    path = Path(path)
    if path.suffix == ".onnx":
        # lazy: onnxruntime start-up
        from protdistill.tasks.ppi.export.onnx import load_onnx_student

        return load_onnx_student(path)
    if path.is_dir():
        compressed = path / MANIFEST
        if compressed.exists():
            return load_compressed(path, backend=backend)
        path = path / "student.safetensors"
    if not path.exists():
        raise InputError(
            "no trained student here",
            path=path,
            fix="pass a run directory made by `protdistill ppi run` or `ppi train`",
        )
    state, meta = load_model_state(path)
    model = build_student(meta["student"])
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        missing = sorted(set(model.state_dict()) ^ set(state))[:3]
        raise CheckpointError(
            f"the weights do not fit a {meta['student'].get('kind')} student (keys {missing}); "
            "it was made by another protdistill version",
            path=path,
            fix="retrain it with `protdistill ppi train` (or `ppi run`) on this version",
        ) from exc
    return model.eval(), meta


def max_residues_of(meta: dict) -> int:
    """Residues per protein the student was trained with (longer proteins are cropped)."""
    return int(meta.get("ppi", {}).get("max_residues", 1000))
