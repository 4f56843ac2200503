"""StructDiff benchmark: per type, StructDiff with/without structure and guidance vs baselines.

Usage (from the repo root, ../shared present)::

    .venv/bin/python benchmarks/peptide.py --config configs/peptide_bench.yaml --n 100 --steps 25

Trains (or resumes; a finished run with ``model.safetensors`` is reused) two models --
contact-map structure features on / off -- samples ``n`` peptides per type with guidance 1.0
(plain conditional), ``--guidance`` and optionally a tuned scale per type, draws the two
baselines (shuffled training peptides, position-specific composition), evaluates everything
against the same split and writes ``benchmarks/results/peptide/peptide.{json,md}``. Sampling
settings not given as flags (steps, sampler, per-type guidance table, temperature, guidance rescale)
are the config's ``sample:`` section, whose ``by_type`` settings apply to the ``_tuned`` rows,
e.g. the shipped default::

    .venv/bin/python benchmarks/peptide.py --config configs/peptide.yaml --out runs/peptide \
        --models structure --n 200 --results benchmarks/results/peptide/peptide_default
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/peptide_bench")
    ap.add_argument("--config", default="configs/peptide_bench.yaml")
    ap.add_argument("--epochs", type=int, default=None, help="override every stage's epochs")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--steps", type=int, default=None, help="default: the config's sample.steps")
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--type-guidance", type=type_scales, default=None,
                    help="a scale per type, e.g. amp=5,afp=5,avp=2 (adds _tuned rows); default: "
                    "the config's sample.guidance when it is a table")  # fmt: skip
    ap.add_argument("--sampler", default=None, choices=["ddim", "ddpm"],
                    help="default: the config's sample.sampler")  # fmt: skip
    ap.add_argument("--models", nargs="+", default=["structure", "no_structure"],
                    choices=["structure", "no_structure"], help="structure on / off")  # fmt: skip
    ap.add_argument("--temperature", type=float, default=None, help="starting-noise scale")
    ap.add_argument("--project-below", type=float, default=None, help="e.g. 0.4; 0: none")
    ap.add_argument("--guidance-rescale", type=float, default=None, help="0-1; 0: none")
    ap.add_argument("--cache", default="runs/teacher_cache/peptide")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", default="benchmarks/results/peptide/peptide")
    ap.add_argument("--activity-data", default=None, help="<type>_*.csv folder (default: data's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from protdistill.config import read_yaml, resolve
    from protdistill.tasks.peptide.baselines import profile_baseline, shuffled_baseline
    from protdistill.tasks.peptide.classifier import load_classifier
    from protdistill.tasks.peptide.config import PeptideTrainConfig, SampleConfig
    from protdistill.tasks.peptide.evaluate import evaluate_samples, pooled_embedder
    from protdistill.tasks.peptide.train import read_split, train_structdiff
    from protdistill.teachers.esm import EsmTeacher

    out = Path(args.out)
    base = read_yaml(args.config) if Path(args.config).is_file() else {}
    fill_sampling(args, resolve(SampleConfig, None, **base.get("sample", {})))
    if args.epochs is not None:
        base["stages"] = [{**s, "epochs": args.epochs} for s in base.get("stages") or [{}]]
    base["train"] = {**base.get("train", {}), "progress": False}
    runs: dict[str, dict] = {}
    for name in args.models:
        structure = name == "structure"
        cfg = resolve(
            PeptideTrainConfig,
            None,
            **{
                **base,
                "structure": structure,
                "cache": args.cache,
                "out": str(out / name),
                "progress": False,
            },
        )
        log_file = out / f"{name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)

        def log(msg: str, f: Path = log_file) -> None:
            with f.open("a") as fh:
                fh.write(msg + "\n")

        metrics_path = out / name / "train_metrics.json"
        if metrics_path.is_file() and (out / name / "model.safetensors").is_file():
            metrics = json.loads(metrics_path.read_text())
        else:
            metrics = train_structdiff(cfg, log=log)
        runs[name] = {"cfg": cfg, "train": metrics}
        print(
            f"[{name}] trained: {metrics['train_seconds']:.0f}s, "
            f"decoder acc {metrics['decoder_val_accuracy']:.4f}",
            flush=True,
        )

    first = args.models[0]  # split, teacher, data and type classifier are the same for both
    split = read_split(out / first / "split.json")
    types = split.types
    teacher = EsmTeacher(runs[first]["cfg"].teacher)
    methods, throughput = sample_methods(runs, out, types, teacher, args)
    methods["baseline_shuffled"] = {
        t: shuffled_baseline(split.sequences("train", t), args.n, seed=7) for t in types
    }
    methods["baseline_profile"] = {
        t: profile_baseline(split.sequences("train", t), args.n, seed=7) for t in types
    }
    classifier, clf_meta = load_classifier(out / first / "classifier.safetensors")
    embed = pooled_embedder(teacher)
    results = {}
    for key, by_type in methods.items():
        results[key] = evaluate_samples(by_type, split, embed=embed, classifier=classifier)
        print(f"[{key}] evaluated", flush=True)
    data = Path(runs[first]["cfg"].data)
    activity = add_activity(methods, split, results, Path(args.activity_data or data.parent))
    tuned = args.type_guidance or args.by_type
    best = f"structdiff_{first}_" + ("tuned" if tuned else f"g{args.guidance:g}")
    figures = draw_figures(methods, split, best, Path(args.results))
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        "threads (2 shared CPU cores), no GPU",
        "teacher": "stand-in teacher (esm2_t6_8M_standin, fine-tuned backbone, no LM head)",
        "args": vars(args),
        "command": shlex.join([".venv/bin/python", "benchmarks/peptide.py", *sys.argv[1:]]),
        "train": {k: v["train"] for k, v in runs.items()},
        "sampling_peptides_per_s": throughput,
        "classifier": clf_meta.get("metrics"),
        "activity_classifiers": activity,
        "figures": figures,
        "results": results,
    }
    res = Path(args.results)
    from protdistill.io.atomic import write_json, write_text

    write_json(res.with_suffix(".json"), report)
    write_text(res.with_suffix(".md"), to_markdown(report))
    print(f"wrote {res.with_suffix('.json')} and {res.with_suffix('.md')}")


def sample_methods(runs: dict, out: Path, types: list[str], teacher, args) -> tuple[dict, dict]:
    """Peptides per method and type: each model at guidance 1, ``--guidance`` and, with
    ``--type-guidance`` or the config's ``sample.by_type``, each type's own settings
    (``_tuned``); and each method's peptides/s."""
    from protdistill.tasks.peptide.model import StructDiff

    scales = {f"g{g:g}": dict.fromkeys(types, g) for g in (1.0, args.guidance)}
    if args.type_guidance and (missing := sorted(set(types) - set(args.type_guidance))):
        sys.exit(f"--type-guidance names no scale for {missing}; add e.g. {missing[0]}=2")
    if args.type_guidance or args.by_type:
        scales["tuned"] = {t: (args.type_guidance or {}).get(t, args.guidance) for t in types}
    methods: dict[str, dict[str, list[str]]] = {}
    throughput: dict[str, float] = {}
    for name in runs:
        model = StructDiff.load(out / name / "model.safetensors")
        for label, per_type in scales.items():
            key = f"structdiff_{name}_{label}"
            start = time.perf_counter()
            structure, own = name == "structure", label == "tuned"
            methods[key] = {
                t: sample_type(
                    model, t, i, structure, teacher, args, knobs(args, t, per_type[t], own)
                )
                for i, t in enumerate(types)
            }
            throughput[key] = args.n * len(types) / (time.perf_counter() - start)
            print(f"[{key}] {throughput[key]:.1f} peptides/s", flush=True)
    return methods, throughput


def knobs(args: argparse.Namespace, kind: str, guidance: float, own: bool) -> dict:
    """The sampler settings of one row: the shared ones, with ``own`` the type's own on top
    (``SampleConfig.settings_for``, as `peptide sample` resolves them)."""
    from protdistill.tasks.peptide.config import SampleConfig

    shared = SampleConfig(guidance=guidance, steps=args.steps, sampler=args.sampler,
                          temperature=args.temperature, guidance_rescale=args.guidance_rescale,
                          by_type=args.by_type if own else {})  # fmt: skip
    return shared.settings_for(kind)


def sample_type(model, kind, i, structure, teacher, args, settings: dict) -> list[str]:
    from protdistill.tasks.peptide.sample import sample_peptides

    return sample_peptides(model, kind, args.n, seed=100 + i, structure=structure,
                           teacher=teacher, project_below=args.project_below,
                           **settings)  # fmt: skip


def fill_sampling(args: argparse.Namespace, sample) -> None:
    """Sampling settings not given as flags come from the config's ``sample:`` section (what
    `peptide sample --config` uses), so the benchmark measures the shipped default; the report
    records the values used."""
    for name in ("steps", "sampler", "temperature", "project_below", "guidance_rescale"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(sample, name))
    if args.type_guidance is None and isinstance(sample.guidance, dict):
        args.type_guidance = dict(sample.guidance)
    args.by_type = {t: own.model_dump(exclude_none=True) for t, own in sample.by_type.items()}


def type_scales(text: str) -> dict[str, float]:
    """``amp=5,afp=5,avp=2`` -> ``{"amp": 5.0, ...}``."""
    pairs = (item.split("=") for item in text.split(","))
    return {k.strip(): float(v) for k, v in pairs}


def add_activity(methods: dict, split, results: dict, folder: Path) -> dict:
    """Independent activity classifier per type (held-out labelled peptides only); adds
    ``activity_mean`` / ``active_fraction`` to every method's per-type results and a
    ``real_held_out`` row (the generator's validation peptides, scored out of fold)."""
    from protdistill.tasks.peptide.activity import activity_report, fit_activity_classifier

    summaries = {}
    results["real_held_out"] = {"per_type": {}}
    for t in split.types:
        clf = fit_activity_classifier(folder, t, exclude=split.sequences("train"))
        summaries[t] = clf.summary()
        groups = {k: v[t] for k, v in methods.items() if t in v}
        groups["real_held_out"] = split.sequences("val", t)
        for name, act in activity_report(clf, groups).items():
            row = results[name]["per_type"].setdefault(t, {})
            row["activity_mean"], row["active_fraction"] = act["mean"], act["active_fraction"]
        print(f"[activity {t}] CV AUROC {clf.cv_auroc:.3f}", flush=True)
    return summaries


def draw_figures(methods: dict, split, best: str, results: Path) -> dict:
    """Per type: property distributions of generated (``best``) vs real vs baselines, drawn to
    ``<results>_<type>.png`` (next to the run's JSON, so another run's figures stay)."""
    from protdistill.tasks.peptide.evaluate import plot_distributions

    out = {}
    for t in split.types:
        groups = {
            f"generated ({best})": methods[best][t],
            "real (held-out)": split.sequences("val", t),
            "shuffled": methods["baseline_shuffled"][t],
            "profile": methods["baseline_profile"][t],
        }
        out[t] = str(plot_distributions(groups, results.parent / f"{results.name}_{t}.png"))
    return out


def _fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def to_markdown(report: dict) -> str:
    cols = [
        ("uniqueness", 3),
        ("novelty", 3),
        ("max_identity_mean", 3),
        ("diversity_mean_identity", 3),
        ("composition_jsd", 4),
        ("length_jsd", 4),
        ("charge_wasserstein", 2),
        ("hydrophobicity_wasserstein", 3),
        ("hydrophobic_moment_wasserstein", 3),
        ("isoelectric_point_wasserstein", 2),
        ("frechet_distance", 2),
        ("conditional_fidelity", 3),
        ("activity_mean", 3),
        ("active_fraction", 3),
    ]
    a = report["args"]
    lines = [
        "# StructDiff peptide generation benchmark",
        "",
        f"Date {report['date']}; {report['machine']}; teacher: {report['teacher']}.",
        f"Command: `{report['command']}` ({a.get('sampler', 'ddim').upper()}, {a['steps']} steps, "
        "starting-noise temperature "
        f"{a.get('temperature', 1.0):g}, teacher projection below "
        f"t = {a.get('project_below', 0.0):g} T, guidance rescale "
        f"{a.get('guidance_rescale') or 0.0:g}; {a['n']} peptides per type and method)."
        + (
            f" Types' own settings (`_tuned` rows): {json.dumps(a['by_type'])}."
            if a.get("by_type")
            else ""
        ),
        "",
        "Real held-out peptides, type classifier (CNN student distilled from a probe on the "
        f"stand-in teacher's embeddings): {json.dumps(report['classifier'])}",
        "",
        "Independent activity classifiers (gradient boosting on sequence statistics, fitted on "
        "labelled peptides the generator never saw; 5-fold CV AUROC): "
        + ", ".join(
            f"{t} {c['cv_auroc']:.3f} ({c['n_positive']} active / {c['n_negative']} inactive)"
            for t, c in report.get("activity_classifiers", {}).items()
        ),
        "",
    ]
    for name, tr in report["train"].items():
        lines.append(
            f"- model `{name}`: training {tr['train_seconds']:.0f}s, decoder accuracy on real "
            f"held-out embeddings {tr['decoder_val_accuracy']:.4f}"
        )
    lines.append("")
    lines.append(
        "Sampling throughput (peptides/s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in report["sampling_peptides_per_s"].items())
    )
    lines.append("")
    types = sorted({t for r in report["results"].values() for t in r["per_type"]})
    for t in types:
        lines += [
            f"## {t}",
            "",
            "| method | " + " | ".join(c for c, _ in cols) + " |",
            "|---" * (len(cols) + 1) + "|",
        ]
        for method, r in report["results"].items():
            m = r["per_type"].get(t, {})
            lines.append(f"| {method} | " + " | ".join(_fmt(m.get(c), d) for c, d in cols) + " |")
        lines.append("")
    lines.append(
        "Targets: uniqueness ≥ 0.95, novelty ≥ 0.9, composition JSD ≤ 0.05, Fréchet "
        "distance, conditional fidelity and predicted activity better than both baselines."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
