"""Partial distillation helpers: which part learns, which is copied from the teacher and frozen,
and DistilBERT-style initialisation of a shallower stack from evenly spaced teacher layers."""

from __future__ import annotations

import copy
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from protdistill.config import Config
from protdistill.errors import ConfigError, ModelError

DistillPart = Literal["full", "encoder", "decoder"]
PARTS: tuple[str, ...] = ("full", "encoder", "decoder")


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


def copy_layers(
    teacher_layers: nn.ModuleList, student_layers: nn.ModuleList, indices: list[int] | None = None
) -> list[int]:
    """Load teacher layer ``indices[i]`` into student layer ``i`` (default: evenly spaced).

    Returns the indices used. Raises :class:`ModelError` when a layer's shapes differ.
    """
    if indices is None:
        indices = evenly_spaced(len(teacher_layers), len(student_layers))
    if len(indices) != len(student_layers):
        raise ConfigError(f"{len(indices)} indices for {len(student_layers)} student layers")
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


class DistillConfig(Config):
    """`protdistill distill` settings (every field is a CLI option: ``--temperature`` ...)."""

    teacher_checkpoint: str | None = Field(
        None, description="teacher: a semcom .pt, an ESM-2 folder or a hub id"
    )
    data: str | None = Field(
        None, description="semcom: Europarl folder (default: the teacher's); esm: FASTA file"
    )
    family: Literal["auto", "semcom", "esm"] = "auto"
    temperature: float = Field(4.0, gt=0)
    distill_weight: float = Field(0.7, ge=0, le=1, description="alpha: weight of the KD term")
    distill_part: DistillPart = "full"
    student_layers: int = Field(1, ge=1)
    create_hybrid: bool = False
    hybrid_output: str | None = None
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(3, ge=1)
    lr: float = Field(1e-3, gt=0)
    output_path: str = "runs/distill"
    resume: bool = False
    seed: int = 0
    progress: bool = True
    # semantic communication
    snr_min: float = 0.0
    snr_max: float = 18.0
    channel: Literal["awgn", "rayleigh", "mixed"] = "mixed"
    val_sentences: int = Field(500, ge=1)
    max_train_sentences: int | None = Field(
        None, ge=1, description="semcom: use only this many of the teacher's training sentences"
    )
    # ESM-like encoders
    max_length: int = Field(256, ge=8, description="residues per protein (longer are cropped)")
    max_proteins: int | None = Field(2000, ge=2, description="seeded subset of the FASTA")
    val_fraction: float = Field(0.1, gt=0, lt=1)
    hidden_weight: float = Field(1.0, ge=0, description="hidden-state KD (mapped layers)")
    attention_weight: float = Field(1.0, ge=0, description="attention-map KD (mapped layers)")
    contact_weight: float = Field(1.0, ge=0, description="contact-map KD")
    logit_weight: float = Field(1.0, ge=0, description="masked-LM logit KD (teacher LM head)")


def detect_family(cfg: DistillConfig) -> str:
    """``semcom`` for a DeepSC ``.pt``, ``esm`` for an ESM-2 folder or hub id."""
    from pathlib import Path

    from protdistill.errors import CheckpointError

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


def run_distill(cfg: DistillConfig) -> dict:
    """Distil by ``cfg`` (family detected from the teacher); returns the saved report dict."""
    if detect_family(cfg) == "esm":
        from protdistill.students.small_esm import distill_esm

        return distill_esm(cfg)
    from protdistill.tasks.semcom.distill import distill_semcom

    return distill_semcom(cfg)
