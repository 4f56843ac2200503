"""How much of the teacher's protein embedding the first N residues carry (issue 14).

The ResNet student reads the first ``max_residues`` residues of a protein; the teacher's
embedding (the target of feature KD and of the embedding-cosine figure) averages all of them.
This measures the ceiling that cut puts on any student: the teacher's own embedding of the first
N residues against its embedding of the whole protein (first 1,022 residues, the teacher's
limit), as the cosine of the embeddings standardised per dimension (as the retention benchmark
compares them), for proteins longer than N and for all.

    python benchmarks/truncation.py --n-proteins 400 --lengths 256 512 1024

writes benchmarks/results/ppi/truncation_guo_yeast.json.
"""

from __future__ import annotations

import argparse
import platform
import random
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OUT = ROOT / "benchmarks" / "results" / "ppi" / "truncation_guo_yeast.json"


def cosine_to_full(full: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
    """Per-protein cosine of standardised embeddings (statistics of the full embeddings)."""
    mean, sd = full.mean(0), full.std(0).clamp_min(1e-6)
    return torch.nn.functional.cosine_similarity((cut - mean) / sd, (full - mean) / sd, dim=1)


def main() -> None:
    from protdistill.io.atomic import write_json
    from protdistill.io.fasta import read_fasta
    from protdistill.teachers.esm import EsmTeacher

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default=str(SHARED / "models" / "esm2_t6_8M_standin"))
    guo = SHARED / "data" / "ppi" / "guo_yeast" / "sequences.fasta"
    ap.add_argument("--fasta", default=str(guo))
    ap.add_argument("--n-proteins", type=int, default=400)
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seqs = read_fasta(args.fasta)
    ids = sorted(seqs)
    random.Random(0).shuffle(ids)
    chosen = [seqs[i] for i in ids[: args.n_proteins]]
    teacher = EsmTeacher(args.teacher, max_residues=1022, long_policy="crop")
    full = torch.stack([e.pooled for e in teacher.embed(chosen)])
    lengths = torch.tensor([len(s) for s in chosen])
    rows = {}
    for n in args.lengths:
        if n >= 1022:  # the teacher sees at most 1,022 residues: the cut is the whole
            cut = full
        else:
            cut = torch.stack([e.pooled for e in teacher.embed([s[:n] for s in chosen])])
        cos = cosine_to_full(full, cut)
        longer = (lengths > n) & (n < 1022)  # cut shorter than what the teacher sees whole
        rows[str(n)] = {
            "cosine_all": float(cos.mean()),
            "cosine_longer": float(cos[longer].mean()) if longer.any() else None,
            "fraction_longer": float(longer.float().mean()),
        }
        print(f"first {n}: cosine {rows[str(n)]}", flush=True)
    report = {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, {args.threads} threads, no GPU",
        "teacher": f"{args.teacher} (stand-in teacher)",
        "fasta": args.fasta,
        "n_proteins": len(chosen),
        "median_length": float(lengths.median()),
        "first_n": rows,
    }
    write_json(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
