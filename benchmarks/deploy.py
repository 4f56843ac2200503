"""Compression + deployment benchmark (issue 19): PyTorch INT8, prune, ONNX Runtime fp32 / INT8
on trained Guo students (one per seed); size, speed from raw sequences, AUPR.

    python benchmarks/deploy.py --run runs/guo_s0 --run runs/guo_s1 --run runs/guo_s2

For each run, two `compress --onnx` reports ("quantize" and "prune,quantize") time their stages
interleaved on one collated batch; then the original, PyTorch INT8, ONNX Runtime fp32 and INT8
(and the pruned variants) are timed interleaved from raw sequences: ``predict_pairs`` on held-out
pairs (tokenising and batching included) and the embedding stage of ``ppi screen`` (proteins ->
pooled embeddings). Writes benchmarks/results/compress/deploy.json and deploy.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def compress_run(run: Path, out: Path, method: str, args) -> dict:
    from protdistill.api.compress import compress_model
    from protdistill.compress.config import CompressConfig

    cfg = CompressConfig(
        model=str(run), out=str(out), method=method, onnx=True, ratio=args.ratio,
        finetune_steps=args.finetune_steps, bench_repeats=args.repeats, threads=args.threads,
    )  # fmt: skip
    return compress_model(cfg, log=log)


def served(report: dict, out: Path) -> dict:
    """The models of one compress report, loaded as they are served."""
    from protdistill.tasks.ppi.run.student import load_student

    last = report["stages"][-1]["step"]  # "onnx int8 (<float stage>)"
    float_stage = last[last.index("(") + 1 : -1]
    models = {f"onnx fp32 ({float_stage})": load_student(out / "onnx" / "fp32.onnx")[0]}
    models[f"onnx int8 ({float_stage})"] = load_student(out / "onnx" / "int8.onnx")[0]
    models["torch int8" if float_stage == "original" else "torch prune+int8"] = load_student(out)[0]
    return models


def embed_batches(sequences: dict[str, str], max_residues: int, tokens: int = 16_000):
    from protdistill.alphabet import encode_batch
    from protdistill.tasks.ppi.run.embed import length_batches

    seqs = [s[:max_residues] for s in sequences.values()]
    for idx in length_batches([len(s) for s in seqs], tokens):
        yield encode_batch([seqs[i] for i in idx])


def time_raw(models: dict, task, n_pairs: int, n_proteins: int, repeats: int) -> dict:
    """Interleaved best-of-``repeats`` pairs/s (predict_pairs) and proteins/s (embedding)."""
    from protdistill.tasks.ppi.run.evaluate import predict_pairs

    pairs = [task.held_out[i % len(task.held_out)] for i in range(n_pairs)]
    ids = sorted({x for p in task.held_out for x in (p.a, p.b)})[:n_proteins]
    batches = list(embed_batches({i: task.sequences[i] for i in ids}, task.max_residues))
    jobs = {
        "pairs": lambda m: predict_pairs(m, pairs, task.sequences, max_residues=task.max_residues),
        "proteins": lambda m: [m.embed(*b) for b in batches],
    }
    best = {(j, name): float("inf") for j in jobs for name in models}
    with torch.inference_mode():
        for _ in range(repeats):
            for (job, name), _b in best.items():
                start = time.perf_counter()
                jobs[job](models[name])
                best[(job, name)] = min(best[(job, name)], time.perf_counter() - start)
    count = {"pairs": len(pairs), "proteins": len(ids)}
    return {f"{name} {job}/s": count[job] / t for (job, name), t in best.items()}


def one_run(run: Path, args) -> dict:
    from protdistill.compress.config import CompressConfig
    from protdistill.tasks.ppi.export.compress import ppi_task
    from protdistill.tasks.ppi.run.student import load_student

    out = Path(args.out) / run.name
    reports = {m: compress_run(run, out / m.replace(",", "+"), m, args) for m in args.methods}
    models = {"torch fp32": load_student(run)[0]}
    for method, report in reports.items():
        models |= served(report, out / method.replace(",", "+"))
    task = ppi_task(CompressConfig(model=str(run)), run, log=log)
    log(f"{run}: timing {len(models)} models from raw sequences")
    raw = time_raw(models, task, args.raw_pairs, args.raw_proteins, args.repeats)
    return {"run": str(run), "reports": reports, "raw": raw}


def summarise(runs: list[dict]) -> dict:
    """mean / sd over runs of every stage's size ratio, speed-up, AUPR and AUPR loss."""
    rows: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        seen = set()  # the original appears in every report of a run: count it once
        for method, report in r["reports"].items():
            base = report["stages"][0]["metrics"]["aupr"]
            for s in report["stages"]:
                step = (
                    "prune -> quantize"
                    if s["step"] == "quantize" and "prune" in method
                    else s["step"]
                )
                if step in seen:
                    continue
                seen.add(step)
                row = rows.setdefault(step, {})
                for key, value in (
                    ("size_ratio", s["size_ratio"]),
                    ("speedup", s["speedup"]),
                    ("aupr", s["metrics"]["aupr"]),
                    ("aupr_loss_points", 100 * (base - s["metrics"]["aupr"])),
                    ("size_mb", s["size_mb"]),
                    ("file_mb", s.get("file_mb", s["size_mb"])),
                ):
                    row.setdefault(key, []).append(value)
        base = r["raw"]
        for key, value in base.items():
            model, unit = key.rsplit(" ", 1)
            ref = base[f"torch fp32 {unit}"]
            rows.setdefault(f"raw {unit}", {}).setdefault(model, []).append(value / ref)
    return {
        step: {
            k: [statistics.mean(v), statistics.pstdev(v) if len(v) > 1 else 0.0]
            for k, v in cols.items()
        }  # fmt: skip
        for step, cols in rows.items()
    }


def markdown(results: dict) -> str:
    lines = [f"# Deployment benchmark ({results['date']}, {results['machine']})", "",
             f"Command: `{results['command']}`", "",
             "| stage | x smaller (weights) | MB weights | MB file | x faster (batch) | AUPR | "
             "AUPR loss (points) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    fmt = lambda v, d=2: f"{v[0]:.{d}f} ± {v[1]:.{d}f}"  # noqa: E731
    for step, row in results["summary"].items():
        if step.startswith("raw "):
            continue
        lines.append(
            f"| {step} | {fmt(row['size_ratio'])} | {row['size_mb'][0]:.3f} | "
            f"{row['file_mb'][0]:.3f} | {fmt(row['speedup'])} | {fmt(row['aupr'], 3)} | "
            f"{fmt(row['aupr_loss_points'], 2)} |"
        )
    for unit in ("pairs/s", "proteins/s"):
        lines += ["", f"From raw sequences, {unit} relative to PyTorch fp32:", ""]
        for model, v in results["summary"].get(f"raw {unit}", {}).items():
            lines.append(f"- {model}: {fmt(v)}x")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="trained PPI run (repeat)")
    parser.add_argument("--methods", default="quantize;prune,quantize", help="';'-separated")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--raw-pairs", type=int, default=256)
    parser.add_argument("--raw-proteins", type=int, default=256)
    parser.add_argument("--out", default=str(ROOT / "runs" / "deploy_bench"))
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "compress"))
    args = parser.parse_args()
    args.methods = args.methods.split(";")
    torch.set_num_threads(args.threads)
    runs = [one_run(Path(r), args) for r in args.run]
    results = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} {platform.processor() or ''}, "
        f"{args.threads} thread(s)".strip(),
        "command": "python benchmarks/deploy.py " + " ".join(sys.argv[1:]),
        "runs": runs,
        "summary": summarise(runs),
    }
    from protdistill.io.atomic import write_json, write_text

    write_json(Path(args.results) / "deploy.json", results)
    write_text(Path(args.results) / "deploy.md", markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
