"""`protdistill compress MODEL --method prune,quantize --out DIR` (thin: parse, call, print)."""

from __future__ import annotations

from pathlib import Path

import typer

from protdistill.cli.options import echo, overrides
from protdistill.compress.config import CompressConfig
from protdistill.config import resolve


def compress(
    model: Path = typer.Argument(..., help="PPI run dir / student.safetensors, or ESM model dir."),
    out: Path = typer.Option(..., "--out", help="Directory for the compressed model and report."),
    method: str = typer.Option(None, help="Steps, comma-separated: prune,lowrank,quantize."),
    ratio: float = typer.Option(None, help="Prune: fraction of units removed per group."),
    importance: str = typer.Option(None, help="Prune: l1 (default) or taylor (gradient)."),
    finetune_steps: int = typer.Option(None, help="Fine-tuning steps after prune / lowrank."),
    finetune_lr: float = typer.Option(None, help="Fine-tuning learning rate."),
    distill: bool = typer.Option(
        None, "--distill/--no-distill", help="Fine-tune by distilling from the original model."
    ),
    alpha: float = typer.Option(None, help="KD weight when distilling (1 - alpha on labels)."),
    temperature: float = typer.Option(None, help="KD temperature."),
    rank: int = typer.Option(None, help="Low rank: fixed rank."),
    energy: float = typer.Option(None, help="Low rank: kept spectral energy (default 0.9)."),
    lowrank_min_params: int = typer.Option(
        None, help="Low rank: Linear layers with fewer weights are left whole (default 4096)."
    ),
    quantize_linear: bool = typer.Option(None, "--quantize-linear/--no-quantize-linear"),
    quantize_conv: bool = typer.Option(None, "--quantize-conv/--no-quantize-conv"),
    backend: str = typer.Option(None, help="INT8 kernels: native (default) or reference."),
    calibration_batches: int = typer.Option(None, help="Batches for static calibration."),
    onnx: bool = typer.Option(
        None,
        "--onnx/--no-onnx",
        help="Also export the last float stage to ONNX and time it under ONNX Runtime, fp32 and "
        "static INT8 (PPI Siamese students).",
    ),
    skip: list[str] = typer.Option(None, "--skip", help="Module path left untouched (repeat)."),
    pairs: Path = typer.Option(None, "--pairs", help="PPI pairs TSV (default: the run's split)."),
    fasta: Path = typer.Option(None, "--fasta", help="FASTA (PPI: the run's; ESM: required)."),
    batch_size: int = typer.Option(None, help="Batch size for tuning and calibration."),
    max_eval: int = typer.Option(None, help="Cap on held-out items evaluated."),
    bench_batch: int = typer.Option(None, help="Batch size timed for latency."),
    bench_repeats: int = typer.Option(None, help="Timing repeats (median)."),
    threads: int = typer.Option(None, help="torch CPU threads."),
    seed: int = typer.Option(None, help="Seed."),
    config: Path = typer.Option(None, "--config", help="YAML file with any CompressConfig field."),
) -> None:
    """Prune, quantize or low-rank factorise a trained student; print the before/after table."""
    cfg = resolve(CompressConfig, config, **overrides(locals()))
    from rich.console import Console  # lazy: start-up time (here and below)
    from rich.table import Table

    from protdistill.api.compress import compress_model
    from protdistill.compress.report import format_table

    report = compress_model(cfg, log=echo)
    rows = format_table(report["stages"], report["metric"], report["unit"])
    table = Table(title=f"compression of {model} ({report['threads']} CPU threads)")
    for name in rows[0]:
        table.add_column(name, justify="left" if name == "step" else "right")
    for row in rows[1:]:
        table.add_row(*row)
    Console(width=140).print(table)
    typer.echo(f"compressed model: {out} (report: {out / 'compression_report.json'})")
