"""Small student models; each returns a typed output dataclass.

``build_student(config_dict)`` rebuilds a pair student from the ``student`` entry stored in a
checkpoint's metadata, so saved weights never need pickled classes.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from protdistill.errors import ConfigError
from protdistill.students.esm_pair import EsmPairConfig, SiameseEsm
from protdistill.students.interaction import InteractionConfig, InteractionStudent
from protdistill.students.resnet1d import ResNet1DConfig, SiameseResNet1D

PAIR_STUDENTS: dict[str, tuple[type, type]] = {
    "resnet1d": (ResNet1DConfig, SiameseResNet1D),
    "interaction": (InteractionConfig, InteractionStudent),
    "esm": (EsmPairConfig, SiameseEsm),
}


def build_student(config: dict[str, Any]) -> nn.Module:
    """Build a pair student from ``{"kind": KIND, **hyper_parameters}`` (KIND: resnet1d,
    interaction or esm)."""
    kind = config.get("kind", "resnet1d")
    if kind not in PAIR_STUDENTS:
        raise ConfigError(
            f"unknown student kind {kind!r}",
            record="student.kind",
            fix=f"choose one of {sorted(PAIR_STUDENTS)}",
        )
    cfg_cls, model_cls = PAIR_STUDENTS[kind]
    return model_cls(cfg_cls.model_validate(config))


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())
