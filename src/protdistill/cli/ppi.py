"""`protdistill ppi ...`: the PPI pipeline and each of its stages."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Protein-protein interaction distillation.")

PAIRS = typer.Option(None, "--pairs", help="Pairs TSV: idA idB [label], header optional.")
FASTA = typer.Option(None, "--fasta", help="FASTA with every protein the pairs name.")
TEACHER = typer.Option(None, "--teacher", help="ESM-2 hub id or local directory.")
OUT = typer.Option(..., "--out", help="Run directory (re-run the same command to resume).")
CONFIG = typer.Option(None, "--config", help="YAML file with any PpiConfig field.")
MODEL = typer.Option(..., "--model", help="Run directory (or student.safetensors) of a student.")


def _echo(message: str) -> None:
    typer.secho(message, fg=typer.colors.CYAN, err=True)


def _config(config: Path | None, **overrides):
    from protdistill.config import resolve
    from protdistill.tasks.ppi.config import PpiConfig

    return resolve(PpiConfig, config, **overrides)


@app.command()
def run(
    pairs: Path = PAIRS,
    fasta: Path = FASTA,
    teacher: str = TEACHER,
    out: Path = OUT,
    split: str = typer.Option(None, help="protein (disjoint, default) or random."),
    test_pairs: Path = typer.Option(
        None, help="Held-out pairs TSV used as the test split instead of drawing one."
    ),
    student: str = typer.Option(None, help="resnet1d (default) or interaction."),
    epochs: int = typer.Option(None, help="Student training epochs."),
    max_pairs: int = typer.Option(None, help="Seeded label-stratified subsample of the pairs."),
    folds: int = typer.Option(None, help="k-fold cross-validation when > 1."),
    alpha: float = typer.Option(None, help="Weight of the T^2 KL term (0 = labels only)."),
    temperature: float = typer.Option(None, help="Distillation temperature T."),
    map_weight: float = typer.Option(None, help="Weight of the masked map loss (interaction)."),
    feature_weight: float = typer.Option(
        None, help="Weight of feature KD on the students' protein embeddings (0 = off)."
    ),
    cache: Path = typer.Option(None, help="Teacher cache directory (shared across runs)."),
    seed: int = typer.Option(None, help="Seed for subsampling, splits and training."),
    config: Path = CONFIG,
) -> None:
    """Validate -> split -> teacher embeddings + head -> student -> metrics and plots."""
    from protdistill.tasks.ppi.pipeline import run as run_pipeline

    cfg = _config(
        config,
        pairs=_s(pairs),
        fasta=_s(fasta),
        teacher=teacher,
        split=split,
        test_pairs=_s(test_pairs),
        student=student,
        epochs=epochs,
        max_pairs=max_pairs,
        folds=folds,
        alpha=alpha,
        temperature=temperature,
        map_weight=map_weight,
        feature_weight=feature_weight,
        cache=_s(cache),
        seed=seed,
    )
    metrics = run_pipeline(cfg, out, log=_echo)
    _print_metrics(metrics)
    typer.echo(f"run directory: {out}")


def _s(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _print_metrics(metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    table = Table(title="test metrics")
    names = ["auroc", "aupr", "accuracy", "f1", "mcc", "n"]
    table.add_column("model")
    for n in names:
        table.add_column(n, justify="right")
    for model, m in rows.items():
        cells = []
        for n in names:
            v = m.get(n)
            v = v["mean"] if isinstance(v, dict) else v
            cells.append("" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)))
        table.add_row(model, *cells)
    Console().print(table)


def _stage(pairs, fasta, teacher, out, config, until: str) -> None:
    from protdistill.tasks.ppi import pipeline as pl

    cfg = _config(config, pairs=_s(pairs), fasta=_s(fasta), teacher=teacher)
    data, split = pl.prepare(cfg, out, log=_echo)
    teacher_model = pl.load_teacher(cfg)
    emb = pl.embed_proteins(cfg, out, data.sequences, teacher_model, log=_echo)
    if until == "embed":
        return
    logits = pl.fit_teacher(cfg, out, emb, split, log=_echo)
    if until == "teacher":
        return
    maps, feats = pl.distill_targets(cfg, out, data, split, teacher_model, emb, log=_echo)
    pl.train_student(cfg, out, data, split, logits, maps, feats, log=_echo)


@app.command()
def embed(
    pairs: Path = PAIRS,
    fasta: Path = FASTA,
    teacher: str = TEACHER,
    out: Path = OUT,
    config: Path = CONFIG,
) -> None:
    """Embed every protein once with the frozen teacher into the teacher cache."""
    _stage(pairs, fasta, teacher, out, config, "embed")


@app.command(name="teacher")
def teacher_cmd(
    pairs: Path = PAIRS,
    fasta: Path = FASTA,
    teacher: str = TEACHER,
    out: Path = OUT,
    config: Path = CONFIG,
) -> None:
    """Train the teacher head on frozen embeddings and cache its logits for every pair."""
    _stage(pairs, fasta, teacher, out, config, "teacher")


@app.command()
def train(
    pairs: Path = PAIRS,
    fasta: Path = FASTA,
    teacher: str = TEACHER,
    out: Path = OUT,
    config: Path = CONFIG,
) -> None:
    """Train (distil) the student; earlier stages run first when their outputs are missing."""
    _stage(pairs, fasta, teacher, out, config, "train")


@app.command()
def evaluate(
    model: Path = MODEL,
    pairs: Path = typer.Option(..., "--pairs", help="Labelled pairs TSV."),
    fasta: Path = typer.Option(..., "--fasta", help="FASTA with the proteins."),
    out: Path = typer.Option(..., "--out", help="Directory for metrics.json."),
    teacher: str = typer.Option(None, "--teacher", help="Also score the run's teacher."),
) -> None:
    """Score labelled pairs with a trained student (and the teacher) -> OUT/metrics.json."""
    from protdistill.tasks.ppi.evaluate import evaluate_pairs

    metrics = evaluate_pairs(model, pairs, fasta, out, teacher=teacher, log=_echo)
    _print_metrics(metrics)


@app.command()
def predict(
    model: Path = MODEL,
    pairs: Path = typer.Option(..., "--pairs", help="Pairs TSV (labels optional, ignored)."),
    fasta: Path = typer.Option(..., "--fasta", help="FASTA with the proteins."),
    out: Path = typer.Option(..., "--out", help="Output TSV: protein_a protein_b probability."),
) -> None:
    """Write interaction probabilities for (unlabelled) pairs."""
    from protdistill.tasks.ppi.evaluate import predict_file

    n = predict_file(model, pairs, fasta, out)
    typer.echo(f"wrote {n} predictions to {out}")


@app.command()
def explain(
    model: Path = MODEL,
    fasta: Path = typer.Option(..., "--fasta", help="FASTA with both proteins."),
    a: str = typer.Option(..., "--a", help="Id of protein A (rows)."),
    b: str = typer.Option(..., "--b", help="Id of protein B (columns)."),
    out: Path = typer.Option(..., "--out", help="Output PNG."),
    teacher: str = typer.Option(None, "--teacher", help="Draw the teacher's binned map beside."),
    window: int = typer.Option(9, help="Side of the marked top-scoring square (residues)."),
) -> None:
    """Heatmap of the interaction student's A x B map, top-scoring region marked."""
    from protdistill.tasks.ppi.evaluate import explain_pair

    info = explain_pair(model, fasta, a, b, out, teacher=teacher, window=window)
    r = info["top_region"]
    typer.echo(
        f"P(interact)={info['probability']:.3f}; top region {a}:{r['a_start']}-{r['a_end']}"
        f" x {b}:{r['b_start']}-{r['b_end']}; wrote {out}"
    )
