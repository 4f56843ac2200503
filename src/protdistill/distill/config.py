"""Settings of the training loop and of `protdistill distill` (plain pydantic; cheap to import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from protdistill.config import Config
from protdistill.distill.parallel import ScaleOptions

Precision = Literal["32-true", "64-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true"]


class TrainConfig(Config):
    """Training-loop settings (every field is also a CLI option of the commands that train)."""

    epochs: int = Field(10, ge=1, description="maximum number of epochs")
    lr: float = Field(1e-3, gt=0, description="peak AdamW learning rate")
    weight_decay: float = Field(0.01, ge=0, description="AdamW decay (weights with ndim >= 2)")
    lr_scales: dict[str, float] = Field(
        default_factory=dict,
        description="learning-rate multiplier by parameter-name prefix (longest prefix wins)",
    )
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="fraction of steps warming up")
    grad_clip: float | None = Field(1.0, ge=0, description="max grad L2 norm; 0/None = off")
    accumulate: int = Field(1, ge=1, description="batches per optimizer step")
    precision: Precision = Field("32-true", description="Lightning precision, e.g. bf16-mixed")
    ema_decay: float | None = Field(None, gt=0, lt=1, description="EMA of student weights")
    monitor: str = Field("val_loss", description="metric choosing best.ckpt / early stopping")
    mode: Literal["min", "max"] = "min"
    save_every_n_epochs: int = Field(0, ge=0, description="also keep epoch=N.ckpt; 0 = off")
    patience: int | None = Field(None, ge=1, description="early-stopping patience; None = off")
    seed: int = 0
    batch_size: int = Field(32, ge=1, description="used by callers building the loaders")
    progress: bool = True
    accelerator: str = Field("auto", description="Lightning accelerator: auto, cpu, gpu, ...")
    devices: int | str = Field(1, description="Lightning devices (int, list string or 'auto')")
    num_nodes: int = Field(1, ge=1, description="machines (Lightning num_nodes)")
    strategy: str = Field("auto", description="Lightning strategy: auto, ddp, ...")
    deterministic: bool = Field(True, description="deterministic algorithms (warn-only on GPU)")


DistillPart = Literal["full", "encoder", "decoder"]


PARTS: tuple[str, ...] = ("full", "encoder", "decoder")


class DistillConfig(ScaleOptions):
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
    init_layers: list[int] | None = Field(
        None,
        description="teacher layers the distilled part starts from, e.g. 0 or 0,3 "
        "(default: evenly spaced; a single layer takes the last)",
    )
    create_hybrid: bool = False
    hybrid_output: str | None = None
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(3, ge=1)
    lr: float = Field(1e-3, gt=0)
    output_path: str = "runs/distill"
    resume: bool = False
    seed: int = 0
    progress: bool = True
    patience: int | None = Field(None, ge=1, description="early stopping on the val loss")
    # where it runs (docs/scale.md): accelerator, devices, num_nodes, strategy (ScaleOptions)
    precision: Precision = Field("32-true", description="student training precision")
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
    # layer-wise KD (both families)
    hidden_weight: float = Field(1.0, ge=0, description="hidden-state KD (mapped layers)")
    attention_weight: float = Field(1.0, ge=0, description="attention-map KD (mapped layers)")
    contact_weight: float = Field(1.0, ge=0, description="contact-map KD")
    logit_weight: float = Field(1.0, ge=0, description="masked-LM logit KD (teacher LM head)")

    @field_validator("init_layers", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """``"0,3"`` or ``0`` from the command line -> ``[0, 3]`` / ``[0]``."""
        if isinstance(value, int):
            return [value]
        if isinstance(value, str):
            return [int(v) for v in value.split(",") if v.strip()]
        return value
