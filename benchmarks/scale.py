"""Scale-out benchmark (issue 16): 1 vs N processes for teacher caching and for screening.

    python benchmarks/scale.py --teacher ../shared/models/esm2_t6_8M_standin \
        --student runs/retention/baseline/seed0 [--proteins 800] [--screen-proteins 4000]

Both stages run through the real commands (`protdistill ppi embed` and `ppi screen`) with
``--devices 1`` and ``--devices N`` on CPU (gloo), interleaved, each into fresh output folders,
so the ratio comes from one run on one machine. Teacher caching embeds a seeded subset of the Guo
yeast proteins; screening scores all-vs-all a seeded subset of the Bernett proteins. Results:
benchmarks/results/scale/scale.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from protdistill.io.atomic import write_json
from protdistill.io.fasta import read_fasta, write_fasta

ROOT = Path(__file__).resolve().parents[1]
PPI = ROOT.parent / "shared" / "data" / "ppi"
OUT = ROOT / "benchmarks" / "results" / "scale" / "scale.json"


def _subset(fasta: Path, n: int, seed: int, path: Path) -> dict[str, str]:
    records = read_fasta(fasta)
    chosen = sorted(random.Random(seed).sample(sorted(records), min(n, len(records))))
    subset = {k: records[k] for k in chosen}
    write_fasta(path, subset)
    return subset


def _timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return time.perf_counter() - start


def _gunzip(path: Path) -> str:
    with gzip.open(path, "rt") as fh:
        return fh.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--student", required=True, help="a resnet1d run directory")
    ap.add_argument("--proteins", type=int, default=800)
    ap.add_argument("--screen-proteins", type=int, default=4000)
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--work", default="runs/scale")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    prot = _subset(PPI / "guo_yeast" / "sequences.fasta", args.proteins, 0, work / "guo.fasta")
    ids = list(prot)
    pairs = [f"{ids[i]}\t{ids[i + 1]}\t{i % 2}" for i in range(0, len(ids) - 1)]
    (work / "pairs.tsv").write_text("\n".join(pairs) + "\n")
    screen_set = _subset(PPI / "bernett" / "sequences.fasta", args.screen_proteins, 0,
                         work / "bernett.fasta")  # fmt: skip
    cli = [sys.executable, "-m", "protdistill"]
    results: dict = {"caching": {}, "screen": {}}
    for devices in (1, args.devices):
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // devices))}
        seconds = _timed([*cli, "ppi", "embed", "--pairs", str(work / "pairs.tsv"), "--fasta",
                          str(work / "guo.fasta"), "--teacher", args.teacher, "--out",
                          str(work / f"embed{devices}"), "--cache", str(work / f"cache{devices}"),
                          "--devices", str(devices), "--accelerator", "cpu", "--quiet",
                          "--split", "random"], env)  # fmt: skip
        residues = sum(len(s) for s in prot.values())
        results["caching"][str(devices)] = {
            "seconds": seconds,
            "residues_per_s": residues / seconds,
        }
        hits = work / f"screen{devices}" / "hits.tsv.gz"  # own folder: own embedding cache
        hits.parent.mkdir()
        seconds = _timed([*cli, "ppi", "screen", "--model", args.student, "--fasta",
                          str(work / "bernett.fasta"), "--out", str(hits), "--devices",
                          str(devices), "--accelerator", "cpu"], env)  # fmt: skip
        n = len(screen_set)
        summary = json.loads((hits.parent / "hits.summary.json").read_text())
        results["screen"][str(devices)] = {
            "seconds": seconds,
            "pairs_per_s": n * (n - 1) / 2 / seconds,
            "rank0_scoring_seconds": summary["wall_seconds"]["scoring"],
            "embedding_seconds": summary["wall_seconds"]["embedding"],
        }
    same = [_gunzip(work / f"screen{d}" / "hits.tsv.gz") for d in (1, args.devices)]
    results["screen"]["identical_output"] = same[0] == same[1]
    for stage in ("caching", "screen"):
        one, many = results[stage]["1"]["seconds"], results[stage][str(args.devices)]["seconds"]
        results[stage]["speedup"] = one / many
    report = {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU only (gloo)",
        "teacher": f"{args.teacher} (stand-in teacher)",
        "student": args.student,
        "proteins_cached": len(prot),
        "residues_cached": sum(len(s) for s in prot.values()),
        "screen_proteins": len(screen_set),
        "results": results,
        "note": "wall time of the whole command, including process start-up and model loading",
    }
    write_json(args.out, report)
    print(report)


if __name__ == "__main__":
    main()
