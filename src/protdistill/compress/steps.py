"""One compression step (prune, low rank or quantize) applied in place, then fine-tuning."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from protdistill.compress.config import CompressConfig
from protdistill.compress.lowrank import factorize_model
from protdistill.compress.prune import prune_model
from protdistill.compress.quantize import quantize_model
from protdistill.compress.task import Task
from protdistill.progress import Log


def finetune(
    task: Task, model: nn.Module, teacher: nn.Module | None, cfg: CompressConfig, *, log: Log
) -> float | None:
    """``cfg.finetune_steps`` AdamW steps on the training items; returns the mean last-50 loss."""
    if cfg.finetune_steps == 0 or not task.train:
        return None
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.finetune_lr)
    batches = itertools.cycle(list(task.batches(task.train, cfg.batch_size, shuffle=True)))
    if teacher is not None:
        teacher.eval()
    model.train()
    losses = []
    for step in range(cfg.finetune_steps):
        loss = task.loss(model, next(batches), teacher, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == cfg.finetune_steps:
            log(f"  fine-tune step {step + 1}/{cfg.finetune_steps}: loss {losses[-1]:.4f}")
    model.eval()
    tail = losses[-50:]
    return sum(tail) / len(tail)


def calibration_batches(task: Task, cfg: CompressConfig) -> list[dict]:
    """The first ``cfg.calibration_batches`` training batches (fixed order)."""
    return list(itertools.islice(task.batches(task.train, cfg.batch_size), cfg.calibration_batches))


def run_step(
    method: str, task: Task, model: nn.Module, teacher: nn.Module, cfg: CompressConfig, *, log: Log
) -> dict[str, Any]:
    """Apply one compression step in place; returns its summary for the manifest / report."""
    calib = calibration_batches(task, cfg)

    def run_batches(m: nn.Module) -> None:
        with torch.no_grad():
            for b in calib:
                task.forward(m, b)

    if method == "prune":
        losses = [lambda m, b=b: task.loss(m, b, None, cfg) for b in calib]
        if task.kind == "esm":
            losses = [lambda m, b=b: task.loss(m, b, teacher, cfg) for b in calib]
        groups = prune_model(
            model,
            cfg.ratio,
            importance=cfg.importance,
            loss_batches=losses,
            run_example=lambda m: task.forward(m, calib[0]),
            skip=cfg.skip,
        )
        log(f"pruned {len(groups)} groups at ratio {cfg.ratio} ({cfg.importance})")
        summary: dict[str, Any] = {"ratio": cfg.ratio, "importance": cfg.importance}
        summary["groups"] = groups
    elif method == "lowrank":
        energy = cfg.energy if cfg.rank is None and cfg.energy is not None else None
        if cfg.rank is None and energy is None:
            energy = 0.9
        layers = factorize_model(
            model, rank=cfg.rank, energy=energy, min_params=cfg.lowrank_min_params, skip=cfg.skip
        )
        log(f"factorised {len(layers)} Linear layers")
        summary = {"rank": cfg.rank, "energy": energy, "layers": layers}
    else:
        summary = quantize_model(
            model,
            run_batches=run_batches,
            linear=cfg.quantize_linear,
            conv=cfg.quantize_conv,
            skip=cfg.skip,
            backend=cfg.backend,
        )
        log(f"quantized {len(summary['conv'])} Conv1d (static), {len(summary['linear'])} Linear")
        summary["backend"] = cfg.backend
        summary["engine"] = torch.backends.quantized.engine
        return {"method": method, **summary}
    tuned = finetune(task, model, teacher if cfg.distill else None, cfg, log=log)
    return {"method": method, **summary, "finetune_steps": cfg.finetune_steps, "final_loss": tuned}
