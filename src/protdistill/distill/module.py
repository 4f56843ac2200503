"""The LightningModule every teacher -> student training subclasses: a frozen teacher, a student,
an optional objective; AdamW with warm-up + cosine; checkpoints that hold plain data only."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from protdistill.config import Config
from protdistill.distill.checkpoint import _json_default
from protdistill.distill.config import TrainConfig
from protdistill.errors import ConfigError, ModelError

STUDENT = "student."


TEACHER = "teacher."


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR factor for optimizer step ``s`` (0-based): linear warm-up then cosine decay to 0.

    ``(s+1)/(w+1)`` for ``s < w``; then ``0.5·(1+cos(π·(s-w)/(T-w)))``, clamped at T.
    ``w`` is capped at ``T-1`` so the schedule always reaches its peak.
    """
    warmup_steps = max(0, min(warmup_steps, total_steps - 1))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def plain_json(data: dict[str, Any], what: str) -> dict[str, Any]:
    """``data`` as pure JSON types (so checkpoints load with ``weights_only=True``)."""
    try:
        return json.loads(json.dumps(data, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{what} is not plain JSON data ({exc})",
            fix="store configs with DistillModule.add_config(name, cfg), "
            "not save_hyperparameters() over modules/objects",
        ) from exc


def _batch_size(batch: Any) -> int | None:
    """Leading dimension of the first tensor found in ``batch`` (dicts/lists/tuples)."""
    if isinstance(batch, Tensor):
        return int(batch.shape[0]) if batch.ndim else None
    items = batch.values() if isinstance(batch, Mapping) else batch
    if isinstance(items, (list, tuple)) or isinstance(batch, Mapping):
        for item in items:
            size = _batch_size(item)
            if size is not None:
                return size
    return None


def lr_scale(name: str, scales: dict[str, float]) -> float:
    """The multiplier of the longest prefix in ``scales`` that ``name`` starts with (else 1)."""
    matches = [prefix for prefix in scales if name.startswith(prefix)]
    return scales[max(matches, key=len)] if matches else 1.0


class DistillModule(L.LightningModule):
    """Base LightningModule for teacher→student training; subclasses implement :meth:`step`.

    ``teacher`` may be an ``nn.Module`` (registered as ``self.teacher``, moved with the module but
    left out of checkpoints), an object with an ``nn.Module`` ``.model`` (e.g. ``EsmTeacher``;
    kept as a plain attribute), or None when batches carry cached teacher outputs. It is frozen:
    ``requires_grad=False`` and eval mode, also after Lightning calls ``.train()``.
    The optimizer covers every trainable parameter except the teacher's (student, objective
    projectors, heads a subclass adds). ``objective`` is registered when it is an ``nn.Module``.
    """

    def __init__(
        self,
        student: nn.Module,
        cfg: TrainConfig,
        teacher: Any = None,
        objective: Any = None,
    ) -> None:
        super().__init__()
        self.student = student
        self.teacher = teacher
        self.objective = objective
        self.cfg = cfg
        self.save_hyperparameters({"train": cfg.model_dump(mode="json")})
        self._freeze_teacher()

    # ------------------------------------------------------------------ config / teacher
    def add_config(self, name: str, cfg: Config | Mapping[str, Any]) -> None:
        """Store a config's JSON dump as ``hparams[name]`` (checkpoints, train_config.json)."""
        data = cfg.model_dump(mode="json") if isinstance(cfg, Config) else dict(cfg)
        data = plain_json(data, f"config {name!r}")
        self.hparams[name] = data
        self._hparams_initial[name] = data

    def teacher_modules(self) -> list[nn.Module]:
        """The frozen teacher network(s)."""
        teacher = getattr(self, "teacher", None)
        if isinstance(teacher, nn.Module):
            return [teacher]
        model = getattr(teacher, "model", None)
        return [model] if isinstance(model, nn.Module) else []

    def _freeze_teacher(self) -> None:
        for module in self.teacher_modules():
            module.eval()
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> DistillModule:
        """``nn.Module.train`` that keeps the teacher in eval mode."""
        super().train(mode)
        for module in self.teacher_modules():
            module.eval()
        return self

    # ------------------------------------------------------------------ steps
    def step(self, batch: Any, stage: str) -> dict[str, Tensor]:
        """Return scalar tensors; ``"loss"`` is optimised, all are logged as ``{stage}_{name}``."""
        raise NotImplementedError("DistillModule subclasses implement step(batch, stage)")

    def _run_step(self, batch: Any, stage: str) -> Tensor:
        out = self.step(batch, stage)
        if not isinstance(out, Mapping) or "loss" not in out:
            raise ModelError(
                f"{type(self).__name__}.step() returned no 'loss'",
                record=f"stage {stage}",
                fix="return a dict of scalar tensors with a 'loss' entry",
            )
        size = _batch_size(batch)
        for name, value in out.items():
            if not isinstance(value, Tensor) or value.numel() != 1:
                raise ModelError(
                    f"step() output {name!r} is not a scalar tensor",
                    record=f"stage {stage}",
                    fix="reduce every returned term to a 0-d tensor",
                )
            self.log(
                f"{stage}_{name}",
                value if name == "loss" else value.detach(),
                on_step=False,
                on_epoch=True,
                prog_bar=name == "loss",
                batch_size=size,
                sync_dist=True,
            )
        return out["loss"]

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._run_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._run_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._run_step(batch, "test")

    def on_train_epoch_start(self) -> None:
        self._freeze_teacher()

    # ------------------------------------------------------------------ optimisation
    def trainable_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Named trainable parameters, the teacher's excluded."""
        frozen = {id(p) for m in self.teacher_modules() for p in m.parameters()}
        for name, param in self.named_parameters():
            if param.requires_grad and id(param) not in frozen:
                yield name, param

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW (no decay on biases/norms) + per-step warm-up/cosine schedule."""
        groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
        for name, param in self.trainable_parameters():
            key = (param.ndim >= 2, lr_scale(name, self.cfg.lr_scales))
            groups.setdefault(key, []).append(param)
        if not groups:
            raise ModelError(
                "nothing to train: no trainable parameters outside the teacher",
                fix="check that the student's parameters have requires_grad=True",
            )
        # decayed weights first, as before learning-rate multipliers existed (optimizer state order)
        order = sorted(groups, key=lambda key: (not key[0], -key[1]))
        param_groups = [
            {
                "params": groups[decays, scale],
                "weight_decay": self.cfg.weight_decay if decays else 0.0,
                "lr": self.cfg.lr * scale,
            }
            for decays, scale in order
        ]
        optimizer = torch.optim.AdamW(param_groups, lr=self.cfg.lr)
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ConfigError(
                "the training loader has no length, the cosine schedule needs the step count",
                fix="use a DataLoader over a sized Dataset",
            )
        total = max(1, int(total))
        warmup = int(round(self.cfg.warmup_ratio * total))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, warmup))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Leave the (frozen, external) teacher weights out; keep hyper-parameters plain data."""
        if "hyper_parameters" in checkpoint:
            checkpoint["hyper_parameters"] = plain_json(
                dict(checkpoint["hyper_parameters"]), "hyper_parameters"
            )
        if isinstance(self.teacher, nn.Module):
            state = checkpoint["state_dict"]
            checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.startswith(TEACHER)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Put the current teacher weights back so strict loading still checks every key."""
        if isinstance(self.teacher, nn.Module):
            state = checkpoint.setdefault("state_dict", {})
            for key, value in self.teacher.state_dict(prefix=TEACHER).items():
                state.setdefault(key, value)
