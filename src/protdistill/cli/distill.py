"""`protdistill distill`: one command for every teacher/student pair, controlled by options.

Quick start::

    protdistill semcom train --config configs/semcom_teacher.yaml
    protdistill distill --teacher-checkpoint runs/semcom/teacher/teacher.pt \\
        --distill-part decoder --student-layers 1 --temperature 4 --create-hybrid \\
        --output-path runs/semcom/student_dec_T4
    protdistill distill --teacher-checkpoint ../shared/models/esm2_t6_8M_standin \\
        --data proteins.fasta --student-layers 2 --output-path runs/esm_student_L2
"""

from __future__ import annotations

from pathlib import Path

import typer

from protdistill.cli.options import overrides
from protdistill.config import resolve
from protdistill.distill.config import DistillConfig


def distill(
    teacher_checkpoint: str = typer.Option(
        None, help="Teacher: a semcom .pt, an ESM-2 folder or a hub id."
    ),
    data: str = typer.Option(
        None, help="Training data: Europarl folder (semcom; default the teacher's) or FASTA (ESM)."
    ),
    family: str = typer.Option(None, help="auto, semcom or esm (default: auto)."),
    temperature: float = typer.Option(None, help="Distillation temperature T (default 4.0)."),
    distill_weight: float = typer.Option(
        None, help="alpha: weight of the KD term, 1-alpha for cross-entropy (default 0.7)."
    ),
    distill_part: str = typer.Option(
        None, help="full, encoder or decoder: which part of the student learns (default full)."
    ),
    student_layers: int = typer.Option(None, help="Layers of the distilled part (default 1)."),
    init_layers: str = typer.Option(
        None, help="Teacher layers the student's layers start from, e.g. 0 or 0,3 (evenly spaced)."
    ),
    create_hybrid: bool = typer.Option(
        None, "--create-hybrid/--no-hybrid", help="Also save teacher encoder + student decoder."
    ),
    hybrid_output: str = typer.Option(None, help="Hybrid path (default DIR/hybrid_model.pt)."),
    batch_size: int = typer.Option(None, help="Batch size (default 64)."),
    epochs: int = typer.Option(None, help="Epochs (default 3)."),
    lr: float = typer.Option(None, help="Peak learning rate (default 1e-3)."),
    output_path: str = typer.Option(None, help="Output folder DIR (default runs/distill)."),
    resume: bool = typer.Option(None, "--resume/--no-resume", help="Resume from DIR's last.ckpt."),
    seed: int = typer.Option(None, help="Random seed."),
    channel: str = typer.Option(None, help="semcom: awgn, rayleigh or mixed training channel."),
    max_train_sentences: int = typer.Option(
        None, help="semcom: use only this many of the teacher's training sentences."
    ),
    snr_min: float = typer.Option(None, help="semcom: lowest training SNR, dB (0)."),
    snr_max: float = typer.Option(None, help="semcom: highest training SNR, dB (18)."),
    val_sentences: int = typer.Option(None, help="semcom: validation sentences (500)."),
    max_proteins: int = typer.Option(None, help="ESM: seeded subset of the FASTA."),
    val_fraction: float = typer.Option(None, help="ESM: share of proteins for validation (0.1)."),
    max_length: int = typer.Option(None, help="ESM: residues kept per protein."),
    hidden_weight: float = typer.Option(None, help="Hidden-state KD of mapped layers (1.0)."),
    attention_weight: float = typer.Option(None, help="Attention-map KD of mapped layers (1.0)."),
    contact_weight: float = typer.Option(None, help="ESM: contact-map KD (1.0)."),
    logit_weight: float = typer.Option(None, help="ESM: masked-LM logit KD (1.0)."),
    progress: bool = typer.Option(None, "--progress/--no-progress", help="Progress bar (on)."),
    patience: int = typer.Option(None, help="Early stopping: epochs without a better val loss."),
    accelerator: str = typer.Option(None, help="cpu, gpu or auto."),
    devices: int = typer.Option(None, help="Processes (GPUs) per node; > 1 = DDP (1)."),
    num_nodes: int = typer.Option(None, help="Machines (torchrun / SLURM) (1)."),
    strategy: str = typer.Option(None, help="Lightning strategy when devices x nodes > 1 (ddp)."),
    precision: str = typer.Option(None, help="Student training precision, e.g. bf16-mixed."),
    config: Path = typer.Option(None, "--config", help="YAML file of options (CLI overrides it)."),
) -> None:
    """Distil a teacher into a smaller student (full / encoder / decoder part)."""
    cfg = resolve(DistillConfig, config, **overrides(locals()))
    from protdistill.api.distill import run_distill  # lazy: start-up time

    rep = run_distill(cfg)
    if rep:  # another rank of a DDP run returns nothing: rank 0 reports
        _report(rep, cfg.output_path)


def _report(rep: dict, output_path: str) -> None:
    typer.echo(
        f"student: {output_path}/best_student_model.pt ({rep['student_parameters']:,} vs "
        f"{rep['teacher_parameters']:,} teacher parameters, x{rep['compression_ratio']:.2f}; "
        f"best loss {rep['best_loss']:.4f} at epoch {rep['best_epoch']}; "
        f"{rep['wall_time_s']:.0f} s)"
    )
    if rep.get("hybrid_path"):
        typer.echo(f"hybrid: {rep['hybrid_path']}")
