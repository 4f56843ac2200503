"""`protdistill peptide`: train, sample and evaluate StructDiff (thin: parse, call, print)."""

from __future__ import annotations

from pathlib import Path

import typer

from protdistill.cli.options import config_fields, json_option
from protdistill.tasks.peptide.config import PeptideTrainConfig

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

CONFIG = typer.Option(None, "--config", "-c", help="YAML config (defaults < YAML < options).")
#: Help of `peptide train` options whose config field has no description.
TRAIN_HELP = {
    "data": "peptide CSV/FASTA with a type column",
    "teacher": "ESM-2 hub id or local directory",
    "out": "run folder",
    "cache": "teacher cache folder",
    "timesteps": "diffusion steps of training",
    "schedule": "noise schedule: linear, cosine or sqrt",
    "objective": "denoiser target: eps or x0",
    "decoder": "embedding-to-residue decoder: auto, trained or lm_head",
}


def _echo(msg: str) -> None:
    typer.echo(msg, err=True)


@app.command()
@config_fields(PeptideTrainConfig, helps=TRAIN_HELP)
def train(
    options: dict,
    config: Path | None = CONFIG,
    types: str | None = typer.Option(None, help="comma-separated types, e.g. amp,afp,avp"),
    epochs: int | None = typer.Option(None, help="epochs of every stage"),
) -> None:
    """Train the denoiser, decoder and type classifier (re-run to resume). Every field of the
    training config is an option; nested sections (--model, --stages, --train, --sample,
    --evaluate) take JSON and replace the section of --config."""
    from protdistill.config import read_yaml, resolve  # lazy: start-up time
    from protdistill.tasks.peptide.train import train_structdiff

    base = read_yaml(config) if config else {}
    if epochs is not None:
        stages = options.get("stages") or base.get("stages") or [{}]
        options["stages"] = [{**s, "epochs": epochs} for s in stages]
    if options.get("progress") is not None:
        base["train"] = {**base.get("train", {}), "progress": options["progress"]}
    if isinstance(options.get("types"), str):  # popped by config_fields: the comma form
        options["types"] = options["types"].split(",")
    cfg = resolve(PeptideTrainConfig, None, **{**base, **_none_free(**options)})
    metrics = train_structdiff(cfg, log=_echo)
    clf = metrics["classifier"]
    typer.echo(
        f"model: {Path(cfg.out) / 'model.safetensors'}  "
        f"decoder accuracy (real held-out): {metrics['decoder_val_accuracy']:.4f}  "
        + (f"classifier accuracy (real held-out): {clf['student_val_accuracy']}  " if clf else "")
        + f"train time: {metrics['train_seconds']:.0f}s"
    )


def _none_free(**kwargs: object) -> dict:
    return {k: v for k, v in kwargs.items() if v is not None}


@app.command()
def sample(
    config: Path | None = CONFIG,
    model: str | None = typer.Option(None, help="model.safetensors from `peptide train`"),
    type: str | None = typer.Option(None, "--type", help="peptide type, e.g. amp"),
    length: int | None = typer.Option(None, help="residues per peptide (default: drawn)"),
    n: int | None = typer.Option(None, help="number of peptides"),
    guidance: float | None = typer.Option(None, help="classifier-free guidance scale"),
    steps: int | None = typer.Option(None, help="sampling steps"),
    sampler: str | None = typer.Option(None, help="ddim or ddpm"),
    structure: bool | None = typer.Option(None, "--structure/--no-structure"),
    seed: int | None = typer.Option(None),
    temperature: float | None = typer.Option(None, help="starting-noise scale (default 1)"),
    project_below: float | None = typer.Option(
        None, help="fraction of steps re-embedded by the teacher (default 0 = off; e.g. 0.4)"
    ),
    teacher: str | None = typer.Option(
        None, help="teacher for projection / best of m (default: the model's)"
    ),
    guidance_interval: tuple[float, float] | None = typer.Option(
        None, help="guide only between these fractions of the timesteps (default 0 1 = all)"
    ),
    guidance_rescale: float | None = typer.Option(
        None, help="undo guidance's overshoot of the spread, 0-1 (default 0 = off)"
    ),
    candidates: int | None = typer.Option(
        None, help="draw m candidates per peptide, keep the most typical (default 1 = off)"
    ),
    eta: float | None = typer.Option(None, help="DDIM noise: 0 = deterministic (default 0)"),
    batch_size: int | None = typer.Option(None, help="peptides per denoising batch (256)"),
    by_type: str | None = typer.Option(
        None, help='per-type settings as JSON, e.g. {"amp": {"guidance": 5}}'
    ),
    out: str | None = typer.Option(None, help="output FASTA"),
) -> None:
    """Generate peptides of one type as FASTA (``>sN type=T``)."""
    given = {k: v for k, v in locals().items() if k != "config"}  # the options, as typed
    from protdistill.config import read_yaml, resolve  # lazy: start-up time
    from protdistill.io.peptides import Peptide, write_peptide_fasta
    from protdistill.tasks.peptide.config import SampleConfig, command_section

    base = command_section(read_yaml(config), "sample") if config else {}
    given["by_type"] = json_option(by_type, "--by-type")
    overrides = _none_free(**given)
    for own in (base.get("by_type") or {}).values():  # a flag given wins over a type's own
        for knob in set(own or {}) & set(overrides):
            del own[knob]
    cfg = resolve(SampleConfig, None, **{**base, **overrides})
    seqs, seconds = _sample(cfg)
    write_peptide_fasta(cfg.out, [Peptide(s, cfg.type, f"s{i}") for i, s in enumerate(seqs)])
    typer.echo(f"{len(seqs)} peptides -> {cfg.out} ({len(seqs) / seconds:.1f} peptides/s)")


def _sample(cfg):  # noqa: ANN001, ANN202 - SampleConfig -> (sequences, seconds)
    import time  # lazy: start-up time

    from protdistill.progress import Meter, verbosity  # lazy: start-up time
    from protdistill.tasks.peptide.model import StructDiff  # lazy: start-up time
    from protdistill.tasks.peptide.sample import sample_peptides  # lazy: start-up time

    sd = StructDiff.load(cfg.model)
    projector = _sampling_teacher(cfg, sd)
    meter = Meter(cfg.n, f"sampling {cfg.type}", "peptides", show=verbosity() > 0)
    start = time.perf_counter()
    try:
        seqs = sample_peptides(
            sd,
            cfg.type,
            cfg.n,
            length=cfg.length,
            eta=cfg.eta,
            structure=cfg.structure,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            teacher=projector,
            project_below=cfg.project_below,
            guidance_interval=cfg.guidance_interval,
            progress=meter.advance,
            **cfg.settings_for(cfg.type),
        )
    finally:
        meter.close()
    return seqs, time.perf_counter() - start


def _sampling_teacher(cfg, model):  # noqa: ANN001, ANN202 - SampleConfig, StructDiff
    """The teacher that re-embeds samples (None when neither projection nor best-of-m is on)."""
    from protdistill.errors import ConfigError  # lazy: start-up time
    from protdistill.teachers.esm import EsmTeacher  # lazy: start-up time

    if cfg.project_below == 0 and cfg.settings_for(cfg.type)["candidates"] == 1:
        return None
    path = cfg.teacher or model.meta.get("teacher_path")
    if not path:
        raise ConfigError(
            "the model does not name its teacher",
            path=cfg.model,
            fix="pass --teacher DIR (the teacher it was trained with), or turn off projection "
            "(--project-below 0) and best-of-m (--candidates 1)",
        )
    return EsmTeacher(path)


@app.command()
def evaluate(
    samples: Path = typer.Argument(..., help="FASTA from `peptide sample` (>id type=T)"),
    config: Path | None = CONFIG,
    model: str | None = typer.Option(None, help="model.safetensors (finds split and classifier)"),
    reference: str | None = typer.Option(None, help="reference set: train"),
    out: str | None = typer.Option(None, help="output folder (JSON + PNG)"),
    classifier: str | None = typer.Option(None, help="type classifier (default <model dir>)"),
    fd_max: int | None = typer.Option(None, help="peptides per set for the Fréchet distance"),
    max_compare: int | None = typer.Option(None, help="samples aligned against training ones"),
    seed: int | None = typer.Option(None, help="seed of the subsets compared (0)"),
) -> None:
    """Uniqueness, novelty, diversity, distributions, Fréchet distance, conditional fidelity."""
    from protdistill.config import read_yaml, resolve  # lazy: start-up time
    from protdistill.tasks.peptide.config import EvaluateConfig, command_section
    from protdistill.tasks.peptide.pipeline import evaluate_file

    base = command_section(read_yaml(config), "evaluate") if config else {}
    overrides = _none_free(model=model, reference=reference, out=out, classifier=classifier,
                           fd_max=fd_max, max_compare=max_compare, seed=seed)  # fmt: skip
    cfg = resolve(EvaluateConfig, None, **{**base, **overrides})
    result = evaluate_file(samples, cfg, log=_echo)
    for name, m in result["per_type"].items():
        typer.echo(
            f"{name}: n={m['n']:.0f} uniqueness={m['uniqueness']:.3f} novelty={m['novelty']:.3f} "
            f"composition_jsd={m['composition_jsd']:.4f} FD={m.get('frechet_distance')} "
            f"fidelity={m.get('conditional_fidelity')}"
        )
    typer.echo(f"report: {result['json']}")
