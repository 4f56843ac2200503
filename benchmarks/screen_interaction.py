"""Screening cost of the interaction student against the Siamese ResNet-1D, in one run: both
default architectures (random weights: speed does not depend on them) screen the same proteins.

Usage: .venv/bin/python benchmarks/screen_interaction.py [--proteins 300] [--threads 2]
Writes benchmarks/results/screening/screen_interaction.json.
Skips (exit 0) when ../shared is absent.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUO = ROOT.parent / "shared" / "data" / "ppi" / "guo_yeast" / "sequences.fasta"
OUT = ROOT / "benchmarks" / "results" / "screening" / "screen_interaction.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proteins", type=int, default=300)
    parser.add_argument("--max-residues", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not GUO.is_file():
        print(f"skipped: {GUO} not found")
        return 0
    import torch

    from protdistill.distill.checkpoint import save_model
    from protdistill.io.atomic import write_json
    from protdistill.io.fasta import read_fasta, write_fasta
    from protdistill.students import build_student
    from protdistill.tasks.ppi.screen.screening import ScreenConfig, screen

    torch.manual_seed(0)
    seqs = dict(list(read_fasta(GUO).items())[: args.proteins])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        fasta = Path(tmp) / "proteins.fasta"
        write_fasta(fasta, seqs)
        for kind in ("resnet1d", "interaction"):
            path = Path(tmp) / f"{kind}.safetensors"
            meta = {"student": {"kind": kind}, "ppi": {"max_residues": args.max_residues}}
            save_model(path, build_student({"kind": kind}).eval(), meta)
            cfg = ScreenConfig(model=str(path), fasta=str(fasta), out=f"{tmp}/{kind}.tsv.gz",
                               top_k=10, threads=args.threads, progress=False)  # fmt: skip
            results[kind] = screen(cfg)
    rate = {k: v["scoring_pairs_per_second"] for k, v in results.items()}
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.machine(), "cores": os.cpu_count(), "threads": args.threads},
        "proteins": args.proteins,
        "max_residues": args.max_residues,
        "pairs": results["resnet1d"]["pairs_total"],
        "scoring_pairs_per_second": rate,
        "embedding_seconds": {k: v["wall_seconds"]["embedding"] for k, v in results.items()},
        "interaction_slowdown": rate["resnet1d"] / rate["interaction"],
    }
    write_json(args.out, report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
