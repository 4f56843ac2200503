"""What compression needs from a model family (subclassed per task in ``tasks/*/compress``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from protdistill.errors import ConfigError


@dataclass
class Task:
    """What compression needs from a model family: batches, a loss, a metric, timing input."""

    kind: str
    model: nn.Module
    base: dict[str, Any]
    meta: dict[str, Any]
    metric: str
    unit: str
    train: list[Any] = field(default_factory=list)
    held_out: list[Any] = field(default_factory=list)

    def forward(self, model: nn.Module, batch: dict) -> Tensor:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: dict, teacher: nn.Module | None, cfg) -> Tensor:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, reference: nn.Module) -> dict[str, float]:
        raise NotImplementedError

    def bench_batch(self, n: int) -> dict:
        raise NotImplementedError

    def batches(self, items: list[Any], size: int, shuffle: bool = False) -> Iterator[dict]:
        raise NotImplementedError

    def export_onnx(self, model: nn.Module, out: Path, calibration: list[dict] | None) -> nn.Module:
        """Export ``model`` to ``out`` (ONNX Runtime static INT8 when ``calibration`` batches are
        given) and return a module that runs it with ONNX Runtime like ``model``."""
        raise ConfigError(
            f"ONNX export is not available for {self.kind} models",
            record="onnx",
            fix="drop --onnx (ONNX export covers PPI Siamese students)",
        )
