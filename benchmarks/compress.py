"""Compression benchmark: prune / quantize / prune+quantize / low rank on a trained PPI student
(Guo yeast, protein-disjoint split) and on an ESM-like student; before/after figures.

    python benchmarks/compress.py --ppi-run runs/bench/guo_yeast_protein/student_logit_kd \
        --esm runs/esm_student/student.pt

Without ``--ppi-run`` a label-only ResNet-1D student is trained first (``--train-epochs``) with the
PPI pipeline's own functions (same split rules, seed 0) under ``runs/compress_bench/ppi_student``.
Every figure comes from this run: each ``compress`` call times the original and its compressed
stages interleaved in one process (median of repeats), so speed-ups are ratios on the same,
shared CPU. Writes benchmarks/results/compress/compress.json and compress.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PPI_RECIPES = {
    "prune": {"method": "prune"},
    "quantize": {"method": "quantize"},
    "prune+quantize": {"method": "prune,quantize"},
    "lowrank": {"method": "lowrank"},
}
ESM_RECIPES = {
    "quantize": {"method": "quantize"},
    "prune+quantize": {"method": "prune,quantize"},
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_student(run_dir: Path, epochs: int, max_residues: int) -> Path:
    """A label-only ResNet-1D student on Guo yeast via the PPI pipeline stages."""
    from protdistill.config import resolve
    from protdistill.tasks.ppi.common.config import PpiConfig
    from protdistill.tasks.ppi.run.pipeline import train_student as train
    from protdistill.tasks.ppi.run.prepare import prepare

    folder = SHARED / "data" / "ppi" / "guo_yeast"
    cfg = resolve(
        PpiConfig,
        pairs=str(folder / "pairs.tsv"),
        fasta=str(folder / "sequences.fasta"),
        student="resnet1d",
        alpha=0.0,
        epochs=epochs,
        max_residues=max_residues,
        progress=False,
    )
    data, split = prepare(cfg, run_dir, log=log)
    return train(cfg, run_dir, data, split, None, None, log=log)


def compress_all(model: str, recipes: dict, out_root: Path, common: dict) -> dict:
    from protdistill.api.compress import compress_model as compress
    from protdistill.compress.config import CompressConfig
    from protdistill.config import resolve

    reports = {}
    for name, recipe in recipes.items():
        log(f"== {model}: {name}")
        cfg = resolve(CompressConfig, model=model, out=str(out_root / name), **common, **recipe)
        start = time.perf_counter()
        report = compress(cfg, log=log)
        report["wall_s"] = time.perf_counter() - start
        reports[name] = report
    return reports


def markdown(results: dict) -> str:
    from protdistill.compress.report import format_table

    lines = [
        f"# Compression benchmark ({results['date']}, {results['machine']})",
        "",
        f"Command: `{results['command']}`",
        "",
    ]
    for family, reports in results["families"].items():
        for name, report in reports.items():
            rows = format_table(report["stages"], report["metric"], report["unit"])
            lines += [
                f"## {family}: {name} (`{report['model']}`)",
                "",
                f"batch {report['bench_batch']}, {report['threads']} threads, "
                f"engine {report['quantized_engine']}, wall {report['wall_s']:.0f} s",
                "",
                "| " + " | ".join(rows[0]) + " |",
                "|" + "---|" * len(rows[0]),
            ]
            lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ppi-run", help="trained PPI run dir (default: train one)")
    parser.add_argument(
        "--ppi-recipes", default=",".join(PPI_RECIPES), help="comma-separated recipe names"
    )
    parser.add_argument("--no-esm", action="store_true", help="skip the ESM-like student")
    parser.add_argument("--tag", default="", help="results file suffix: compress_<tag>.json")
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--train-max-residues", type=int, default=256)
    parser.add_argument("--esm", help="ESM-like student (.pt from distill, or HF dir)")
    parser.add_argument("--esm-fasta", default=str(SHARED / "data/ppi/guo_yeast/sequences.fasta"))
    parser.add_argument("--esm-finetune-steps", type=int, default=40)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "runs" / "compress_bench"))
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "compress"))
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"skipped: {SHARED} (data and stand-in teacher) is not present")
    out = Path(args.out)
    ppi_run = Path(args.ppi_run) if args.ppi_run else out / "ppi_student"
    if not (ppi_run / "student.safetensors").exists():
        train_student(ppi_run, args.train_epochs, args.train_max_residues)
    common = {
        "ratio": args.ratio,
        "finetune_steps": args.finetune_steps,
        "bench_repeats": args.repeats,
        "threads": args.threads,
    }
    recipes = {k: PPI_RECIPES[k] for k in args.ppi_recipes.split(",")}
    families = {
        f"ppi:{ppi_run.name}": compress_all(str(ppi_run), recipes, out / ppi_run.name, common)
    }
    if args.esm and not args.no_esm:
        esm_common = {
            **common,
            "fasta": args.esm_fasta,
            "max_eval": 60,
            "bench_batch": 16,
            "batch_size": 8,
            "finetune_steps": args.esm_finetune_steps,
        }
        families["esm_student"] = compress_all(args.esm, ESM_RECIPES, out / "esm", esm_common)
    results = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} {platform.processor() or ''} (shared CPU)".strip(),
        "command": "python benchmarks/compress.py " + " ".join(sys.argv[1:]),
        "families": families,
    }
    res = Path(args.results)
    from protdistill.io.atomic import write_json, write_text

    name = f"compress_{args.tag}" if args.tag else "compress"
    write_json(res / f"{name}.json", results)
    write_text(res / f"{name}.md", markdown(results))
    print(json.dumps({f: {n: r["stages"][-1] for n, r in v.items()} for f, v in families.items()}))


if __name__ == "__main__":
    main()
