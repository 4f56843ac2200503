"""The hub effect in one figure: how often each protein appears in the top-K lists of an
all-vs-all screen, ranked by probability and by specificity (the same model, the same scores).

Usage: .venv/bin/python benchmarks/hub_figure.py --model runs/guo --fasta FASTA
       [--out docs/img/screen_hubs.png] [--top-k 50]
Writes the PNG and benchmarks/results/screening/hub_figure.json (appearance counts, hub shares).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from protdistill.plotting import pyplot
from protdistill.tasks.ppi.screen.screening import ScreenConfig, screen

ROOT = Path(__file__).resolve().parents[1]


def appearances(model: Path, fasta: Path, top_k: int, rank_by: str, tmp: Path) -> Counter:
    out = tmp / f"{rank_by}.tsv.gz"
    screen(ScreenConfig(model=str(model), fasta=str(fasta), out=str(out), top_k=top_k,
                        rank_by=rank_by, progress=False))  # fmt: skip
    table = pd.read_csv(out, sep="\t")
    return Counter(table.protein_b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--fasta", type=Path, required=True)
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "screen_hubs.png")
    ap.add_argument("--results", type=Path,
                    default=ROOT / "benchmarks" / "results" / "screening" / "hub_figure.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        counts = {r: appearances(args.model, args.fasta, args.top_k, r, Path(tmp))
                  for r in ("probability", "specificity")}  # fmt: skip
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    summary = {}
    for rank_by, c in counts.items():
        values = sorted(c.values(), reverse=True)
        share = sum(values[:50]) / sum(values)
        summary[rank_by] = {"listed": len(values), "top50_share": share, "max": values[0]}
        ax.plot(range(1, len(values) + 1), values,
                label=f"ranked by {rank_by}: 50 proteins hold {share:.0%} of slots, "
                      f"{len(values)} listed")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("protein (by number of lists it appears in)")
    ax.set_ylabel(f"top-{args.top_k} lists it appears in")
    ax.set_title(f"Hubs in an all-vs-all screen ({args.model.name})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    summary |= {"model": str(args.model), "fasta": str(args.fasta), "top_k": args.top_k,
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}  # fmt: skip
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
