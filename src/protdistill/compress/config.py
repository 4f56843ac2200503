"""Every `protdistill compress` option, validated."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from protdistill.config import Config

METHODS = ("prune", "lowrank", "quantize")


class CompressConfig(Config):
    """Every `protdistill compress` option."""

    model: str | None = None
    out: str | None = None
    method: list[str] = ["prune", "quantize"]
    # prune
    ratio: float = Field(0.5, ge=0, lt=1, description="fraction of units removed per group")
    importance: Literal["l1", "taylor"] = "l1"
    finetune_steps: int = Field(200, ge=0, description="fine-tuning steps after prune / lowrank")
    finetune_lr: float = Field(1e-3, gt=0)
    distill: bool = Field(True, description="fine-tune by distilling from the uncompressed model")
    alpha: float = Field(0.5, ge=0, le=1, description="KD weight when distilling (1-alpha on CE)")
    temperature: float = Field(4.0, gt=0)
    # low rank
    rank: int | None = Field(None, ge=1)
    energy: float | None = Field(None, gt=0, le=1, description="default 0.9 when rank unset")
    lowrank_min_params: int = Field(4096, ge=1)
    # quantize
    quantize_linear: bool = True
    quantize_conv: bool = True
    backend: Literal["native", "reference"] = "native"
    calibration_batches: int = Field(8, ge=1)
    onnx: bool = Field(
        False,
        description="also export the last float stage to ONNX and time it under ONNX Runtime, "
        "fp32 and static INT8 (PPI Siamese students)",
    )
    skip: list[str] = Field(default_factory=list, description="module paths left untouched")
    # data / evaluation / benchmark
    pairs: str | None = None
    fasta: str | None = None
    batch_size: int = Field(32, ge=1)
    max_eval: int | None = Field(None, ge=2, description="cap on held-out items evaluated")
    bench_batch: int = Field(32, ge=1)
    bench_repeats: int = Field(7, ge=1)
    threads: int | None = Field(None, ge=1)
    seed: int = 0

    @field_validator("method", mode="before")
    @classmethod
    def _split_methods(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("method")
    @classmethod
    def _check_order(cls, value: list[str]) -> list[str]:
        bad = [m for m in value if m not in METHODS]
        if bad:
            raise ValueError(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
        if not value or len(set(value)) != len(value):
            raise ValueError("give each method once, e.g. prune,quantize")
        if value != sorted(value, key=METHODS.index):
            raise ValueError("steps must follow prune -> lowrank -> quantize (quantize last)")
        return value
