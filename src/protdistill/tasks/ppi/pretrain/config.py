"""Settings of a general distillation, light to import (the CLI builds its flags from them)."""

from __future__ import annotations

from typing import Literal

from protdistill.distill.parallel import ScaleOptions


class PretrainConfig(ScaleOptions):
    """Settings of one general distillation (`ppi pretrain`, or inside `ppi run`)."""

    teacher: str = "facebook/esm2_t6_8M_UR50D"
    cache: str | None = None
    teacher_layer: int = -1
    transfer_cap: int = 1022
    tokens_per_batch: int = 8192
    teacher_precision: Literal["32", "bf16", "16"] = "32"
    student: dict = {"kind": "resnet1d"}
    max_residues: int = 512
    mask_rate: float = 0.1
    random_crops: bool = False
    pooled_weight: float = 1.0
    residue_weight: float = 1.0
    residue_stages: list[int] = [1, 3]
    epochs: int = 32  # beat 4 on validation CE of the later task, two Guo splits (BENCHMARKS.md)
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    val_fraction: float = 0.05
    seed: int = 0
    progress: bool = True
    # where it runs (docs/scale.md): accelerator, devices, num_nodes, strategy (ScaleOptions)
