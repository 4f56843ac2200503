"""PPI benchmark: teacher vs label-only vs KD students on one split, plus CPU throughput.

    python benchmarks/ppi.py --dataset guo_yeast --teacher ../shared/models/esm2_t6_8M_standin

Writes benchmarks/results/ppi/ppi_<dataset>_<split>.json. Every figure comes from this run: the
variants share the teacher cache, the split (same seed) and the training budget. Throughput is
pairs/s from raw sequences (the teacher includes embedding both proteins), measured one after the
other in fresh subprocesses so that peak memory (max RSS) belongs to one model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
VARIANTS = {
    "student_label_only": {"student": "resnet1d", "alpha": 0.0, "feature_weight": 0.0},
    "student_logit_kd": {"student": "resnet1d", "alpha": 0.5, "feature_weight": 0.0},
    "student_logit_feature_kd": {"student": "resnet1d", "alpha": 0.5, "feature_weight": 1.0},
    "interaction_logit_map_kd": {
        "student": "interaction",
        "alpha": 0.5,
        "map_weight": 1.0,
        "feature_weight": 0.0,
    },
}


def _inputs(dataset: str) -> tuple[Path, Path | None, Path]:
    """(pairs, held-out test pairs or None, fasta): Bernett ships train.tsv + val.tsv."""
    folder = SHARED / "data" / "ppi" / dataset
    if (folder / "train.tsv").exists():
        return folder / "train.tsv", folder / "val.tsv", folder / "sequences.fasta"
    return folder / "pairs.tsv", None, folder / "sequences.fasta"


def protein_subset(paths: list[Path], fasta: Path, fraction: float, seed: int) -> list[Path]:
    """Pairs whose two proteins both fall in a seeded ``fraction`` of the proteins (CPU budget)."""
    import random

    from protdistill.io.fasta import read_fasta
    from protdistill.io.pairs import read_pairs, write_pairs

    seqs = read_fasta(fasta)
    ids = sorted(seqs)
    keep = set(random.Random(seed).sample(ids, round(fraction * len(ids))))
    out = []
    for path in paths:
        rows = [
            (p.a, p.b, int(p.label))
            for p in read_pairs(path, proteins=seqs)[0]
            if p.a in keep and p.b in keep
        ]
        dest = ROOT / "runs" / "bench" / f"{path.parent.name}_{path.stem}_proteins{fraction:g}.tsv"
        write_pairs(dest, rows, ("protein_a", "protein_b", "label"))
        print(f"protein subset: {len(rows)} pairs of {path.name} -> {dest}", flush=True)
        out.append(dest)
    return out


def run_variants(args: argparse.Namespace) -> dict:
    from protdistill.config import resolve
    from protdistill.tasks.ppi.common.config import PpiConfig
    from protdistill.tasks.ppi.run.pipeline import run

    pairs, test_pairs, fasta = _inputs(args.dataset)
    if args.protein_fraction < 1:
        files = protein_subset([pairs, *([test_pairs] if test_pairs else [])], fasta,
                               args.protein_fraction, seed=0)  # fmt: skip
        pairs, test_pairs = files[0], (files[1] if test_pairs else None)
    if args.embedded_only:
        pairs = embedded_subset(pairs, fasta, args.teacher)
    results, first_run = {}, None
    for name in args.variants:
        per_seed = []
        for seed in args.student_seeds:
            out = ROOT / "runs" / "bench" / f"{args.dataset}_{_split_name(args)}" / name
            if len(args.student_seeds) > 1:
                out = out / f"seed{seed}"
            cfg = resolve(
                PpiConfig,
                pairs=str(pairs),
                test_pairs=None if test_pairs is None else str(test_pairs),
                fasta=str(fasta),
                teacher=args.teacher,
                split=args.split,
                epochs=args.epochs,
                max_pairs=args.max_pairs,
                folds=args.folds,
                cache=str(ROOT / "runs" / "teacher_cache"),
                progress=False,
                map_pairs=args.map_pairs,
                map_residues=args.map_residues,
                max_residues=(
                    args.interaction_max_residues
                    if VARIANTS[name]["student"] == "interaction"
                    else args.max_residues
                ),
                batch_size=args.batch_size,
                student_seed=seed,
                student_config=json.loads(args.student_config).get(VARIANTS[name]["student"], {}),
                **VARIANTS[name],
            )
            if first_run is not None:  # one split and teacher head for every run: train it once
                _share_teacher(first_run, out)
            first_run = first_run or out
            start = time.perf_counter()
            metrics = run(
                cfg, out, log=lambda m, tag=f"{name} s{seed}": print(f"[{tag}] {m}", flush=True)
            )
            per_seed.append(
                {
                    "metrics": metrics,
                    "wall_s": round(time.perf_counter() - start, 1),
                    "run_dir": str(out.relative_to(ROOT)),
                    "student_seed": seed,
                }
            )
        results[name] = per_seed[0] if len(per_seed) == 1 else _over_seeds(per_seed)
    return results


def _over_seeds(per_seed: list[dict]) -> dict:
    """Mean / sd of the student's metrics over student seeds (the teacher is the same run)."""
    import numpy as np

    students = [r["metrics"]["student"] for r in per_seed]
    summary = {
        k: {
            "mean": float(np.mean([s[k] for s in students])),
            "sd": float(np.std([s[k] for s in students])),
            "values": [s[k] for s in students],
        }
        for k, v in students[0].items()
        if isinstance(v, float)
    }
    summary.update({k: v for k, v in students[0].items() if isinstance(v, (int, str))})
    if "map_agreement_val" in students[0]:
        summary["map_agreement_val"] = [s["map_agreement_val"] for s in students]
    return {
        "metrics": {"student": summary, "teacher": per_seed[0]["metrics"]["teacher"]},
        "wall_s": sum(r["wall_s"] for r in per_seed),
        "run_dir": per_seed[0]["run_dir"],
        "per_seed": per_seed,
    }


def _share_teacher(src: Path, dest: Path) -> None:
    """Copy the split and teacher head/logits of an earlier variant (folds included)."""
    import shutil

    for path in [*src.rglob("config.yaml"), *src.rglob("split.json"), *src.rglob("teacher/*")]:
        target = dest / path.relative_to(src)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _split_name(args: argparse.Namespace) -> str:
    if _inputs(args.dataset)[1] is not None:
        return "heldout"
    return f"{args.split}_f{args.folds}"


def embedded_subset(pairs: Path, fasta: Path, teacher: str) -> Path:
    """Pairs whose two proteins are already in the teacher cache (a CPU-budget subset)."""
    from protdistill.io.fasta import read_fasta
    from protdistill.io.pairs import read_pairs, write_pairs
    from protdistill.teachers.cache import TeacherCache, sequence_key

    seqs = read_fasta(fasta)
    cached: set[str] = set()
    for root in (ROOT / "runs" / "teacher_cache").glob("embed-*"):
        manifest = json.loads((root / "manifest.json").read_text())
        cache = TeacherCache(root, manifest["teacher_id"], manifest["settings"], readonly=True)
        cached |= set(cache.keys("pooled"))
    rows = [
        (p.a, p.b, int(p.label))
        for p in read_pairs(pairs, proteins=seqs)[0]
        if sequence_key(seqs[p.a]) in cached and sequence_key(seqs[p.b]) in cached
    ]
    out = ROOT / "runs" / "bench" / f"{pairs.parent.name}_embedded_pairs.tsv"
    write_pairs(out, rows, ("protein_a", "protein_b", "label"))
    print(f"embedded subset: {len(rows)} pairs -> {out}", flush=True)
    return out


def throughput_one(kind: str, run_dir: Path, teacher: str, n_pairs: int) -> dict:
    """Pairs/s of one model on the first ``n_pairs`` test pairs, from raw sequences."""
    import torch

    from protdistill.students import count_parameters
    from protdistill.tasks.ppi.common.data import load_split
    from protdistill.tasks.ppi.run.evaluate import predict_pairs
    from protdistill.tasks.ppi.run.student import load_student
    from protdistill.tasks.ppi.run.teacher import load_teacher_head
    from protdistill.tasks.ppi.run.teacher_head import head_logits
    from protdistill.teachers.esm import EsmTeacher

    torch.set_num_threads(2)
    split = load_split(run_dir / "split.json")
    pairs = (split["test"] + split["val"])[:n_pairs]
    seqs = _sequences(run_dir)
    start = time.perf_counter()
    if kind == "teacher":
        model = EsmTeacher(teacher)
        head = load_teacher_head(run_dir)
        start = time.perf_counter()
        ids = sorted({p for pair in pairs for p in (pair.a, pair.b)})
        emb = {i: e.pooled for i, e in zip(ids, model.embed([seqs[i] for i in ids]), strict=True)}
        head_logits(head, emb, pairs)
        params = count_parameters(model.model) + count_parameters(head)
    else:
        model, meta = load_student(run_dir / "student.safetensors")
        start = time.perf_counter()
        predict_pairs(model, pairs, seqs, max_residues=int(meta["ppi"]["max_residues"]))
        params = count_parameters(model)
    seconds = time.perf_counter() - start
    rss_mb = _peak_rss_mb()
    return {
        "pairs": len(pairs),
        "seconds": round(seconds, 3),
        "pairs_per_s": round(len(pairs) / seconds, 2),
        "peak_rss_mb": round(rss_mb, 1),
        "parameters": params,
    }


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Unlike ``ru_maxrss`` it is not inherited from the parent
    across fork + exec, so it belongs to the one model timed here."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sequences(run_dir: Path) -> dict[str, str]:
    import yaml

    from protdistill.io.fasta import read_fasta

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    return read_fasta(cfg["fasta"])


def throughput(args: argparse.Namespace, run_dir: Path) -> dict:
    out = {}
    for kind in ("teacher", "student"):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--throughput-one",
                kind,
                "--run-dir",
                str(run_dir),
                "--teacher",
                args.teacher,
                "--n-pairs",
                str(args.n_pairs),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["speedup_student_vs_teacher"] = round(
        out["student"]["pairs_per_s"] / out["teacher"]["pairs_per_s"], 1
    )
    out["size_ratio_teacher_vs_student"] = round(
        out["teacher"]["parameters"] / out["student"]["parameters"], 1
    )
    return out


def _results_path(args: argparse.Namespace) -> Path:
    return ROOT / "benchmarks" / "results" / "ppi" / f"ppi_{args.dataset}_{_split_name(args)}.json"


def remeasure(args: argparse.Namespace) -> None:
    """Replace the throughput section of an existing report (same runs, new measurement)."""
    from protdistill.io.atomic import write_json

    path = _results_path(args)
    report = json.loads(path.read_text())
    run_dir = ROOT / report["variants"]["student_logit_kd"]["run_dir"]
    load_start = os.getloadavg()[0]
    report["throughput"] = throughput(args, run_dir)
    report["throughput"]["command"] = " ".join(sys.argv)
    report["throughput"]["date"] = date.today().isoformat()
    report["throughput"]["load_average"] = {"start": load_start, "end": os.getloadavg()[0]}
    write_json(path, report)
    print(json.dumps(report["throughput"], indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="guo_yeast")
    p.add_argument("--teacher", default=str(SHARED / "models" / "esm2_t6_8M_standin"))
    p.add_argument("--split", default="protein", choices=["protein", "random"])
    p.add_argument("--folds", type=int, default=1)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--max-pairs", type=int, default=None)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--n-pairs", type=int, default=200)
    p.add_argument(
        "--embedded-only",
        action="store_true",
        help="only pairs whose proteins are already in the teacher cache",
    )
    p.add_argument(
        "--protein-fraction",
        type=float,
        default=1.0,
        help="keep pairs among a seeded fraction of the proteins (CPU-budget subset)",
    )
    p.add_argument("--map-pairs", type=int, default=None)
    p.add_argument("--map-residues", type=int, default=128)
    p.add_argument("--max-residues", type=int, default=512)
    p.add_argument(
        "--interaction-max-residues",
        type=int,
        default=256,
        help="input crop of the interaction student (its L x L map costs quadratic time)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--student-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="one student per seed on the same split and teacher head; the table shows mean ± sd",
    )
    p.add_argument(
        "--student-config",
        default="{}",
        help='JSON per student kind, e.g. {"resnet1d": {"channels": [32, 64]}}',
    )
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument(
        "--throughput-only",
        action="store_true",
        help="re-measure throughput for the finished runs of this dataset/split",
    )
    p.add_argument("--throughput-one", choices=["teacher", "student"])
    p.add_argument("--run-dir", type=Path)
    args = p.parse_args()
    if args.throughput_one:
        print(
            json.dumps(
                throughput_one(args.throughput_one, args.run_dir, args.teacher, args.n_pairs)
            )
        )
        return
    if not SHARED.exists():
        sys.exit(f"skipped: {SHARED} (data and the stand-in teacher) is absent")
    if args.throughput_only:
        remeasure(args)
        return
    if args.folds > 1 and len(args.student_seeds) > 1:
        sys.exit("--folds > 1 and several --student-seeds: choose one of the two")
    load_start = os.getloadavg()[0]
    report = {
        "command": " ".join(sys.argv),
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{__import__('torch').get_num_threads()}",
        "teacher": f"{args.teacher} (stand-in ESM-2 8M)",
        "dataset": args.dataset,
        "split": args.split,
        "epochs": args.epochs,
        "max_pairs": args.max_pairs,
        "settings": {k: v for k, v in vars(args).items() if k not in ("throughput_one", "run_dir")},
        "variants": run_variants(args),
    }
    report["load_average"] = {"start": load_start, "end": os.getloadavg()[0]}
    if not args.skip_throughput and args.folds == 1:
        run_dir = (
            ROOT / report["variants"]["student_logit_kd"]["run_dir"]
            if "student_logit_kd" in report["variants"]
            else None
        )
        if run_dir is not None:
            report["throughput"] = throughput(args, run_dir)
    from protdistill.io.atomic import write_json

    out = _results_path(args)
    write_json(out, report)
    print(json.dumps(report, indent=1)[:4000])


if __name__ == "__main__":
    main()
