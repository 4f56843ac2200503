"""Semantic-communication benchmark on the Europarl-2000 set (CPU).

    protdistill semcom train --config configs/semcom_teacher.yaml      # the teacher, first
    python benchmarks/semcom.py --teacher runs/semcom/teacher/teacher.pt \
        --parts decoder encoder full --temps 4 --epochs 3 --ablation decoder

For each (part, T) it runs `protdistill distill` (1-layer student part, DistilBERT-style init,
output KD + hidden-state and attention KD of the mapped layer, hybrid saved; finished runs are
reused, killed ones resume); ``--ablation PART`` adds that part's student with output KD only. Then
`protdistill analyze` over all of them (BLEU-1..4, TF-IDF similarity and KL at 0..18 dB on AWGN
and Rayleigh, gap vs T), CPU greedy-decoding throughput (sentences/s at 12 dB AWGN, models timed
interleaved, best of ``--repeats``) and a summary: BLEU-1 averaged over every SNR and both
channels, as a ratio to the teacher's, decoding speed-up, parameters and training time.
Writes benchmarks/results/semcom/semcom.json and semcom.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _distill(args: tuple[str, str, float, bool, argparse.Namespace]) -> str:
    teacher, part, temp, layer_kd, opts = args
    from protdistill.api.distill import run_distill
    from protdistill.distill.config import DistillConfig

    torch.set_num_threads(opts.threads)
    init = f"_init{opts.init_layers.replace(',', '-')}" if opts.init_layers else ""
    out = Path(opts.out) / (f"{part}_T{temp:g}" + ("" if layer_kd else "_outputkd") + init)
    weight = (opts.hidden_weight, opts.attention_weight) if layer_kd else (0.0, 0.0)
    if not (out / "distillation_config.json").is_file():
        run_distill(
            DistillConfig(
                teacher_checkpoint=teacher,
                distill_part=part,
                student_layers=opts.student_layers,
                init_layers=opts.init_layers,
                temperature=temp,
                distill_weight=opts.alpha,
                epochs=opts.epochs,
                batch_size=opts.batch_size,
                lr=opts.lr,
                max_train_sentences=opts.max_train_sentences,
                hidden_weight=weight[0],
                attention_weight=weight[1],
                patience=opts.patience,
                create_hybrid=True,
                val_sentences=opts.val_sentences,
                output_path=str(out),
                progress=False,
                resume=True,
            )
        )
    return str(out)


@torch.no_grad()
def throughput(paths: dict[str, str], n: int, repeats: int) -> dict[str, float]:
    """Greedy-decoding sentences/s at 12 dB AWGN on ``n`` test sentences (batch 100)."""
    from protdistill.tasks.semcom.data import Vocab, load_split, make_loader
    from protdistill.tasks.semcom.model import load_deepsc
    from protdistill.tasks.semcom.train import SemcomDataConfig as Data

    models = {k: load_deepsc(p) for k, p in paths.items()}
    first = next(iter(models.values()))
    data = Data(**first.meta["data"])
    _, test = load_split(data.corpus, max_sentences=data.max_sentences, seed=data.split_seed,
                         min_words=data.min_words, max_words=data.max_words,
                         test_fraction=data.test_fraction)  # fmt: skip
    loader = list(make_loader(test[:n], Vocab(first.vocab), 100, shuffle=False))
    best = dict.fromkeys(models, float("inf"))
    for m in models.values():  # warm-up, untimed
        m.model.decode(loader[0]["tokens"], loader[0]["mask"], 12.0, "awgn")
    for _ in range(repeats):
        for name, m in models.items():
            start = time.perf_counter()
            for b in loader:
                m.model.decode(
                    b["tokens"], b["mask"], 12.0, "awgn", torch.Generator().manual_seed(0)
                )
            best[name] = min(best[name], time.perf_counter() - start)
    return {k: len(test[:n]) / t for k, t in best.items()}


def _mean_bleu1(model: dict, channels: list[str]) -> float:
    vals = [r["bleu1"] for ch in channels for r in model["results"][ch]]
    return sum(vals) / len(vals)


def _init_layers(run: dict) -> str:
    """Teacher layers the distilled part(s) started from, e.g. ``decoder [0]``."""
    part = run.get("distill_part")
    parts = ("encoder", "decoder") if part == "full" else (part,)
    return ", ".join(f"{p} {run['layer_map'][p]}" for p in parts if p in run.get("layer_map", {}))


def summary(report: dict, speed: dict[str, float]) -> list[dict]:
    """Per model: BLEU-1 averaged over every SNR and both channels, its ratio to the teacher's,
    the decoding speed-up over the teacher and the training time of its run."""
    channels = report["channels"]
    teacher = report["models"]["teacher"]
    t_b1 = _mean_bleu1(teacher, channels)
    rows = []
    for name, m in report["models"].items():
        info = Path(m["path"]).parent / "distillation_config.json"
        run = json.loads(info.read_text()) if m["kind"] != "teacher" and info.is_file() else {}
        b1 = _mean_bleu1(m, channels)
        at12 = {ch: next(r["bleu1"] for r in m["results"][ch] if r["snr"] == 12.0)
                for ch in channels}  # fmt: skip
        rows.append({
            "model": name, "kind": m["kind"], "parameters": m["parameters"],
            "layer_kd": bool(run.get("hidden_weight", 0) or run.get("attention_weight", 0)),
            "init_layers": _init_layers(run),
            "bleu1_mean": b1, "bleu1_ratio": b1 / t_b1, "bleu1_12db": at12,
            "decode_speedup": speed[name] / speed["teacher"],
            "train_seconds": run.get("wall_time_s"), "epochs": len(run.get("history", [])),
        })  # fmt: skip
    return rows


def vocabulary_share(cfg: dict) -> dict:
    """Parameters of the vocabulary projections (both embeddings and the output layer)."""
    v, d = cfg["vocab_size"], cfg["d_model"]
    return {"transmitter_embedding": v * d, "receiver_embedding": v * d,
            "output_projection": v * d + v, "tying_receiver_embedding_saves": v * d}  # fmt: skip


def _summary_lines(res: dict) -> list[str]:
    lines = [
        "| model | params | layer KD | init from teacher layers | epochs | train min "
        "| BLEU-1 mean 0-18 dB, both channels | x teacher | AWGN 12 dB | Rayleigh 12 dB "
        "| decoding speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["summary"]:
        mins = "" if r["train_seconds"] is None else f"{r['train_seconds'] / 60:.0f}"
        kd = "" if r["kind"] == "teacher" else ("yes" if r["layer_kd"] else "output only")
        lines.append(
            f"| {r['model']} | {r['parameters']:,} | {kd} | {r.get('init_layers') or ''} | "
            f"{r['epochs'] or ''} | {mins} | "
            f"{r['bleu1_mean']:.3f} | {r['bleu1_ratio']:.3f} | {r['bleu1_12db']['awgn']:.3f} | "
            f"{r['bleu1_12db']['rayleigh']:.3f} | {r['decode_speedup']:.2f}x |"
        )
    return lines + [""]


def _side_lines(rep: dict) -> list[str]:
    cols = ("transmitter", "receiver", "full", "transmitter_in_full", "receiver_in_full")
    lines = [
        "Which side loses what (teacher minus model BLEU-1; transmitter = encoder-part student, "
        "receiver = decoder-part student; in a full student, the receiver's share is its "
        "hybrid's gap and the transmitter's the rest):",
        "",
        "| channel | SNR dB | T | " + " | ".join(c.replace("_", " ") for c in cols) + " |",
        "|---" * (3 + len(cols)) + "|",
    ]
    for r in rep.get("sides", []):
        cells = [f"{r[c]:+.3f}" if c in r else "" for c in cols]
        lines.append(f"| {r['channel']} | {r['snr']:g} | {r['temperature']:g} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return lines + [""]


def markdown(res: dict) -> str:
    """The BENCHMARKS.md section: BLEU-1 at 0/6/12/18 dB per model and channel, sizes, speed."""
    rep = res["analysis"]
    show = [0.0, 6.0, 12.0, 18.0]
    lines = [
        f"Semantic communication (DeepSC-style), Europarl-2000: {res['data']}. "
        f"{res['machine']}; {res['date']}. Teacher: {res['teacher_note']}",
        "",
        *_summary_lines(res),
        *_side_lines(res["analysis"]),
        "| model | T | params | decode sent/s | "
        + " | ".join(f"AWGN {s:g} dB" for s in show)
        + " | "
        + " | ".join(f"Rayleigh {s:g} dB" for s in show)
        + " |",
        "|---" * (4 + 2 * len(show)) + "|",
    ]
    for name, m in rep["models"].items():
        cells = []
        for ch in ("awgn", "rayleigh"):
            by_snr = {r["snr"]: r["bleu1"] for r in m["results"][ch]}
            cells += [f"{by_snr.get(s, float('nan')):.3f}" for s in show]
        t = "" if m["temperature"] is None else f"{m['temperature']:g}"
        speed = res["throughput"].get(name)
        lines.append(
            f"| {name} | {t} | {m['parameters']:,} | "
            f"{'' if speed is None else f'{speed:.0f}'} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "Gap vs T (teacher minus model, mean over SNR 0-18 dB and both channels):",
        "",
        "| model | part | T | BLEU-1 gap | similarity gap | KL(teacher‖model) |",
        "|---|---|---|---|---|---|",
    ]
    for g in rep["gaps"]:
        lines.append(
            f"| {g['kind']} | {g['distill_part']} | {g['temperature']:g} | {g['bleu1_gap']:+.3f} "
            f"| {g['similarity_gap']:+.3f} | {g['kl']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default=str(ROOT / "runs/semcom/teacher/teacher.pt"))
    ap.add_argument("--parts", nargs="+", default=["decoder", "encoder", "full"])
    ap.add_argument("--temps", type=float, nargs="+", default=[4.0])
    ap.add_argument("--student-layers", type=int, default=1)
    ap.add_argument("--init-layers", default=None, help="teacher layers to start from, e.g. 0")
    ap.add_argument("--alpha", type=float, default=0.7)
    ap.add_argument("--hidden-weight", type=float, default=1.0)
    ap.add_argument("--attention-weight", type=float, default=1.0)
    ap.add_argument("--ablation", nargs="*", help="parts also distilled with output KD only")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--patience", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-train-sentences", type=int, default=None, help="default: all")
    ap.add_argument("--val-sentences", type=int, default=500)
    ap.add_argument("--test-sentences", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2, help="distillations run in parallel")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per distillation")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "runs/semcom/bench"))
    ap.add_argument("--results", default=str(ROOT / "benchmarks/results/semcom"))
    args = ap.parse_args()
    started, load_start = time.time(), os.getloadavg()[0]
    from protdistill.io.atomic import write_json, write_text
    from protdistill.tasks.semcom.analysis import AnalyzeConfig, analyze
    from protdistill.tasks.semcom.model import load_deepsc

    jobs = [(args.teacher, p, t, True, args) for p in args.parts for t in args.temps]
    jobs += [(args.teacher, p, t, False, args) for p in args.ablation or [] for t in args.temps]
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(_distill, jobs))
    torch.set_num_threads(2)
    report = analyze(
        AnalyzeConfig(
            teacher_checkpoint=args.teacher,
            runs=runs,
            output_path=str(Path(args.out) / "analysis"),
            max_sentences=args.test_sentences,
            progress=False,
        )
    )
    paths = {name: m["path"] for name, m in report["models"].items()}
    speed = throughput(paths, args.test_sentences, args.repeats)
    teacher = load_deepsc(args.teacher)
    data = report["data"]
    res = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, load average "
        f"{load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end",
        "data": (
            f"{data['max_sentences']} seeded sentences"
            if data["max_sentences"]
            else "every distinct sentence"
        )
        + f" of {data['min_words']}-"
        f"{data['max_words']} words (seeded 90/10 split), "
        f"{report['test_sentences']} test sentences "
        f"scored, distillation on {args.max_train_sentences or 'all'} training sentences",
        "teacher_note": f"{teacher.model.config.model_dump()} trained "
        f"{teacher.meta.get('train', {}).get('epochs')} epochs (see configs/semcom_teacher.yaml)",
        "runs": runs,
        "analysis_dir": str(Path(args.out) / "analysis"),
        "throughput": speed,
        "summary": summary(report, speed),
        "vocabulary_parameters": vocabulary_share(teacher.model.config.model_dump()),
        "analysis": report,
        "settings": vars(args),
        "seconds": time.time() - started,
    }
    out = Path(args.results)
    write_json(out / "semcom.json", res)
    write_text(out / "semcom.md", markdown(res))
    print(markdown(res))
    print(json.dumps({"seconds": res["seconds"]}))


if __name__ == "__main__":
    main()
