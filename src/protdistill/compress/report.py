"""Before/after measurements: weights, size on disk, CPU latency and throughput (as ratios taken
in one interleaved run, median of repeats) and the task metric."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from protdistill.distill.checkpoint import save_model

_STATS = ("running_mean", "running_var", "num_batches_tracked", "act_scale", "act_zero")


def count_weights(model: nn.Module) -> int:
    """Stored weight values (parameters and int8 / scale buffers; BN statistics excluded)."""
    return sum(
        t.numel() for k, t in model.state_dict().items() if k.rsplit(".", 1)[-1] not in _STATS
    )


def disk_mb(model: nn.Module) -> float:
    """Size in MB (1e6 bytes) of the model's state dict written as safetensors."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(Path(tmp) / "m.safetensors", model, {})
        return path.stat().st_size / 1e6


@torch.inference_mode()
def interleaved_latency(
    models: Sequence[nn.Module],
    run: Callable[[nn.Module], object],
    *,
    repeats: int = 7,
    warmup: int = 2,
) -> tuple[list[float], list[float]]:
    """Median wall-clock and median process-CPU seconds per call of ``run(model)`` for each
    model, timed round-robin so that all models see the same (noisy, shared) CPU. CPU time (all
    threads of this process) is far less sensitive to other jobs on a shared machine."""
    for m in models:
        m.eval()
        for _ in range(warmup):
            run(m)
    wall: list[list[float]] = [[] for _ in models]
    cpu: list[list[float]] = [[] for _ in models]
    for _ in range(repeats):
        for i, m in enumerate(models):
            start, start_cpu = time.perf_counter(), time.process_time()
            run(m)
            cpu[i].append(time.process_time() - start_cpu)
            wall[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in wall], [statistics.median(t) for t in cpu]


def build_rows(
    stages: list[dict[str, Any]],
    latencies: list[float],
    batch: int,
    unit: str,
    cpu_times: list[float] | None = None,
) -> list[dict[str, Any]]:
    """One row per stage with absolute figures and ratios against the first (original) stage."""
    base = stages[0]
    rows = []
    cpu_times = cpu_times or latencies
    for stage, lat, cpu in zip(stages, latencies, cpu_times, strict=True):
        row = dict(stage)
        row["latency_ms"] = lat * 1e3
        row["cpu_ms"] = cpu * 1e3
        row[f"throughput_{unit}"] = batch / lat
        row["size_ratio"] = base["size_mb"] / stage["size_mb"]
        row["speedup"] = latencies[0] / lat
        row["cpu_speedup"] = cpu_times[0] / cpu
        row["weights_ratio"] = base["weights"] / max(stage["weights"], 1)
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]], metric: str, unit: str) -> list[list[str]]:
    """Header + rows of strings for printing (the CLI renders them with rich)."""
    head = ["step", "weights", "MB", "x smaller", "ms/batch", unit, "x faster", "CPU x faster"]
    head.append(metric)
    out = [head]
    for r in rows:
        value = r.get("metrics", {}).get(metric)
        out.append(
            [
                r["step"],
                f"{r['weights']:,}",
                f"{r['size_mb']:.3f}",
                f"{r['size_ratio']:.2f}",
                f"{r['latency_ms']:.1f}",
                f"{r[f'throughput_{unit}']:.1f}",
                f"{r['speedup']:.2f}",
                f"{r.get('cpu_speedup', r['speedup']):.2f}",
                "-" if value is None else f"{value:.4f}",
            ]
        )
    return out


def choose_default(
    rows: list[dict[str, Any]], metric: str, *, max_drop: float = 0.01, min_smaller: float = 3.0
) -> dict[str, Any]:
    """The fastest stage that loses at most ``max_drop`` of ``metric`` (1 AUPR point) and is at
    least ``min_smaller`` x smaller; failing that, the fastest within ``max_drop``."""
    base = rows[0]["metrics"].get(metric)
    if base is None:
        return {"step": rows[0]["step"], "reason": f"no {metric} to compare"}
    kept = [r for r in rows[1:] if base - r["metrics"].get(metric, float("-inf")) <= max_drop]
    small = [r for r in kept if r["size_ratio"] >= min_smaller]
    pool, reason = (small, f"fastest within {max_drop} {metric} and >= {min_smaller}x smaller")
    if not small:
        pool, reason = kept, f"fastest within {max_drop} {metric} (none >= {min_smaller}x smaller)"
    if not pool:
        return {"step": rows[0]["step"], "reason": f"every recipe loses > {max_drop} {metric}"}
    best = max(pool, key=lambda r: r["speedup"])
    return {"step": best["step"], "reason": reason, "speedup": best["speedup"],
            "size_ratio": best["size_ratio"], metric: best["metrics"][metric]}  # fmt: skip
