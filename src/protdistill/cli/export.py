"""`protdistill export RUN --format onnx --out model.onnx [--int8]` (thin: parse, call, print)."""

from __future__ import annotations

from pathlib import Path

import typer

from protdistill.cli.options import echo


def export(
    model: Path = typer.Argument(..., help="PPI run directory (or student.safetensors)."),
    out: Path = typer.Option(..., "--out", help="model.onnx (+ .encoder/.head.onnx, .json)."),
    fmt: str = typer.Option("onnx", "--format", help="Export format: onnx."),
    int8: bool = typer.Option(False, "--int8", help="ONNX Runtime static INT8 (calibrated)."),
    calibration: int = typer.Option(8, help="Training batches for INT8 calibration."),
    pairs: Path = typer.Option(None, "--pairs", help="Calibration pairs (default: the run's)."),
    fasta: Path = typer.Option(None, "--fasta", help="FASTA of the calibration pairs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing export."),
) -> None:
    """Export a trained student for ONNX Runtime (dynamic batch and length axes)."""
    from protdistill.api.export import export_model  # lazy: start-up time

    manifest = export_model(
        model, out, fmt=fmt, int8=int8, calibration=calibration,
        pairs=str(pairs) if pairs else None, fasta=str(fasta) if fasta else None,
        overwrite=overwrite, log=echo,
    )  # fmt: skip
    kind = "INT8" if manifest["int8"] else "fp32"
    typer.echo(f"wrote {kind} ONNX graphs {out} (+ encoder, head; manifest {out}.json)")
