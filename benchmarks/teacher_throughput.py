"""Throughput of the stand-in ESM-2 teacher on this CPU: length-sorted vs unsorted batches.

Usage: .venv/bin/python benchmarks/teacher_throughput.py [--n 120] [--rounds 2]
Writes benchmarks/results/scale/teacher_throughput.json.
Skips (exit 0, no JSON) when ../shared is absent.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "esm2_t6_8M_standin"
FASTA = SHARED / "data" / "ppi" / "guo_yeast" / "sequences.fasta"
OUT = ROOT / "benchmarks" / "results" / "scale" / "teacher_throughput.json"


def sample(n: int, max_len: int, seed: int) -> list[str]:
    from protdistill.io.fasta import read_fasta

    seqs = [s for s in read_fasta(FASTA).values() if len(s) <= max_len]
    return random.Random(seed).sample(seqs, min(n, len(seqs)))


def padding_efficiency(teacher, seqs: list[str]) -> float:
    """Real tokens / padded tokens over the batches the teacher would run."""
    pieces, _ = teacher._pieces(seqs, None)
    real = padded = 0
    for batch in teacher._batches(pieces):
        lengths = [len(pieces[j].seq) + 2 for j in batch]
        real += sum(lengths)
        padded += max(lengths) * len(lengths)
    return real / padded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=120, help="sequences sampled (<= max-len)")
    parser.add_argument("--max-len", type=int, default=1022)
    parser.add_argument("--tokens-per-batch", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=2, help="alternating sorted/unsorted runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not (MODEL.is_dir() and FASTA.is_file()):
        print(f"skipped: stand-in teacher or Guo FASTA not found under {SHARED}")
        return 0

    import torch

    from protdistill.io.atomic import write_json
    from protdistill.teachers.esm import EsmTeacher

    torch.set_num_threads(args.threads)
    seqs = sample(args.n, args.max_len, args.seed)
    residues = sum(len(s) for s in seqs)
    teacher = EsmTeacher(MODEL, tokens_per_batch=args.tokens_per_batch)
    teacher.embed(seqs[:4])  # warm-up
    times: dict[str, list[float]] = {"sorted": [], "unsorted": []}
    efficiency = {}
    for _ in range(args.rounds):
        for mode in ("sorted", "unsorted"):
            teacher.sort_by_length = mode == "sorted"
            efficiency[mode] = padding_efficiency(teacher, seqs)
            start = time.perf_counter()
            teacher.embed(seqs)
            times[mode].append(time.perf_counter() - start)
            print(f"{mode:9s} {residues / times[mode][-1]:8.0f} residues/s", flush=True)
    rate = {m: residues / statistics.median(t) for m, t in times.items()}
    result = {
        "benchmark": "teacher_throughput",
        "teacher": "stand-in ESM-2 8M (esm2_t6_8M_standin)",
        "teacher_identity": teacher.identity,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "load_average_at_end": list(os.getloadavg()),
        },
        "data": {
            "source": "guo_yeast sequences.fasta",
            "sequences": len(seqs),
            "residues": residues,
            "max_len": args.max_len,
            "seed": args.seed,
        },
        "tokens_per_batch": args.tokens_per_batch,
        "rounds": args.rounds,
        "seconds": times,
        "residues_per_s": rate,
        "padding_efficiency": efficiency,
        "sorted_over_unsorted": rate["sorted"] / rate["unsorted"],
    }
    write_json(args.out, result)
    print(f"sorted/unsorted = {result['sorted_over_unsorted']:.2f}x -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
