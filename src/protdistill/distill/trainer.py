"""Teacher→student training on Lightning: AdamW, warm-up + cosine, clipping, accumulation,
mixed precision, EMA, checkpoints (best / last / every N epochs), resume, early stopping,
per-epoch CSV/JSON history.

Subclass :class:`~protdistill.distill.module.DistillModule`, implement
``step(batch, stage) -> {"loss": ..., ...}`` and call :func:`fit`. The teacher (if any) is frozen
and never optimised; it may also be absent when the batch already carries cached teacher outputs.

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
import logging
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from protdistill.distill.callbacks import (
    AtomicCheckpointIO,
    EpochHistory,
    StudentEMA,
    build_callbacks,
    monitored,
)
from protdistill.distill.checkpoint import load_torch, with_digest
from protdistill.distill.config import TrainConfig
from protdistill.distill.module import TEACHER, DistillModule, plain_json
from protdistill.distill.parallel import barrier, current_ranks
from protdistill.errors import CheckpointError, ConfigError
from protdistill.io.atomic import remove_stale_temps, torch_save, write_json
from protdistill.io.lock import run_lock
from protdistill.progress import verbosity

__all__ = ["DistillModule", "FitResult", "TrainConfig", "best_epoch", "build_trainer", "fit"]


@dataclass
class FitResult:
    """What :func:`fit` produced. ``best_path`` is None when no epoch reported ``monitor``."""

    best_path: Path | None
    last_path: Path
    best_score: float | None
    history: list[dict[str, float]]
    resumed_from: Path | None = None
    is_main: bool = True
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


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
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
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
    """Quiet Lightning's info logs (unless ``--verbose``) and restore global torch flags
    Lightning sets.

    With a frozen teacher, Lightning's "modules in eval mode" warning is expected and silenced.
    """
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    det = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    quiet = verbosity() < 2  # --verbose keeps Lightning's own logs and warnings
    try:
        for lg in loggers:
            lg.setLevel(logging.WARNING if quiet else logging.INFO)
        with warnings.catch_warnings():
            patterns = [".*does not have many workers.*", ".*exists and is not empty.*"]
            patterns += [r".*module\(s\) in eval mode.*"] if frozen_teacher else []
            for pattern in patterns if quiet else []:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark


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
    """:func:`_fit` holding ``out_dir``'s run lock (rank 0): a second process training into the
    same folder stops with one line before it writes anything."""
    # before Lightning initialises the process group, a launched rank knows itself by $RANK
    main = current_ranks().is_main and os.environ.get("RANK", "0") == "0"
    with run_lock(out_dir) if main else contextlib.nullcontext():
        return _fit(module, train_loader, val_loader, cfg, out_dir, resume, callbacks=callbacks)


def _fit(
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
    :class:`CheckpointError` for a corrupt resume checkpoint or one of another network
    (checked before anything is written), :class:`ConfigError` when
    ``monitor`` names a metric that ``step`` never logs.
    """
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    module.cfg = cfg
    module.add_config("train", cfg)
    main = current_ranks().is_main
    last = ckpt_dir / "last.ckpt"
    resume_from = last if resume and last.exists() else None
    saved = load_torch(resume_from) if resume_from is not None else None  # read once
    if saved is not None:
        _check_same_shapes(module, saved, resume_from)  # before train_config.json is rewritten
    if main:
        hparams = plain_json(dict(module.hparams), "hyper_parameters")
        write_json(out_dir / "train_config.json", hparams)
    if ckpt_dir.is_dir() and main:
        remove_stale_temps(ckpt_dir)  # under the run lock: all stale
    if resume_from is not None and main:
        _rebase_checkpoint(saved, resume_from, ckpt_dir)
    barrier()  # other ranks resume from the rebased checkpoint
    with _lightning_scope(frozen_teacher=bool(module.teacher_modules())):
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        trainer = build_trainer(
            _finished_at(cfg, saved),
            out_dir,
            has_val=val_loader is not None,
            train_loader=train_loader,
            callbacks=callbacks,
        )
        _run_fit(trainer, module, train_loader, val_loader, resume_from, cfg)
    for callback in trainer.callbacks:
        if isinstance(callback, StudentEMA):  # also when a finished run was re-run (no epochs)
            callback.on_train_end(trainer, module)
    return _result(trainer, last, resume_from)


def _run_fit(
    trainer: L.Trainer,
    module: DistillModule,
    train_loader: Any,
    val_loader: Any,
    resume_from: Path | None,
    cfg: TrainConfig,
) -> None:
    """``trainer.fit`` with a Ctrl-C kept an interrupt and a wrong monitor a ConfigError."""
    try:
        with _interrupts_propagate(trainer):
            trainer.fit(module, train_loader, val_loader, ckpt_path=resume_from, weights_only=True)
    except MisconfigurationException as exc:
        if "monitor" not in str(exc):
            raise
        raise ConfigError(
            str(exc).splitlines()[0],
            record=f"monitor={monitored(cfg, val_loader is not None)!r}",
            fix="set monitor to a logged metric: '{train|val}_<name returned by step>'",
        ) from exc


@contextlib.contextmanager
def _interrupts_propagate(trainer: L.Trainer) -> Iterator[None]:
    """Lightning ends a Ctrl-C (or our SIGTERM) with ``sys.exit(1)`` after ignoring SIGINT;
    turn that back into the KeyboardInterrupt it was, with SIGINT's handler restored, so the
    CLI says what was kept and exits 130 / 143 (last.ckpt of the finished epochs resumes)."""
    in_main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if in_main else None
    try:
        yield
    except SystemExit as exc:
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        raise KeyboardInterrupt from exc
    finally:
        if in_main and handler is not None:
            signal.signal(signal.SIGINT, handler)


def _check_same_shapes(module: DistillModule, ckpt: dict[str, Any], path: Path) -> None:
    """One :class:`CheckpointError` line when the resume checkpoint holds another network (other
    widths or layers) instead of Lightning's size-mismatch traceback mid-way."""
    saved, own = ckpt.get("state_dict", {}), module.state_dict()
    saved, own = ({k: v for k, v in d.items() if not k.startswith(TEACHER)} for d in (saved, own))

    def shape(state: dict[str, Any], key: str) -> tuple[int, ...] | str:
        return tuple(state[key].shape) if key in state else "absent"

    differ = [
        f"{k} {shape(saved, k)} -> {shape(own, k)}"
        for k in sorted(set(saved) | set(own))
        if shape(saved, k) != shape(own, k)
    ]
    if differ:
        more = f" and {len(differ) - 1} more" if len(differ) > 1 else ""
        raise CheckpointError(
            f"the run's checkpoint holds another network: {differ[0]}{more}",
            path=path,
            fix=f"train into a new output folder, or delete {path.parent} to start this one over",
        )


def _rebase_checkpoint(ckpt: dict[str, Any], path: Path, ckpt_dir: Path) -> None:
    """Point the checkpoint callbacks' stored paths at ``ckpt_dir`` when the run directory was
    moved or copied: Lightning keeps absolute paths, so a moved run would look for its best
    checkpoint in the old place and a copied one would silently use the original's."""
    here = str(ckpt_dir.resolve())
    changed = False
    for state in ckpt.get("callbacks", {}).values():
        old = state.get("dirpath") if isinstance(state, dict) else None
        if not old or old == here:
            continue
        state["dirpath"], changed = here, True
        for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
            state[key] = _moved(state.get(key), old, here)
        if isinstance(state.get("best_k_models"), dict):
            state["best_k_models"] = {
                _moved(k, old, here): v for k, v in state["best_k_models"].items()
            }
    if changed:
        torch_save(path, with_digest(ckpt))


def _moved(path: Any, old: str, new: str) -> Any:
    return new + path[len(old) :] if isinstance(path, str) and path.startswith(old) else path


def _finished_at(cfg: TrainConfig, ckpt: dict[str, Any] | None) -> TrainConfig:
    """``cfg``, or with ``epochs`` set to the checkpoint's when the run it resumes had stopped
    early: Lightning does not store ``should_stop``, so it would train on past the stop."""
    if ckpt is None:
        return cfg
    stopped = any(
        isinstance(state, dict) and int(state.get("stopped_epoch", 0)) > 0
        for key, state in ckpt.get("callbacks", {}).items()
        if str(key).startswith("EarlyStopping")
    )
    return cfg.model_copy(update={"epochs": int(ckpt["epoch"]) + 1}) if stopped else cfg


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
        is_main=trainer.is_global_zero,
    )


def best_epoch(history: list[dict[str, float]], monitor: str = "val_loss") -> tuple[float, int]:
    """``(best value, 1-based epoch)`` of ``monitor`` in a fit history (min)."""
    rows = [r for r in history if monitor in r]
    if not rows:
        return float("nan"), 0
    row = min(rows, key=lambda r: r[monitor])
    return float(row[monitor]), int(row["epoch"]) + 1
