"""Partial distillation helpers: which part learns, which is copied from the teacher and frozen,
and DistilBERT-style initialisation of a shallower stack from evenly spaced teacher layers."""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from torch import nn

from protdistill.distill.config import DistillConfig, TrainConfig
from protdistill.errors import ConfigError, ModelError


def evenly_spaced(n_teacher: int, n_student: int) -> list[int]:
    """Teacher layer indices for a student of ``n_student`` layers, first and last included.

    ``evenly_spaced(6, 3) == [0, 2, 5]``, ``evenly_spaced(6, 2) == [0, 5]``,
    ``evenly_spaced(6, 1) == [5]`` (a single layer takes the last, whose output the head reads).
    """
    if n_student < 1 or n_student > n_teacher:
        raise ConfigError(
            f"student_layers={n_student} but the teacher has {n_teacher} layers",
            fix=f"choose 1 <= --student-layers <= {n_teacher}",
        )
    if n_student == 1:
        return [n_teacher - 1]
    step = (n_teacher - 1) / (n_student - 1)
    return [round(i * step) for i in range(n_student)]


def check_layer_indices(indices: list[int], n_teacher: int, n_student: int) -> None:
    """One teacher layer index per student layer, each inside the teacher (else ConfigError)."""
    if len(indices) != n_student:
        raise ConfigError(
            f"{len(indices)} teacher layer(s) {list(indices)} for {n_student} student layer(s)",
            fix="give one --init-layers index per student layer",
        )
    if any(not 0 <= j < n_teacher for j in indices):
        raise ConfigError(
            f"init layers {list(indices)} outside the teacher's {n_teacher} layers",
            fix=f"choose --init-layers between 0 and {n_teacher - 1}",
        )


def copy_layers(
    teacher_layers: nn.ModuleList, student_layers: nn.ModuleList, indices: list[int] | None = None
) -> list[int]:
    """Load teacher layer ``indices[i]`` into student layer ``i`` (default: evenly spaced).

    Returns the indices used. Raises :class:`ModelError` when a layer's shapes differ.
    """
    if indices is None:
        indices = evenly_spaced(len(teacher_layers), len(student_layers))
    check_layer_indices(indices, len(teacher_layers), len(student_layers))
    for i, j in enumerate(indices):
        try:
            student_layers[i].load_state_dict(teacher_layers[j].state_dict())
        except RuntimeError as exc:
            raise ModelError(
                f"student layer {i} does not match teacher layer {j}: {str(exc).splitlines()[0]}",
                fix="give the student the teacher's width, heads and feed-forward size",
            ) from exc
    return list(indices)


def copy_part(teacher_part: nn.Module, student_part: nn.Module, name: str = "part") -> None:
    """Make ``student_part`` an exact copy of ``teacher_part`` (same architecture required)."""
    try:
        student_part.load_state_dict(teacher_part.state_dict())
    except RuntimeError as exc:
        raise ModelError(
            f"cannot copy the teacher's {name}: architectures differ ({str(exc).splitlines()[0]})",
            fix=f"build the student's {name} with the teacher's configuration",
        ) from exc


def freeze(module: nn.Module) -> nn.Module:
    """``requires_grad=False`` on every parameter (the module stays in the graph)."""
    module.requires_grad_(False)
    return module


def copy_shared(teacher: nn.Module, student: nn.Module, skip: tuple[str, ...] = ()) -> list[str]:
    """Copy every teacher tensor whose name and shape match the student's, except names that
    start with a prefix in ``skip``. Returns the copied names."""
    t_state = teacher.state_dict()
    s_state = student.state_dict()
    copied = [
        k
        for k, v in s_state.items()
        if k in t_state and t_state[k].shape == v.shape and not k.startswith(skip)
    ]
    student.load_state_dict({k: t_state[k] for k in copied}, strict=False)
    return copied


def identical(a: nn.Module, b: nn.Module) -> bool:
    """True when both modules have the same tensor names and bit-identical values."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa
    )


def trainable_count(module: nn.Module) -> int:
    """Parameters that an optimiser would update."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def hybrid(encoder_from: nn.Module, decoder_from: nn.Module, attrs: tuple[str, str]) -> nn.Module:
    """A deep copy of ``decoder_from`` whose encoder attribute is replaced by a copy of
    ``encoder_from``'s (``attrs = (encoder_attr, decoder_attr)``)."""
    enc_attr, _ = attrs
    model = copy.deepcopy(decoder_from)
    setattr(model, enc_attr, copy.deepcopy(getattr(encoder_from, enc_attr)))
    return model


def train_config(cfg: DistillConfig) -> TrainConfig:
    """The training-loop settings a `protdistill distill` run uses."""
    return TrainConfig(
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        progress=cfg.progress,
        patience=cfg.patience,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy if cfg.devices * cfg.num_nodes > 1 else "auto",
        precision=cfg.precision,
    )


def distill_report(
    cfg: DistillConfig,
    family: str,
    teacher: nn.Module,
    student: nn.Module,
    history: list[dict[str, float]],
    start: float,
    *,
    best: tuple[float, int],
) -> dict[str, Any]:
    """The part of ``distillation_config.json`` every family writes (``start``: ``time.time()``)."""
    n_teacher = sum(p.numel() for p in teacher.parameters())
    n_student = sum(p.numel() for p in student.parameters())
    return {
        **cfg.model_dump(),
        "family": family,
        "best_loss": best[0],
        "best_epoch": best[1],
        "teacher_parameters": n_teacher,
        "student_parameters": n_student,
        "compression_ratio": n_teacher / n_student,
        "history": history,
        "wall_time_s": time.time() - start,
    }
