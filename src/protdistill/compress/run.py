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
from protdistill.compress.int8 import QuantConv1d, QuantLinear
from protdistill.compress.report import (
    build_rows,
    choose_default,
    count_weights,
    disk_mb,
    interleaved_latency,
)
from protdistill.compress.steps import calibration_batches, run_step
from protdistill.compress.task import Task
from protdistill.errors import ConfigError
from protdistill.io.atomic import write_json
from protdistill.progress import Log


def _stage(name: str, model: nn.Module, task: Task, original: nn.Module) -> dict[str, Any]:
    onnx = hasattr(model, "file_mb")  # an ONNX Runtime stand-in: sizes of its graph
    stage = {
        "step": name,
        "weights": model.weights if onnx else count_weights(model),
        "size_mb": model.size_mb if onnx else disk_mb(model),
        "metrics": task.evaluate(model, original),
    }
    return stage | ({"file_mb": model.file_mb} if onnx else {})


def _is_float(model: nn.Module) -> bool:
    return not any(isinstance(m, (QuantConv1d, QuantLinear)) for m in model.modules())


def _onnx_stages(
    cfg: CompressConfig, task: Task, names: list[str], models: list[nn.Module], *, log: Log
) -> list[tuple[str, nn.Module]]:
    """The last float stage exported to ONNX, fp32 and ONNX Runtime static INT8."""
    i = max(j for j, m in enumerate(models) if _is_float(m))
    folder = Path(cfg.out) / "onnx"
    log(f"exporting stage {names[i]!r} to ONNX (fp32 and ONNX Runtime INT8) in {folder}")
    fp32 = task.export_onnx(models[i], folder / "fp32.onnx", None)
    int8 = task.export_onnx(models[i], folder / "int8.onnx", calibration_batches(task, cfg))
    return [(f"onnx fp32 ({names[i]})", fp32), (f"onnx int8 ({names[i]})", int8)]


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
    if cfg.onnx:
        for name, onnx_model in _onnx_stages(cfg, task, ["original", *cfg.method], models, log=log):
            models.append(onnx_model)
            stages.append(_stage(name, onnx_model, task, original))
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
        "chosen": choose_default(rows, task.metric),
    }
    write_json(Path(cfg.out) / REPORT, report)
    return report
