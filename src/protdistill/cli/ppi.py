"""`protdistill ppi ...`: the PPI pipeline and each of its stages."""

from __future__ import annotations

from pathlib import Path

import typer

from protdistill.cli.options import config_fields, echo, overrides, run_log
from protdistill.config import resolve
from protdistill.errors import ConfigError
from protdistill.tasks.ppi.common.config import PpiConfig
from protdistill.tasks.ppi.pretrain.config import PretrainConfig

app = typer.Typer(no_args_is_help=True, help="Protein-protein interaction distillation.")

TEACHER = typer.Option(None, "--teacher", help="ESM-2 hub id or local directory.")
OUT = typer.Option(..., "--out", help="Run directory (re-run the same command to resume).")
CONFIG = typer.Option(None, "--config", help="YAML file with any PpiConfig field.")
MODEL = typer.Option(..., "--model", help="Run directory (or student.safetensors) of a student.")
SERVED = typer.Option(
    None, "--model", help="Run directory (or student.safetensors), or a model.onnx export."
)
ONNX = typer.Option(None, "--onnx", help="model.onnx from `protdistill export`: ONNX Runtime.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress messages (run.log keeps them).")
DATASET = typer.Option(None, "--dataset", help="A benchmark shipped with protdistill: guo-yeast.")
#: Help texts clearer on the command line than the config field descriptions.
HELP = {
    "pairs": "Pairs TSV: idA idB (label), header optional.",
    "fasta": "FASTA with every protein the pairs name.",
    "teacher": "ESM-2 hub id or local directory.",
    "split": "protein (disjoint) or random.",
    "student": "resnet1d, interaction, or esm (a few of the teacher's layers; how many: "
    "--student-config '{\"num_layers\": 2}').",
    "alpha": "Weight of the T^2 KL term (0 = labels only).",
    "feature_weight": "Weight of feature KD on the students' protein embeddings (0 = off).",
    "cache": "Teacher cache directory (shared across runs).",
    "transfer_fasta": "Unlabelled proteins for general distillation first (repeatable); the "
    "test split's proteins are left out.",
    "transductive": "Add the test proteins to the transfer set (screening use; reports say so).",
}


def _with_dataset(options: dict, dataset: str | None) -> dict:
    """``--dataset NAME`` fills --pairs / --fasta (when not given) with the packaged files."""
    if not dataset:
        return options
    from protdistill.datasets import dataset_files  # lazy: start-up time

    pairs, fasta = dataset_files(dataset)
    return {**options, "pairs": options.get("pairs") or str(pairs),
            "fasta": options.get("fasta") or str(fasta)}  # fmt: skip


@app.command()
@config_fields(PpiConfig, helps=HELP)
def run(
    options: dict,
    out: Path = OUT,
    dataset: str = DATASET,
    config: Path = CONFIG,
    quiet: bool = QUIET,
) -> None:
    """Validate -> split -> teacher embeddings + head -> (general distillation) -> student ->
    metrics and plots. Every PpiConfig field is an option."""
    cfg = resolve(PpiConfig, config, **_with_dataset(options, dataset))
    from protdistill.tasks.ppi.run.pipeline import run as run_pipeline  # lazy: start-up time

    metrics = run_pipeline(cfg, out, log=run_log(out, quiet=quiet))
    _print_metrics(metrics)
    typer.echo(f"run directory: {out}")


def _print_metrics(metrics: dict) -> None:
    from rich.console import Console  # lazy: start-up time
    from rich.table import Table

    rows = {k: v for k, v in metrics.items() if isinstance(v, dict) and k != "sites"}
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
    if "sites" in metrics:  # --sites: residue binding sites on the site data's val split
        auroc = {k: v["auroc"] for k, v in metrics["sites"].items() if isinstance(v, dict)}
        shown = ", ".join(f"{k} {v:.3f}" for k, v in auroc.items())
        typer.echo(f"binding sites, val AUROC: {shown}")


def _stage(out: Path, config: Path | None, until: str, options: dict, log) -> None:
    from protdistill.distill.parallel import finish, launch, main_first  # lazy: start-up time
    from protdistill.tasks.ppi.run import prepare, train
    from protdistill.tasks.ppi.run import teacher as stage
    from protdistill.tasks.ppi.run.backbone import run_backbone

    cfg = resolve(PpiConfig, config, **options)
    launch(cfg.scale)
    data, split = main_first(lambda: prepare.prepare(cfg, out, log=log))
    teacher_model = stage.load_teacher(cfg)
    emb = stage.embed_proteins(cfg, out, data.sequences, teacher_model, log=log)
    if until == "embed":
        finish()
        return
    logits = main_first(lambda: stage.fit_teacher(cfg, out, emb, split, log=log))
    if until == "teacher":
        finish()
        return
    maps, feats, scores = stage.distill_targets(cfg, out, data, split, teacher_model, emb, log=log)
    backbone = main_first(lambda: run_backbone(cfg, out, data, split, log=log))
    train.train_student(
        cfg, out, data, split, logits, maps, feats,
        backbone=backbone, teacher_scores=scores, log=log,
    )  # fmt: skip
    finish()


def _stage_command(until: str):
    """The `ppi embed` / `ppi teacher` / `ppi train` command: the pipeline up to ``until``."""

    @config_fields(PpiConfig, helps=HELP)
    def command(
        options: dict,
        out: Path = OUT,
        dataset: str = DATASET,
        config: Path = CONFIG,
        quiet: bool = QUIET,
    ) -> None:
        _stage(out, config, until, _with_dataset(options, dataset), run_log(out, quiet=quiet))

    return command


_STAGES = {
    "embed": "Embed every protein once with the frozen teacher into the teacher cache.",
    "teacher": "Train the teacher head on frozen embeddings and cache its logits for every pair.",
    "train": "Train (distil) the student; earlier stages run first when their outputs are missing.",
}
for _name, _help in _STAGES.items():
    app.command(name=_name, help=_help)(_stage_command(_name))


#: Help of `ppi pretrain` options whose config description is missing or says less.
PRETRAIN_HELP = {
    "teacher": "ESM-2 hub id or local directory.",
    "cache": "Teacher cache directory (default OUT/../teacher_cache).",
    "epochs": "Passes over the transfer set.",
    "residue_weight": "Weight of per-residue KD (0 = off).",
    "random_crops": "Random crops of long proteins instead of their first residues.",
    "teacher_precision": "Teacher forward: 32, or autocast to bf16 / 16 (own cache directory).",
}


@app.command(name="pretrain")
@config_fields(PretrainConfig, helps=PRETRAIN_HELP)
def pretrain_command(
    options: dict,
    fasta: list[Path] = typer.Option(..., "--fasta", help="Unlabelled proteins (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Backbone directory (re-run to resume)."),
    exclude_pairs: list[Path] = typer.Option(
        None, "--exclude-pairs", help="Pairs TSV whose proteins are left out (repeatable)."
    ),
    config: Path = typer.Option(None, "--config", help="YAML file with any PretrainConfig field."),
) -> None:
    """General distillation: teach a student encoder the teacher's representation of unlabelled
    proteins -> a backbone for `ppi run --init`. Several processes (--devices / --num-nodes)
    share the teacher pass and train with DDP (docs/scale.md)."""
    from protdistill.tasks.ppi.pretrain.general import pretrain_files  # lazy: start-up

    cfg = resolve(PretrainConfig, config, **options)
    path = pretrain_files(cfg, fasta, exclude_pairs or [], out, log=echo)
    typer.echo(f"backbone: {path}")


@app.command()
def evaluate(
    model: Path = MODEL,
    pairs: Path = typer.Option(..., "--pairs", help="Labelled pairs TSV."),
    fasta: Path = typer.Option(..., "--fasta", help="FASTA with the proteins."),
    out: Path = typer.Option(..., "--out", help="Directory for metrics.json."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing metrics.json."),
    teacher: str = typer.Option(None, "--teacher", help="Also score the run's teacher."),
    cache: str = typer.Option(
        None,
        "--cache",
        help="Teacher cache for --teacher (default: the run's own, if under the current folder).",
    ),
    ranking: bool = typer.Option(
        False,
        "--ranking",
        help="Also rank every protein's partners among all proteins of the "
        "file -> OUT/ranking.json (recall@10/50, reciprocal rank, hub share; Siamese students).",
    ),
) -> None:
    """Score labelled pairs with a trained student (and the teacher) -> OUT/metrics.json."""
    from protdistill.tasks.ppi.run.evaluate import evaluate_pairs  # lazy: start-up

    metrics = evaluate_pairs(
        model, pairs, fasta, out, teacher=teacher, cache=cache, overwrite=overwrite, log=echo
    )
    _print_metrics(metrics)
    if ranking:
        from protdistill.tasks.ppi.screen.judge import evaluate_ranking  # lazy: start-up

        table = evaluate_ranking(model, pairs, fasta, out, log=echo)
        for name, r in table.items():
            typer.echo(f"{name:>26}: recall@10 {r['recall@10']:.3f}  recall@50 "
                       f"{r['recall@50']:.3f}  MRR {r['rr']:.3f}  top-50 slots held by 50 "
                       f"proteins {r['hub']['top_share']:.1%}")  # fmt: skip
        typer.echo(f"wrote {out}/ranking.json ({table['probability']['queries']} queries)")


def served_model(model: Path | None, onnx: Path | None) -> Path:
    """The student to run: ``--model`` (a run or an export) or ``--onnx`` (an export)."""
    if (model is None) == (onnx is None):
        raise ConfigError(
            "give the student once", fix="pass --model RUN_DIR or --onnx model.onnx (not both)"
        )
    if onnx is not None and onnx.suffix != ".onnx":
        raise ConfigError("--onnx takes a .onnx file", path=onnx, fix="run `protdistill export`")
    return model if model is not None else onnx


@app.command()
def predict(
    model: Path = SERVED,
    onnx: Path = ONNX,
    pairs: Path = typer.Option(..., "--pairs", help="Pairs TSV (labels optional, ignored)."),
    fasta: Path = typer.Option(..., "--fasta", help="FASTA with the proteins."),
    out: Path = typer.Option(..., "--out", help="Output TSV, one row per input row, in order."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Write interaction probabilities for (unlabelled) pairs."""
    from protdistill.tasks.ppi.run.evaluate import predict_file  # lazy: start-up

    n = predict_file(served_model(model, onnx), pairs, fasta, out, overwrite=overwrite)
    typer.echo(f"wrote {n} predictions to {out}")


@app.command()
def explain(
    model: Path = MODEL,
    fasta: Path = typer.Option(..., "--fasta", help="FASTA with both proteins."),
    a: str = typer.Option(..., "--a", help="Id of protein A (rows)."),
    b: str = typer.Option(..., "--b", help="Id of protein B (columns)."),
    out: Path = typer.Option(..., "--out", help="Output PNG."),
    teacher: str = typer.Option(None, "--teacher", help="Draw the teacher's map beside."),
    teacher_map: str = typer.Option(
        "clean", "--teacher-map", help="contact, both_orders, clean, attention or embedding."
    ),
    window: int = typer.Option(9, help="Side of the marked top-scoring square (residues)."),
) -> None:
    """Heatmap of the interaction student's A x B map, top-scoring region marked."""
    from protdistill.tasks.ppi.interfaces.explain import explain_pair  # lazy: start-up

    info = explain_pair(
        model, fasta, a, b, out, teacher=teacher, teacher_map=teacher_map, window=window
    )
    r = info["top_region"]
    typer.echo(
        f"P(interact)={info['probability']:.3f}; top region {a}:{r['a_start']}-{r['a_end']}"
        f" x {b}:{r['b_start']}-{r['b_end']}; wrote {out}"
    )


@app.command()
def interfaces(
    fasta: Path = typer.Option(..., "--fasta", help="FASTA with both chains of every complex."),
    pairs: Path = typer.Option(..., "--pairs", help="Complexes: chain_a chain_b per line."),
    contacts: Path = typer.Option(..., "--contacts", help="Contacts TSV: a b i j (0-based)."),
    out: Path = typer.Option(
        ..., "--out", help="Output directory (metrics.json is never replaced)."
    ),
    model: Path = typer.Option(None, "--model", help="Run directory of an interaction student."),
    teacher: str = typer.Option(None, "--teacher", help="Also score the teacher's maps."),
    teacher_map: list[str] = typer.Option(
        ["clean"], "--teacher-map", help="contact, both_orders, clean, attention or embedding."
    ),
    complexes: Path = typer.Option(None, "--complexes", help="complexes.tsv (pdb, seq_ident)."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="A PNG per complex."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing metrics.json."),
) -> None:
    """Score full-length residue maps against the true contacts of solved complexes."""
    from protdistill.tasks.ppi.interfaces.complexes import InterfacesConfig, run_interfaces  # lazy

    cfg = InterfacesConfig(
        fasta=str(fasta), pairs=str(pairs), contacts=str(contacts), out=str(out),
        model=str(model) if model else None, teacher=teacher, teacher_maps=teacher_map,
        complexes=str(complexes) if complexes else None, figures=figures, overwrite=overwrite,
    )  # fmt: skip
    metrics = run_interfaces(cfg, log=echo)
    for name, groups in metrics["sources"].items():
        g = groups["all"]
        typer.echo(
            f"{name}: top-L/10 {g['top_l10']:.3f} ({g.get('top_l10_x_random', 0):.1f}x random), "
            f"interface AUROC {g['interface_auroc']:.3f}"
        )
    typer.echo(f"wrote {out}/metrics.json")


@app.command()
def sites(
    model: Path = typer.Option(
        ..., "--model", help="Run trained with --sites (or a folder with site_model.safetensors)."
    ),
    fasta: Path = typer.Option(..., "--fasta", help="Proteins to score."),
    out: Path = typer.Option(
        ..., "--out", help="SITES.tsv.gz or SITES.parquet (re-run the same command to resume)."
    ),
    plot: Path = typer.Option(None, "--plot", help="Folder for one profile PNG per protein."),
) -> None:
    """Per-residue binding-site probability of every protein: protein, position, residue,
    probability."""
    from protdistill.tasks.ppi.sites.predict import predict_sites  # lazy: start-up time

    summary = predict_sites(model, fasta, out, plot=plot, log=echo)
    typer.echo(f"{summary['proteins']} proteins, {summary['residues']} residues -> {out}")


@app.command()
def screen(
    model: Path = SERVED,
    onnx: Path = ONNX,
    fasta: Path = typer.Option(..., "--fasta", help="Proteome FASTA (all-vs-all, i < j)."),
    out: Path = typer.Option(..., "--out", help="HITS.tsv.gz or HITS.parquet (never replaced)."),
    query: Path = typer.Option(None, "--query", help="Query FASTA: score query x proteome."),
    top_k: int = typer.Option(None, help="Partners kept per protein (default 50; 0 = none)."),
    threshold: float = typer.Option(None, help="Keep pairs with probability >= this."),
    rank_by: str = typer.Option(
        None,
        help="Order of each protein's partners: specificity (default; hubs no longer "
        "fill every list) or probability (see README 'How to read a screen').",
    ),
    prior: float = typer.Option(
        None, help="State probabilities at this share of interacting pairs (e.g. 0.01)."
    ),
    reference: int = typer.Option(
        None, help="Proteome proteins (seeded sample) a protein's usual scores come from (2000)."
    ),
    include_self: bool = typer.Option(None, "--include-self/--no-self", help="Score A with A."),
    memory_mb: int = typer.Option(None, "--memory", help="MB for one block of pairs (1024)."),
    block: int = typer.Option(None, help="Proteins per block side (default: from --memory)."),
    tokens_per_batch: int = typer.Option(None, help="Residues per embedding batch (64000)."),
    progress: bool = typer.Option(None, "--progress/--no-progress", help="Progress bar (on)."),
    threads: int = typer.Option(None, help="torch CPU threads."),
    devices: int = typer.Option(None, help="Processes (GPUs) per node sharing the grid (1)."),
    num_nodes: int = typer.Option(None, help="Machines (torchrun / SLURM) (1)."),
    accelerator: str = typer.Option(None, help="cpu, gpu or auto."),
    config: Path = CONFIG,
) -> None:
    """Score every pair of a proteome (or query x proteome): top-K partners and/or hits."""
    options = overrides(locals(), drop=("config", "onnx"))
    options["model"] = str(served_model(model, onnx))
    scale = {k: options.pop(k, None) for k in ("devices", "num_nodes", "accelerator")}
    scale = {k: v for k, v in scale.items() if v is not None}
    if scale:
        options["scale"] = scale
    from protdistill.tasks.ppi.screen import screening as stage  # lazy: start-up time

    cfg = resolve(stage.ScreenConfig, config, **options)
    summary = stage.screen(cfg, log=echo)
    seconds = summary["wall_seconds"]
    rate = summary["scoring_pairs_per_second"] or 0.0
    typer.echo(
        f"scored {summary['pairs_scored_this_run']:,} pairs ({rate:,.0f} pairs/s; embedding "
        f"{seconds['embedding']:.1f} s, scoring {seconds['scoring']:.1f} s); "
        f"wrote {summary['rows_written']:,} rows to {out}"
    )
