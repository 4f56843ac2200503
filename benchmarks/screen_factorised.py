"""A human-size all-vs-all screen with the factorised head (issue 44), and the MLP head's rate in
the same run for the ratio.

Proteome: every protein of ../shared/data/ppi (Bernett's 7,997 human proteins, Guo yeast,
H. pylori, DIPS chains, interface_sites chains), topped up to ``--proteins`` (20,000) with
shuffled copies of real sequences (a protein's length and composition kept, its order not).
Each screen runs as its own `protdistill ppi screen` process (its peak RSS is the child's
``ru_maxrss``), top-50 per protein. Speed does not depend on training, so both students are the
default ResNet-1D with seeded random weights unless ``--run`` names trained ones.

Usage: .venv/bin/python benchmarks/screen_factorised.py [--threads 2] [--mlp-proteins 4000]
Writes benchmarks/results/screening/screen_factorised.json. Skips when ../shared is absent.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PPI = ROOT.parent / "shared" / "data" / "ppi"
OUT = ROOT / "benchmarks" / "results" / "screening" / "screen_factorised.json"
SOURCES = ("bernett", "guo_yeast", "martin_hpylori", "interfaces_dips", "interface_sites")


def proteome(n: int, seed: int = 0) -> dict[str, str]:
    from protdistill.io.fasta import read_fasta

    seqs: dict[str, str] = {}
    for src in SOURCES:
        for pid, s in read_fasta(PPI / src / "sequences.fasta").items():
            seqs.setdefault(f"{src}:{pid}", s)
    rng = random.Random(seed)
    real = list(seqs.values())
    while len(seqs) < n:
        s = list(rng.choice(real))
        rng.shuffle(s)
        seqs[f"shuffled:{len(seqs)}"] = "".join(s)
    return dict(list(seqs.items())[:n])


def student(path: Path, head: str) -> Path:
    import torch

    from protdistill.distill.checkpoint import save_model
    from protdistill.students import build_student

    torch.manual_seed(0)
    cfg = {"kind": "resnet1d", "head": head}
    save_model(path, build_student(cfg).eval(), {"student": cfg, "ppi": {"max_residues": 512}})
    return path


#: the child runs the CLI in-process and reports its own peak RSS (VmHWM) as its last line
CHILD = """
import sys
from pathlib import Path
from protdistill.cli.main import main
try:
    main()
finally:
    hwm = [l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM')]
    print('PEAK_KB', hwm[0].split()[1] if hwm else 'nan', file=sys.stderr)
"""


def screen(model: Path, fasta: Path, out: Path, threads: int) -> dict:
    """One `ppi screen` process: its summary, wall time and peak RSS (MB)."""
    args = ["protdistill", "--threads", str(threads), "ppi", "screen", "--model", str(model),
            "--fasta", str(fasta), "--out", str(out), "--top-k", "50"]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = {args!r}\n" + CHILD],
                          capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"screen failed: {done.stderr[-2000:]}")
    peak = float(done.stderr.strip().splitlines()[-1].split()[1]) / 1024
    summary = json.loads(out.with_name(out.name.replace(".tsv.gz", ".summary.json")).read_text())
    return {"wall_seconds_process": wall, "peak_rss_mb": peak, "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proteins", type=int, default=20_000)
    ap.add_argument("--mlp-proteins", type=int, default=4_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--run", nargs=2, metavar=("FACTORISED", "MLP"), type=Path)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if not PPI.exists():
        print(f"skipped: {PPI} is absent")
        return
    from protdistill.io.fasta import write_fasta

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seqs = proteome(args.proteins)
        write_fasta(tmp / "all.fasta", seqs)
        write_fasta(tmp / "sub.fasta", dict(list(seqs.items())[: args.mlp_proteins]))
        fact, mlp = args.run or (student(tmp / "f.safetensors", "factorised"),
                                 student(tmp / "m.safetensors", "mlp"))  # fmt: skip
        runs = {
            "factorised_all": screen(fact, tmp / "all.fasta", tmp / "fa.tsv.gz", args.threads),
            "factorised_subset": screen(fact, tmp / "sub.fasta", tmp / "fs.tsv.gz", args.threads),
            "mlp_subset": screen(mlp, tmp / "sub.fasta", tmp / "ms.tsv.gz", args.threads),
        }
    rate = {k: v["summary"]["scoring_pairs_per_second"] for k, v in runs.items()}
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {args.threads} torch threads, no GPU",
        "command": " ".join(sys.argv),
        "proteins": args.proteins,
        "mlp_proteins": args.mlp_proteins,
        "runs": runs,
        "factorised_over_mlp_pairs_per_second": rate["factorised_subset"] / rate["mlp_subset"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    for k, v in runs.items():
        s = v["summary"]
        sec = s["wall_seconds"]
        print(f"{k}: {s['proteins']} proteins, {s['pairs_total']:,} pairs, embedding "
              f"{sec['embedding']:.1f} s, scoring {sec['scoring']:.1f} s "
              f"({s['scoring_pairs_per_second']:,.0f} pairs/s), process "
              f"{v['wall_seconds_process']:.1f} s, peak RSS {v['peak_rss_mb']:.0f} MB")  # fmt: skip
    print(f"factorised / MLP pairs/s: {result['factorised_over_mlp_pairs_per_second']:.0f}x")


if __name__ == "__main__":
    main()
