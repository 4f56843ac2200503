"""`protdistill semcom train` (DeepSC teacher) and the top-level `protdistill analyze`.

Thin: parse options, resolve the config (defaults < YAML < CLI), call the library, print.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

_CFG = typer.Option(None, "--config", help="YAML file of options (CLI options override it).")
_PROGRESS = typer.Option(None, "--progress/--no-progress", help="Progress bar (on).")


@app.command("train")
def train(
    corpus: str = typer.Option(None, help="Folder of Europarl .txt files (or one file)."),
    output_path: str = typer.Option(None, help="Output folder (teacher.pt, logs)."),
    max_sentences: int = typer.Option(None, help="Seeded subset size before the 90/10 split."),
    min_words: int = typer.Option(None, help="Shortest sentence kept, in words (4)."),
    max_words: int = typer.Option(None, help="Longest sentence kept, in words (30)."),
    test_fraction: float = typer.Option(None, help="Share of sentences held out (0.1)."),
    split_seed: int = typer.Option(None, help="Seed of the train/test split (0)."),
    val_sentences: int = typer.Option(None, help="Held-out sentences used for val_loss (500)."),
    vocab_size: int = typer.Option(None, help="Vocabulary cap (specials included)."),
    d_model: int = typer.Option(None, help="Transformer width."),
    enc_layers: int = typer.Option(None, help="Transmitter (semantic encoder) layers."),
    dec_layers: int = typer.Option(None, help="Receiver (semantic decoder) layers."),
    symbol_dim: int = typer.Option(None, help="Real channel symbols per word (even)."),
    n_heads: int = typer.Option(None, help="Attention heads (8)."),
    d_ff: int = typer.Option(None, help="Feed-forward width (256)."),
    dropout: float = typer.Option(None, help="Dropout in both parts."),
    receiver_positions: bool = typer.Option(
        None,
        "--receiver-positions/--no-receiver-positions",
        help="Add symbol positions to the receiver's memory (default on).",
    ),  # fmt: skip
    channel: str = typer.Option(None, help="Training channel: awgn, rayleigh or mixed."),
    snr_min: float = typer.Option(None, help="Lowest training SNR (dB)."),
    snr_max: float = typer.Option(None, help="Highest training SNR (dB)."),
    epochs: int = typer.Option(None, help="Epochs."),
    batch_size: int = typer.Option(None, help="Sentences per batch."),
    lr: float = typer.Option(None, help="Peak learning rate."),
    seed: int = typer.Option(None, help="Random seed."),
    patience: int = typer.Option(None, help="Early stopping: epochs without a better val loss."),
    init_checkpoint: str = typer.Option(
        None, help="Warm start from this DeepSC .pt (same vocabulary and sizes)."
    ),
    resume: bool = typer.Option(None, "--resume/--no-resume", help="Resume from last.ckpt."),
    progress: bool = _PROGRESS,
    config: Path = _CFG,
) -> None:
    """Train a DeepSC teacher on Europarl sentences at random SNRs."""
    opts = {k: v for k, v in locals().items() if k != "config"}
    from protdistill.config import resolve  # lazy: start-up time
    from protdistill.tasks.semcom.train import SemcomTrainConfig, train_teacher

    cfg = resolve(SemcomTrainConfig, config, **opts)
    res = train_teacher(cfg)
    typer.echo(
        f"teacher: {res.path} ({res.parameters:,} parameters, best val loss {res.best_loss:.4f} "
        f"at epoch {res.best_epoch}, {res.seconds:.0f} s)"
    )


@app.command("analyze", help="Transmitter/receiver knowledge-gap analysis across SNR and T.")
def analyze(
    teacher_checkpoint: str = typer.Option(None, help="The DeepSC teacher .pt."),
    runs: list[str] = typer.Option(
        None, "--runs", help="A `protdistill distill` output folder (repeat for each T / part)."
    ),
    output_path: str = typer.Option(None, help="Report folder (default runs/semcom/analysis)."),
    data: str = typer.Option(None, help="Europarl folder (default: the teacher's)."),
    snrs: str = typer.Option(None, help="Comma-separated SNRs in dB (default 0,3,...,18)."),
    channels: str = typer.Option(None, help="Comma-separated channels (default awgn,rayleigh)."),
    max_sentences: int = typer.Option(None, help="Test sentences scored (default 300)."),
    batch_size: int = typer.Option(None, help="Sentences per decoding batch."),
    seed: int = typer.Option(None, help="Seed of the channel draws."),
    progress: bool = _PROGRESS,
    config: Path = _CFG,
) -> None:
    """Semantic difference analysis: BLEU, similarity and KL over SNR, gap vs temperature."""
    opts = {k: v for k, v in locals().items() if k not in ("config", "runs", "snrs", "channels")}
    opts["runs"] = list(runs) if runs else None
    opts["snrs"] = [float(s) for s in snrs.split(",")] if snrs else None
    opts["channels"] = [c.strip() for c in channels.split(",")] if channels else None
    from protdistill.config import resolve  # lazy: start-up time
    from protdistill.tasks.semcom.analysis import AnalyzeConfig
    from protdistill.tasks.semcom.analysis import analyze as run_analysis

    cfg = resolve(AnalyzeConfig, config, **opts)
    report = run_analysis(cfg)
    typer.echo(f"report: {cfg.output_path}/report.json (+ metric_vs_snr.png, gap_vs_T.png)")
    for gap in report["gaps"]:
        typer.echo(f"  {gap['model']:<24} BLEU-1 gap {gap['bleu1_gap']:+.3f}  KL {gap['kl']:.3f}")
