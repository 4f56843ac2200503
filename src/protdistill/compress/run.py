"""`protdistill compress`: the chosen steps, in distil -> prune -> low rank -> quantize order, on a
loaded :class:`~protdistill.compress.task.Task`; each stage measured; saved and re-loaded."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from protdistill.compress.artifact import REPORT, load_compressed, save_compressed
from protdistill.compress.config import CompressConfig
from protdistill.compress.report import build_rows, count_weights, disk_mb, interleaved_latency
from protdistill.compress.steps import run_step
from protdistill.compress.task import Task
from protdistill.errors import ConfigError
from protdistill.io.atomic import write_json
from protdistill.progress import Log


def _stage(name: str, model: nn.Module, task: Task, original: nn.Module) -> dict[str, Any]:
    return {
        "step": name,
        "weights": count_weights(model),
        "size_mb": disk_mb(model),
        "metrics": task.evaluate(model, original),
    }


def compress(cfg: CompressConfig, task: Task, *, log: Log = lambda _: None) -> dict[str, Any]:
    """Run ``cfg.method`` on ``task.model``; save to ``cfg.out``; return the report dict."""
    if not cfg.out:
        raise ConfigError("no output directory", fix="pass --out DIR")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    original = task.model.eval()
    for p in original.parameters():
        p.requires_grad_(False)
    log(f"evaluating the original ({len(task.held_out)} held-out items)")
    stages = [_stage("original", original, task, original)]
    models = [original]
    model = copy.deepcopy(original)
    for p in model.parameters():
        p.requires_grad_(True)
    steps = []
    for method in cfg.method:
        log(f"step {method}")
        steps.append(run_step(method, task, model, original, cfg, log=log))
        models.append(copy.deepcopy(model).eval())
        stages.append(_stage(method, models[-1], task, original))
    log("saving and reloading the compressed model")
    save_compressed(cfg.out, model, task, steps)
    reloaded, _ = load_compressed(cfg.out, backend=cfg.backend)
    with torch.no_grad():
        batch = task.bench_batch(min(cfg.bench_batch, 8))
        drift = (task.forward(reloaded, batch) - task.forward(model.eval(), batch)).abs().max()
    bench = task.bench_batch(cfg.bench_batch)
    log(f"timing {len(models)} stages x {cfg.bench_repeats} repeats (interleaved)")
    latencies, cpu_times = interleaved_latency(
        models, lambda m: task.forward(m, bench), repeats=cfg.bench_repeats
    )
    unit = task.unit.replace("/", "_per_")
    rows = build_rows(stages, latencies, cfg.bench_batch, unit, cpu_times)
    report = {
        "model": str(cfg.model),
        "kind": task.kind,
        "metric": task.metric,
        "unit": unit,
        "bench_batch": cfg.bench_batch,
        "threads": torch.get_num_threads(),
        "quantized_engine": torch.backends.quantized.engine,
        "reload_max_abs_diff": float(drift),
        "config": cfg.model_dump(),
        "steps": steps,
        "stages": rows,
    }
    write_json(Path(cfg.out) / REPORT, report)
    return report
