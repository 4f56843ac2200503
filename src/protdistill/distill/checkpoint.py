"""Model files without pickle: safetensors weights + JSON metadata, and safe ``torch.load``.

* :func:`save_model` / :func:`load_model_state` — the format for finished models
  (``student.safetensors``): a flat ``state_dict`` plus a JSON ``meta`` dict stored in the
  safetensors header (key ``protdistill_meta``). Nothing is ever unpickled.
* :func:`load_torch` — the only way the project reads ``.ckpt``/``.pt`` files:
  ``torch.load(weights_only=True)``; every failure becomes a :class:`CheckpointError`.
* :func:`student_state_from_checkpoint` — the student weights of a Lightning checkpoint
  written by :func:`protdistill.distill.trainer.fit` (EMA weights when EMA was on).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from protdistill.errors import CheckpointError
from protdistill.io.atomic import save_tensors
from protdistill.io.integrity import nested_tensors, tensor_digest

META_KEY = "protdistill_meta"
DIGEST_KEY = "protdistill_sha256"  # tensor_digest of the state dict, checked on every read
_RESAVE = "re-create it (re-run the command that wrote it, or resume from an earlier checkpoint)"


def _json_default(value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _unshared(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Detached CPU tensors; tensors sharing storage (tied weights) are cloned apart."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for name, tensor in state.items():
        t = tensor.detach().cpu()
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        out[name] = t.clone() if key in seen and t.numel() else t
        seen.add(key)
    return out


def save_model(path: str | Path, model: nn.Module | Mapping[str, Tensor], meta: dict) -> Path:
    """Write ``model``'s ``state_dict`` (or a state dict) as safetensors with ``meta`` as JSON.

    The write is atomic. ``meta`` must be JSON data (``Path`` and ``Enum`` values are converted);
    anything else is a :class:`CheckpointError`.
    """
    path = Path(path)
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(
            f"state entry {bad[0]!r} is not a tensor",
            path=path,
            fix="pass an nn.Module or a flat {name: tensor} dict",
        )
    try:
        text = json.dumps(meta, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"meta is not JSON-serialisable ({exc})",
            path=path,
            fix="pass plain data, e.g. cfg.model_dump(mode='json')",
        ) from exc
    state = _unshared(state)
    metadata = {META_KEY: text, "format": "pt", DIGEST_KEY: tensor_digest(state)}
    return save_tensors(path, state, metadata=metadata)


def load_model_state(path: str | Path) -> tuple[dict[str, Tensor], dict]:
    """Read a file written by :func:`save_model`: ``(state_dict, meta)`` (tensors on CPU).

    The tensors are checked against the sha256 stored at write time (files written before the
    digest existed carry none and are read unchecked)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            "model file not found", path=path, fix="pass a .safetensors file written by protdistill"
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iter
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"not a readable safetensors file ({exc})".replace("\n", " "), path=path, fix=_RESAVE
        ) from exc
    digest = header.get(DIGEST_KEY)
    if digest is not None and digest != tensor_digest(state):
        raise CheckpointError(
            "the weights do not match the sha256 stored when they were written (corrupt file)",
            path=path,
            fix="restore the file from a copy, or retrain / re-run the command that wrote it",
        )
    try:
        meta = json.loads(header.get(META_KEY, "{}"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"corrupt metadata ({exc.msg})", path=path, record=META_KEY, fix=_RESAVE
        ) from exc
    return state, meta


def load_torch(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a missing/corrupt/unsafe file → CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            "checkpoint not found",
            path=path,
            fix="check the path (training writes <out_dir>/checkpoints/{best,last}.ckpt)",
        )
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            raise CheckpointError(
                "checkpoint holds arbitrary Python objects; refusing to unpickle them "
                "(weights_only=True)",
                path=path,
                fix="load it in the code that wrote it and re-save tensors and plain data only",
            ) from exc
        raise CheckpointError(f"corrupt checkpoint ({exc})", path=path, fix=_RESAVE) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"corrupt or truncated checkpoint ({reason})", path=path, fix=_RESAVE
        ) from exc
    if isinstance(obj, dict) and CKPT_DIGEST in obj:
        stored = obj.pop(CKPT_DIGEST)
        if stored != checkpoint_digest(obj):
            raise CheckpointError(
                "checkpoint content does not match the sha256 stored when it was written "
                "(corrupt file)",
                path=path,
                fix="restore it from a copy, or delete it to train again from the previous one",
            )
    return obj


#: Key of the sha256 that :func:`with_digest` adds to a training checkpoint.
CKPT_DIGEST = "protdistill_sha256"


def checkpoint_digest(ckpt: Mapping[str, Any]) -> str:
    """sha256 over every tensor of a checkpoint (weights, optimizer state, RNG states)."""
    return tensor_digest(nested_tensors({k: v for k, v in ckpt.items() if k != CKPT_DIGEST}))


def with_digest(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``ckpt`` plus the sha256 :func:`load_torch` verifies (flipped bytes in tensor data do not
    break unpickling, so without it a damaged checkpoint would be resumed from)."""
    return {**ckpt, CKPT_DIGEST: checkpoint_digest(ckpt)}


def student_state_from_checkpoint(
    path: str | Path, prefix: str = "student."
) -> tuple[dict[str, Tensor], dict]:
    """``(student state_dict, hyper_parameters)`` from a checkpoint written by ``fit``.

    The ``prefix`` (the ``DistillModule`` attribute name) is stripped. With EMA on, these are the
    EMA weights (the raw ones are under ``raw_student_state`` in the checkpoint).
    """
    ckpt = load_torch(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError("no 'state_dict' in checkpoint", path=path, fix=_RESAVE)
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(
            f"no weights under {prefix!r} in the checkpoint",
            path=path,
            fix="pass a checkpoint written by protdistill's fit() or the right prefix",
        )
    return state, dict(ckpt.get("hyper_parameters") or {})


def load_best_student(student: nn.Module, best_path: str | Path | None) -> None:
    """Load the student weights of ``best.ckpt`` into ``student`` (no-op without one)."""
    if best_path is not None and Path(best_path).is_file():
        state, _ = student_state_from_checkpoint(best_path)
        student.load_state_dict(state)
