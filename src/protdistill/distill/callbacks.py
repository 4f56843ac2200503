"""Lightning callbacks of :func:`protdistill.distill.trainer.fit`: student EMA, RNG state for exact
resume, per-epoch history files, atomic checkpoint writes, and the best / last / periodic
checkpoints."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import Tensor, nn

from protdistill.distill.checkpoint import load_torch, with_digest
from protdistill.distill.config import TrainConfig
from protdistill.distill.module import STUDENT
from protdistill.errors import ConfigError
from protdistill.io.atomic import torch_save, write_json, write_text

RAW_STUDENT_KEY = "raw_student_state"


class StudentEMA(Callback):
    """EMA of ``pl_module.student``'s floating-point state; see the module docstring."""

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"ema_decay must be in (0, 1), got {decay}", fix="e.g. 0.999")
        self.decay = decay
        self.ema: dict[str, Tensor] | None = None
        self.last_step = 0

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        """One EMA step from the student's current weights."""
        assert self.ema is not None
        for name, value in student.state_dict().items():
            avg = self.ema[name]
            if avg.is_floating_point():
                avg.mul_(self.decay).add_(value.to(avg.dtype), alpha=1.0 - self.decay)
            else:
                avg.copy_(value)

    @torch.no_grad()
    def swap(self, student: nn.Module) -> None:
        """Exchange the student's weights and the EMA weights in place."""
        assert self.ema is not None
        for name, value in student.state_dict().items():
            tmp = value.clone()
            value.copy_(self.ema[name])
            self.ema[name].copy_(tmp)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = pl_module.student.state_dict()
        if self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in state.items()}
        else:
            self.ema = {k: self.ema[k].to(v.device) for k, v in state.items()}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        if trainer.global_step > self.last_step:
            self.update(pl_module.student)
            self.last_step = trainer.global_step

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.ema is not None:
            self.swap(pl_module.student)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.ema is not None:
            self.swap(pl_module.student)

    @torch.no_grad()
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.ema is not None:
            pl_module.student.load_state_dict(self.ema)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self.ema is None:
            return
        state = checkpoint["state_dict"]
        checkpoint[RAW_STUDENT_KEY] = {k: state[STUDENT + k] for k in self.ema}
        for name, value in self.ema.items():
            state[STUDENT + name] = value.detach().clone()

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint["state_dict"]
        self.ema = {k[len(STUDENT) :]: v.clone() for k, v in state.items() if k.startswith(STUDENT)}
        raw = checkpoint.get(RAW_STUDENT_KEY)
        if raw is not None:
            pl_module.student.load_state_dict(raw)

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self.last_step, "decay": self.decay}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_step = int(state_dict["last_step"])


def _generators(loader: Any) -> list[torch.Generator | None]:
    """The RNGs a DataLoader may draw from besides the global one (fixed order)."""
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    inner = getattr(batch_sampler, "sampler", None)
    return [getattr(obj, "generator", None) for obj in (loader, sampler, inner)]


class RngState(Callback):
    """Saves/restores torch, numpy, python and train-loader RNG states with each checkpoint."""

    def __init__(self, train_loader: Any = None) -> None:
        self.train_loader = train_loader

    def state_dict(self) -> dict[str, Any]:
        version, py_state, gauss = random.getstate()
        name, keys, pos, has_gauss, cached = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "python": {"version": version, "state": torch.tensor(py_state), "gauss": gauss},
            "numpy": {
                "name": str(name),
                "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached": float(cached),
            },
            "loader": [
                None if g is None else g.get_state() for g in _generators(self.train_loader)
            ],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        py = state_dict["python"]
        random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
        npy = state_dict["numpy"]
        keys = npy["keys"].numpy().astype(np.uint32)
        np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))
        for gen, saved in zip(_generators(self.train_loader), state_dict["loader"], strict=True):
            if gen is not None and saved is not None:
                gen.set_state(saved)


class EpochHistory(Callback):
    """One row per epoch (epoch, step, lr, every logged metric) → history.json + metrics.csv."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row: dict[str, float] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        if trainer.optimizers:
            row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        for name, value in sorted(trainer.callback_metrics.items()):
            if isinstance(value, Tensor) and value.numel() == 1:
                row[name] = float(value)
        self.history.append(row)
        if trainer.is_global_zero:  # under DDP the metrics are already reduced across ranks
            self.write()

    def write(self) -> None:
        """Rewrite history.json and metrics.csv from :attr:`history` (atomically)."""
        write_json(self.out_dir / "history.json", self.history)
        columns = list(dict.fromkeys(k for row in self.history for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history)
        write_text(self.out_dir / "metrics.csv", buffer.getvalue())

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(row) for row in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(row) for row in state_dict["history"]]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO: atomic same-directory writes, ``weights_only=True`` reads."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        torch_save(path, with_digest(checkpoint))

    def load_checkpoint(
        self, path: str | Path, map_location: Any = "cpu", weights_only: bool | None = True
    ) -> dict[str, Any]:
        """Always ``weights_only=True``; failures are :class:`CheckpointError`."""
        if callable(map_location):
            map_location = "cpu"
        return load_torch(path, map_location=map_location)


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt`` after every epoch (its own state key beside the best / periodic ones)."""

    @property
    def state_key(self) -> str:
        return "LastCheckpoint"


def monitored(cfg: TrainConfig, has_val: bool) -> str:
    """``cfg.monitor``; a ``val_*`` metric falls back to ``train_*`` without a val loader."""
    if not has_val and cfg.monitor.startswith("val_"):
        return "train_" + cfg.monitor[len("val_") :]
    return cfg.monitor


def build_callbacks(
    cfg: TrainConfig, out_dir: str | Path, *, has_val: bool = True, train_loader: Any = None
) -> list[Callback]:
    """History, RNG state, EMA, early stopping and the best/last/periodic checkpoints."""
    ckpt_dir = Path(out_dir) / "checkpoints"
    monitor = monitored(cfg, has_val)
    callbacks: list[Callback] = [EpochHistory(out_dir), RngState(train_loader)]
    if cfg.ema_decay is not None:
        callbacks.append(StudentEMA(cfg.ema_decay))
    if cfg.patience is not None:
        callbacks.append(
            EarlyStopping(
                monitor=monitor, mode=cfg.mode, patience=cfg.patience, check_on_train_epoch_end=True
            )
        )
    common = {"dirpath": ckpt_dir, "enable_version_counter": False, "save_on_train_epoch_end": True}
    callbacks.append(
        ModelCheckpoint(filename="best", monitor=monitor, mode=cfg.mode, save_top_k=1, **common)
    )
    # last.ckpt on its own callback: Lightning's save_last only rewrites "last" in epochs where
    # the monitored checkpoint improved, so a resume would restart from the best epoch
    callbacks.append(LastCheckpoint(filename="last", monitor=None, save_top_k=1, **common))
    if cfg.save_every_n_epochs:
        callbacks.append(
            ModelCheckpoint(
                filename="epoch={epoch}",
                auto_insert_metric_name=False,
                every_n_epochs=cfg.save_every_n_epochs,
                save_top_k=-1,
                **common,
            )
        )
    return callbacks
