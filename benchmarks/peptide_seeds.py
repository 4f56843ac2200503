"""StructDiff seed spread: the configured sampler settings against both baselines over several
sampling seeds, on the full held-out set (as benchmarks/peptide.py scores it).

    .venv/bin/python benchmarks/peptide_seeds.py --config configs/peptide.yaml \
        --run runs/peptide/structure --seeds 102 1 2 3 4

``--half tune`` scores Fréchet distance against the tuning half of each type's held-out
peptides only (peptide_sweep.py's halves): that is where choices between models or settings are
made; ``--half report`` the other half; ``--half tune report`` draws the peptides once and
scores them against both (``<results>_tune``, ``<results>_report``), half the sampling time.

One seed of 200 peptides moves Fréchet distance by ~0.2-0.3 and mean predicted activity by
~0.015, as much as some gaps to a baseline; this gives each method's mean ± sd and, per seed,
whether StructDiff beats both baselines (drawn with the same seed) on FD, fidelity and activity.
Writes benchmarks/results/peptide/peptide_seeds.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import date
from pathlib import Path

import torch

METRICS = (("frechet_distance", -1), ("conditional_fidelity", 1), ("activity_mean", 1))
BASELINES = ("baseline_shuffled", "baseline_profile")


def draw(kind: str, model, split, settings: dict, n: int, seed: int, teacher) -> dict:
    from protdistill.tasks.peptide.baselines import profile_baseline, shuffled_baseline
    from protdistill.tasks.peptide.sample import sample_peptides

    train = split.sequences("train", kind)
    return {
        "structdiff": sample_peptides(model, kind, n, seed=seed, teacher=teacher, **settings),
        "baseline_shuffled": shuffled_baseline(train, n, seed),
        "baseline_profile": profile_baseline(train, n, seed),
    }


def held_out_half(split, kind: str, half: str):
    """``split`` whose held-out peptides of ``kind`` are one of peptide_sweep.py's halves."""
    from peptide_sweep import halves

    from protdistill.tasks.peptide.data import PeptideSplit

    if half == "all":
        return split
    keep = set(halves(split.sequences("val", kind))[half == "report"])
    val = [p for p in split.val if p.type != kind or p.sequence in keep]
    return PeptideSplit(split.train, val, split.types)


def seed_rows(kind: str, model, splits: dict, ctx: tuple, settings: dict, args) -> dict:
    """Per held-out half, per seed: each method's FD, fidelity and activity, and StructDiff's
    wins. Peptides are drawn once per seed and scored against every half in ``splits``."""
    from protdistill.tasks.peptide.evaluate import evaluate_samples

    embed, classifier, activity, teacher = ctx
    rows: dict[str, list[dict]] = {half: [] for half in splits}
    for seed in args.seeds:
        drawn = draw(kind, model, next(iter(splits.values())), settings, args.n, seed, teacher)
        active = {m: float(activity.probability(seqs).mean()) for m, seqs in drawn.items()}
        for half, split in splits.items():
            row: dict = {"seed": seed}
            for method, seqs in drawn.items():
                ev = evaluate_samples({kind: seqs}, split, embed=embed, classifier=classifier)
                scores = {k: ev["per_type"][kind][k] for k, _ in METRICS[:2]}
                row[method] = scores | {"activity_mean": active[method]}
            row["beats_both"] = {
                k: all(sign * (row["structdiff"][k] - row[b][k]) > 0 for b in BASELINES)
                for k, sign in METRICS
            }
            rows[half].append(row)
            print(f"[{kind} seed {seed} {half}] {row}", file=sys.stderr, flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    out = {}
    for method in ("structdiff", *BASELINES):
        out[method] = {}
        for k, _ in METRICS:
            values = [r[method][k] for r in rows]
            out[method][k] = {"mean": statistics.mean(values), "sd": statistics.stdev(values)}
    out["seeds_beating_both"] = {k: sum(r["beats_both"][k] for r in rows) for k, _ in METRICS}
    return out


def markdown(res: dict) -> str:
    lines = [f"# StructDiff seed spread ({res['date']})", "", f"Command: `{res['command']}`", "",
             "| type | settings | method | FD | fidelity | activity |",
             "|---" * 6 + "|"]  # fmt: skip
    for kind, r in res["types"].items():
        named = ", ".join(f"{k} {v}" for k, v in r["settings"].items())
        named += f"; FD against {r.get('half', 'all')} held-out ({r.get('n_held_out', '?')})"
        for method in ("structdiff", *BASELINES):
            cells = [f"{s['mean']:.3f} ± {s['sd']:.3f}" for s in r["summary"][method].values()]
            lines.append(f"| {kind} | {named} | {method} | " + " | ".join(cells) + " |")
        wins = r["summary"]["seeds_beating_both"]
        lines.append(f"| {kind} | | seeds beating both | " + " | ".join(map(str, wins.values()))
                     + f" (of {len(r['seeds'])}) |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/peptide.yaml", help="its sample: settings")
    ap.add_argument("--run", required=True, help="trained StructDiff run folder")
    ap.add_argument("--types", nargs="+", default=None, help="default: every type of the run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[102, 1, 2, 3, 4])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument(
        "--half",
        nargs="+",
        choices=["all", "tune", "report"],
        default=["all"],
        help="held-out peptides FD is scored against (halves of peptide_sweep.py); several: "
        "the same peptides scored against each, written to <results>_<half>",
    )
    ap.add_argument(
        "--classifier",
        default=None,
        help="type classifier scoring fidelity; default: the run's (give a multi-type run's "
        "for a one-type model)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", default="benchmarks/results/peptide/peptide_seeds")
    args = ap.parse_args()
    if len(args.seeds) < 2:
        sys.exit("--seeds needs at least two seeds for a spread, e.g. --seeds 102 1 2")
    torch.set_num_threads(args.threads)
    from protdistill.config import read_yaml, resolve
    from protdistill.io.atomic import write_json, write_text
    from protdistill.tasks.peptide.activity import fit_activity_classifier
    from protdistill.tasks.peptide.classifier import load_classifier
    from protdistill.tasks.peptide.config import SampleConfig, command_section
    from protdistill.tasks.peptide.evaluate import pooled_embedder
    from protdistill.tasks.peptide.model import StructDiff
    from protdistill.tasks.peptide.train import read_split
    from protdistill.teachers.esm import EsmTeacher

    sample = resolve(SampleConfig, None, **command_section(read_yaml(args.config), "sample"))
    run = Path(args.run)
    model = StructDiff.load(run / "model.safetensors")
    split = read_split(run / "split.json")
    kinds = args.types or split.types
    classifier, _ = load_classifier(args.classifier or run / "classifier.safetensors")
    teacher = EsmTeacher(model.meta["teacher_path"])
    embed = pooled_embedder(teacher)
    data = Path(model.meta["config"]["data"]).parent
    stamp = {"date": str(date.today()), "command": "python " + " ".join(sys.argv)}
    outs = {half: stamp | {"types": {}} for half in args.half}
    for kind in kinds:
        activity = fit_activity_classifier(data, kind, exclude=split.sequences("train"))
        settings = sample.settings_for(kind) | {"structure": sample.structure}
        ctx = (embed, classifier, activity, teacher)
        held = {half: held_out_half(split, kind, half) for half in args.half}
        for half, rows in seed_rows(kind, model, held, ctx, settings, args).items():
            n_held = len(held[half].sequences("val", kind))
            outs[half]["types"][kind] = {"settings": settings, "half": half, "n_held_out": n_held,
                                         "seeds": rows, "summary": summary(rows)}  # fmt: skip
    for half, out in outs.items():
        stem = args.results if len(outs) == 1 else f"{args.results}_{half}"
        write_json(Path(stem).with_suffix(".json"), out)
        write_text(Path(stem).with_suffix(".md"), markdown(out))
        print(markdown(out))


if __name__ == "__main__":
    main()
