"""Proteome-scale screening: all-vs-all of Bernett's human proteins with a trained student, the
same run's `ppi predict` and teacher pairs/s on samples, and the sanity of Guo yeast top-K hits.

Usage: .venv/bin/python benchmarks/screen.py --model runs/guo [--threads 2] [--top-k 50]
Writes benchmarks/results/screening/screen.json. Skips (exit 0, no JSON) when ../shared is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEACHER = SHARED / "models" / "esm2_t6_8M_standin"
BERNETT = SHARED / "data" / "ppi" / "bernett" / "sequences.fasta"
GUO = SHARED / "data" / "ppi" / "guo_yeast"
OUT = ROOT / "benchmarks" / "results" / "screening" / "screen.json"


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_screen(model: Path, fasta: Path, out: Path, top_k: int, threads: int) -> dict:
    from protdistill.tasks.ppi.screen.screening import ScreenConfig, screen

    cfg = ScreenConfig(model=str(model), fasta=str(fasta), out=str(out), top_k=top_k,
                       threads=threads, progress=False)  # fmt: skip
    start = time.perf_counter()
    summary = screen(cfg)
    summary["wall_seconds"]["total"] = time.perf_counter() - start
    return summary


def predict_rate(model: Path, fasta: Path, n: int, seed: int) -> float:
    """`ppi predict` pairs/s (both proteins embedded per pair) on ``n`` random pairs."""
    import protdistill
    from protdistill.io.fasta import read_fasta

    seqs = read_fasta(fasta)
    ids = list(seqs)
    rng = random.Random(seed)
    pairs = [tuple(rng.sample(ids, 2)) for _ in range(n)]
    student = protdistill.load(model)
    start = time.perf_counter()
    student.predict(pairs, seqs)
    return n / (time.perf_counter() - start)


def teacher_rate(fasta: Path, n: int, seed: int) -> float:
    """Teacher pairs/s when each pair's two proteins are embedded by ESM-2 (the head is free)."""
    from protdistill.io.fasta import read_fasta
    from protdistill.teachers.esm import EsmTeacher

    seqs = list(read_fasta(fasta).values())
    rng = random.Random(seed)
    pairs = [rng.sample(seqs, 2) for _ in range(n)]
    teacher = EsmTeacher(str(TEACHER))
    start = time.perf_counter()
    for a, b in pairs:
        teacher.embed([a, b])
    return n / (time.perf_counter() - start)


def guo_sanity(model: Path, work: Path, top_k: int, threads: int) -> dict:
    """Known positive pairs found in either protein's top-K, against a random ranking; split into
    the run's training and test pairs (test proteins were never trained on)."""
    from protdistill.tasks.ppi.common.data import load_split

    out = work / "guo.tsv.gz"
    summary = run_screen(model, GUO / "sequences.fasta", out, top_k, threads)
    import gzip

    kept = set()
    with gzip.open(out, "rt") as fh:
        next(fh)
        for line in fh:
            a, b, _, _ = line.split("\t")
            kept.add(frozenset((a, b)))
    split = load_split(model / "split.json")
    n = summary["proteins"]
    result = {"proteins": n, "top_k": top_k}
    for name in ("train", "test"):
        positives = [p for p in split[name] if p.label == 1 and p.a != p.b]
        found = sum(frozenset((p.a, p.b)) in kept for p in positives)
        q = min(1.0, top_k / (n - 1))
        result[name] = {
            "positive_pairs": len(positives),
            "recovered_fraction": found / len(positives),
            "random_expected": 1 - (1 - q) ** 2,  # in a's top-K or in b's, independently
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "guo")
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--predict-pairs", type=int, default=2000)
    parser.add_argument("--teacher-pairs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not (BERNETT.is_file() and TEACHER.is_dir()):
        print(f"skipped: Bernett FASTA or stand-in teacher not found under {SHARED}")
        return 0
    import torch

    from protdistill.io.atomic import write_json

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        human = run_screen(args.model, BERNETT, work / "human.tsv.gz", args.top_k, args.threads)
        rss = peak_rss_mb()
        predict = predict_rate(args.model, BERNETT, args.predict_pairs, args.seed)
        teacher = teacher_rate(BERNETT, args.teacher_pairs, args.seed)
        sanity = guo_sanity(args.model, work, args.top_k, args.threads)
    scoring = human["scoring_pairs_per_second"]
    embed_rate = human["proteins"] / human["wall_seconds"]["embedding"]
    human_proteome = {"proteins": 20_000, "pairs": 20_000 * 19_999 // 2}
    human_proteome["seconds"] = 20_000 / embed_rate + human_proteome["pairs"] / scoring
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },  # fmt: skip
        "model": str(args.model),
        "teacher": "stand-in ESM-2 8M (../shared/models/esm2_t6_8M_standin)",
        "bernett_all_vs_all": {**human, "peak_rss_mb": rss},
        "rates_pairs_per_second": {
            "screen_scoring": scoring,
            "ppi_predict": predict,
            "teacher": teacher,
        },  # fmt: skip
        "speedup": {"screen_vs_predict": scoring / predict, "screen_vs_teacher": scoring / teacher},
        "extrapolated_human_proteome": human_proteome,
        "guo_top_k_sanity": sanity,
    }
    write_json(args.out, report)
    print(json.dumps({k: report[k] for k in ("rates_pairs_per_second", "speedup")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
