"""Teacher forward precision on this machine: residues/s of float32 vs bf16 autocast (one run,
interleaved, best of ``--repeats``) and the smallest pooled-embedding cosine between the two.

    .venv/bin/python benchmarks/teacher_precision.py --proteins 200

Writes benchmarks/results/scale/teacher_precision.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default=str(ROOT.parent / "shared/models/esm2_t6_8M_standin"))
    ap.add_argument("--proteins", type=int, default=200, help="first N Guo yeast proteins")
    ap.add_argument("--precisions", nargs="+", default=["32", "bf16"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    out = ROOT / "benchmarks/results/scale/teacher_precision.json"
    ap.add_argument("--results", default=str(out))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from protdistill.datasets import dataset_files
    from protdistill.io.atomic import write_json
    from protdistill.io.fasta import read_fasta
    from protdistill.teachers.esm import EsmTeacher

    fasta = dataset_files("guo-yeast")[1]
    seqs = list(read_fasta(fasta).values())[: args.proteins]
    residues = sum(len(s) for s in seqs)
    teachers = {p: EsmTeacher(args.teacher, precision=p) for p in args.precisions}
    best, outs = dict.fromkeys(teachers, float("inf")), {}
    for _ in range(args.repeats):
        for p, teacher in teachers.items():
            start = time.perf_counter()
            outs[p] = teacher.embed(seqs)
            best[p] = min(best[p], time.perf_counter() - start)
    ref = args.precisions[0]
    cosine = {
        p: min(torch.cosine_similarity(a.pooled, b.pooled, dim=0).item()
               for a, b in zip(outs[ref], outs[p], strict=True))
        for p in args.precisions[1:]
    }  # fmt: skip
    result = {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, {args.threads} threads, CPU",
        "teacher": f"{args.teacher} (stand-in teacher)",
        "proteins": len(seqs),
        "residues": residues,
        "residues_per_s": {p: residues / t for p, t in best.items()},
        "min_pooled_cosine_to_" + ref: cosine,
    }
    write_json(args.results, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
