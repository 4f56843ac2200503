"""Teacher→student training on Lightning: AdamW, warm-up + cosine, clipping, accumulation,
mixed precision, EMA, checkpoints (best / last / every N epochs), resume, early stopping,
per-epoch CSV/JSON history.

Subclass :class:`DistillModule`, implement ``step(batch, stage) -> {"loss": ..., ...}`` and call
:func:`fit`. The teacher (if any) is frozen and never optimised; it may also be absent when the
batch already carries cached teacher outputs.

Files written under ``out_dir``::

    train_config.json            resolved configs (module ``hparams``: ``{"train": ..., ...}``)
    checkpoints/last.ckpt        every epoch (resume point)
    checkpoints/best.ckpt        best ``monitor`` value so far
    checkpoints/epoch=N.ckpt     every ``save_every_n_epochs`` epochs (N is 0-based, as Lightning)
    metrics.csv, history.json    one row per epoch: epoch, step, lr, train_*, val_*
    lightning_logs/version_0/    Lightning's own CSV log

Checkpoints hold tensors and plain data only (``hyper_parameters`` is the JSON dump of the
configs), are loaded with ``torch.load(weights_only=True)`` — also by Lightning when resuming —
and are written atomically: a temporary file beside the target, then ``os.replace``. Lightning's
own writer is atomic only when the system temp dir and the checkpoint dir share a file system
(fsspec's local transaction writes to ``tempfile.mkstemp()`` and then ``shutil.move``s, which
degrades to copy-then-delete across devices), hence :class:`AtomicCheckpointIO`.

EMA (``ema_decay``): an EMA copy of the *student* weights (not the teacher, not objective
projectors), ``e_0 = θ_0`` at the start of fit and ``e_k = d·e_{k-1} + (1-d)·θ_k`` after each
optimizer step. Validation runs with the EMA weights, the ``state_dict`` of every checkpoint holds
the EMA student weights (raw ones under ``raw_student_state``, used on resume), and after ``fit``
the in-memory student holds the EMA weights.

Resume: ``fit(..., resume=True)`` continues from ``checkpoints/last.ckpt``. Besides weights,
optimizer, scheduler, loop counters, early-stopping and best-checkpoint state, the checkpoint
stores the global RNG states (torch, numpy, python) and the train loader's generators, so a
shuffling ``DataLoader`` draws the same order as an uninterrupted run. Resume points are epoch
ends: a run killed mid-epoch redoes that epoch. Teacher weights are not in checkpoints (they can
be GBs), so pass the same teacher when resuming. Under DDP only rank 0's RNG state is stored.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import random
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from pydantic import Field
from torch import Tensor, nn

from protdistill.config import Config
from protdistill.distill.checkpoint import _json_default, load_torch
from protdistill.errors import ConfigError, ModelError
from protdistill.io.atomic import torch_save, write_json, write_text

Precision = Literal["32-true", "64-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true"]
STUDENT = "student."
TEACHER = "teacher."
RAW_STUDENT_KEY = "raw_student_state"


class TrainConfig(Config):
    """Training-loop settings (every field is also a CLI option of the commands that train)."""

    epochs: int = Field(10, ge=1, description="maximum number of epochs")
    lr: float = Field(1e-3, gt=0, description="peak AdamW learning rate")
    weight_decay: float = Field(0.01, ge=0, description="AdamW decay (weights with ndim >= 2)")
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
    deterministic: bool = Field(True, description="deterministic algorithms (warn-only on GPU)")


@dataclass
class FitResult:
    """What :func:`fit` produced. ``best_path`` is None when no epoch reported ``monitor``."""

    best_path: Path | None
    last_path: Path
    best_score: float | None
    history: list[dict[str, float]]
    resumed_from: Path | None = None
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


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


def _plain(data: dict[str, Any], what: str) -> dict[str, Any]:
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
        data = _plain(data, f"config {name!r}")
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
        decay, no_decay = [], []
        for _, param in self.trainable_parameters():
            (decay if param.ndim >= 2 else no_decay).append(param)
        if not decay and not no_decay:
            raise ModelError(
                "nothing to train: no trainable parameters outside the teacher",
                fix="check that the student's parameters have requires_grad=True",
            )
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay}]
        groups += [{"params": no_decay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=self.cfg.lr)
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
            checkpoint["hyper_parameters"] = _plain(
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


# ---------------------------------------------------------------------- callbacks
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
        torch_save(path, checkpoint)

    def load_checkpoint(
        self, path: str | Path, map_location: Any = "cpu", weights_only: bool | None = True
    ) -> dict[str, Any]:
        """Always ``weights_only=True``; failures are :class:`CheckpointError`."""
        if callable(map_location):
            map_location = "cpu"
        return load_torch(path, map_location=map_location)


# ---------------------------------------------------------------------- trainer
def _monitor(cfg: TrainConfig, has_val: bool) -> str:
    """``cfg.monitor``; a ``val_*`` metric falls back to ``train_*`` without a val loader."""
    if not has_val and cfg.monitor.startswith("val_"):
        return "train_" + cfg.monitor[len("val_") :]
    return cfg.monitor


def build_callbacks(
    cfg: TrainConfig, out_dir: str | Path, *, has_val: bool = True, train_loader: Any = None
) -> list[Callback]:
    """History, RNG state, EMA, early stopping and the best/last/periodic checkpoints."""
    ckpt_dir = Path(out_dir) / "checkpoints"
    monitor = _monitor(cfg, has_val)
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
        ModelCheckpoint(
            filename="best", monitor=monitor, mode=cfg.mode, save_top_k=1, save_last=True, **common
        )
    )
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


def _uses_cuda(cfg: TrainConfig) -> bool:
    return cfg.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def build_trainer(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    has_val: bool = True,
    train_loader: Any = None,
    callbacks: list[Callback] | None = None,
) -> L.Trainer:
    """The Lightning Trainer ``fit`` uses (see the module docstring for what it writes)."""
    out_dir = Path(out_dir)
    deterministic: bool | str = cfg.deterministic
    if cfg.deterministic and _uses_cuda(cfg):
        deterministic = "warn"
    return L.Trainer(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        precision=cfg.precision,
        gradient_clip_val=cfg.grad_clip or None,
        gradient_clip_algorithm="norm",
        accumulate_grad_batches=cfg.accumulate,
        deterministic=deterministic,
        callbacks=build_callbacks(cfg, out_dir, has_val=has_val, train_loader=train_loader)
        + list(callbacks or []),
        logger=CSVLogger(out_dir, name="lightning_logs", version=0),
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=out_dir,
        plugins=[AtomicCheckpointIO()],
    )


@contextlib.contextmanager
def _lightning_scope(frozen_teacher: bool = False) -> Iterator[None]:
    """Quiet Lightning's info logs and restore global torch flags Lightning sets.

    With a frozen teacher, Lightning's "modules in eval mode" warning is expected and silenced.
    """
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    det = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    try:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            patterns = [".*does not have many workers.*", ".*exists and is not empty.*"]
            patterns += [r".*module\(s\) in eval mode.*"] if frozen_teacher else []
            for pattern in patterns:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark


def _remove_stale_temps(ckpt_dir: Path) -> None:
    """Temporary files of writes killed mid-way (never picked up, just clutter)."""
    for tmp in ckpt_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def fit(
    module: DistillModule,
    train_loader: Any,
    val_loader: Any,
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = True,
    *,
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """Train ``module`` (``cfg`` replaces ``module.cfg``); resume from ``last.ckpt`` if present.

    Deterministic on CPU for a given ``cfg.seed`` (``seed_everything`` runs here, so seed before
    building the student to also fix its initialisation). ``val_loader`` may be None, then a
    ``val_*`` monitor falls back to the matching ``train_*`` metric. Raises
    :class:`CheckpointError` for a corrupt resume checkpoint, :class:`ConfigError` when
    ``monitor`` names a metric that ``step`` never logs.
    """
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    module.cfg = cfg
    module.add_config("train", cfg)
    write_json(out_dir / "train_config.json", _plain(dict(module.hparams), "hyper_parameters"))
    last = ckpt_dir / "last.ckpt"
    resume_from = last if resume and last.exists() else None
    if ckpt_dir.is_dir():
        _remove_stale_temps(ckpt_dir)
    with _lightning_scope(frozen_teacher=bool(module.teacher_modules())):
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        trainer = build_trainer(
            cfg,
            out_dir,
            has_val=val_loader is not None,
            train_loader=train_loader,
            callbacks=callbacks,
        )
        try:
            trainer.fit(module, train_loader, val_loader, ckpt_path=resume_from, weights_only=True)
        except MisconfigurationException as exc:
            if "monitor" not in str(exc):
                raise
            raise ConfigError(
                str(exc).splitlines()[0],
                record=f"monitor={_monitor(cfg, val_loader is not None)!r}",
                fix="set monitor to a logged metric: '{train|val}_<name returned by step>'",
            ) from exc
    for callback in trainer.callbacks:
        if isinstance(callback, StudentEMA):  # also when a finished run was re-run (no epochs)
            callback.on_train_end(trainer, module)
    return _result(trainer, last, resume_from)


def _result(trainer: L.Trainer, last: Path, resumed_from: Path | None) -> FitResult:
    best = next(
        cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor is not None
    )
    history = next(cb for cb in trainer.callbacks if isinstance(cb, EpochHistory))
    stopper = [cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)]
    score = best.best_model_score
    return FitResult(
        best_path=Path(best.best_model_path) if best.best_model_path else None,
        last_path=last,
        best_score=None if score is None else float(score),
        history=[dict(row) for row in history.history],
        resumed_from=resumed_from,
        stopped_early=bool(stopper and stopper[0].stopped_epoch > 0),
    )
