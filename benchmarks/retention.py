"""Retention benchmark (issue 14): general distillation on unlabelled proteins, then task
distillation, against the same student without it, on the Guo protein-disjoint split.

    python benchmarks/retention.py --teacher ../shared/models/esm2_t6_8M_standin \
        --jobs pretrain_all:0 baseline:0 pretrain_all:1 pretrain_all:2 ...

Each job is VARIANT:STUDENT_SEED and runs `ppi run` into runs/retention/VARIANT/seedK (a killed
benchmark resumes: finished runs are read back, a half-done one continues). All runs share the
split (seed 0), the teacher head and the teacher cache; pretrained variants with the same
transfer set share one backbone (content-addressed), so student seeds vary task distillation
only (`split1_*` jobs: the same on split seed 1, with its own head and backbone). Results:
benchmarks/results/ppi/retention_guo_yeast.json (rewritten after every job);
`bernett_*` jobs and `--bernett-subset` write benchmarks/results/ppi/retention_bernett_full.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PPI = SHARED / "data" / "ppi"
TRANSFER = [
    PPI / d / "sequences.fasta"
    for d in ("guo_yeast", "bernett", "martin_hpylori", "interfaces_dips")
]
#: ~1.4 M parameters (the default student has ~0.35 M).
MEDIUM = {"channels": [96, 128, 192, 256], "embed_dim": 48, "hidden": 256}
#: ~5.5 M parameters.
LARGE = {"channels": [192, 256, 384, 512], "embed_dim": 64, "hidden": 512}
#: General distillation on every protein of ../shared/data/ppi (test proteins left out), with
#: random crops: the recipe the ablations below were measured with (4 pretraining epochs, the
#: --pretrain-epochs of this script). The default recipe of `ppi run` is
#: ``pretrain_all_no_crops_e32`` (crops start at residue 0, 32 epochs; chosen on validation).
ALL = {"transfer_fasta": [str(p) for p in TRANSFER], "random_crops": True}
VARIANTS: dict[str, dict] = {
    "baseline": {},
    "pretrain_all": ALL,
    "pretrain_run_proteins": {"pretrain": True, "random_crops": True},
    "pretrain_all_no_residue_kd": ALL | {"residue_weight": 0.0},
    "pretrain_all_no_crops": ALL | {"random_crops": False},
    "pretrain_all_e16": ALL | {"pretrain_epochs": 16},
    "pretrain_all_enc_lr0.1": ALL | {"encoder_lr_scale": 0.1},
    "pretrain_all_enc_frozen": ALL | {"encoder_lr_scale": 0.0},
    "pretrain_all_maxmean_pool": ALL | {"student_config": {"pool": "max+mean"}},
    "baseline_m": {"student_config": MEDIUM},
    "pretrain_all_m": ALL | {"student_config": MEDIUM},
    "baseline_l": {"student_config": LARGE},
    "pretrain_all_l": ALL | {"student_config": LARGE},
    # the teacher's first layer as the encoder (sdpa attention is ~40x the FLOPs of the default
    # student per residue, so crops of 256 and 3 epochs keep it to about an hour on one core)
    "esm1": {
        "student": "esm",
        "student_config": {"num_layers": 1},
        "max_residues": 256,
        "epochs": 3,
    },  # fmt: skip
    "pretrain_all_transductive": ALL | {"transductive": True},
    # the student sees up to 1,024 residues (pretraining and task) instead of 512: 44% of Guo
    # proteins are longer than 512, and the teacher's embedding averages all of them
    "pretrain_all_no_crops_len1024": ALL | {"random_crops": False, "max_residues": 1024},
    # 8x the default's pretraining steps: how far the embedding cosine moves with compute
    "pretrain_all_no_crops_e32": ALL | {"random_crops": False, "pretrain_epochs": 32},
    # the same number of pretraining steps on a random quarter / half of the transfer set: how
    # the cosine on unseen proteins scales with the number of transfer proteins
    "pretrain_quarter_no_crops_s32": {"transfer_subset": 0.25, "random_crops": False,
                                      "pretrain_epochs": 128},
    "pretrain_half_no_crops_s32": {"transfer_subset": 0.5, "random_crops": False,
                                   "pretrain_epochs": 64},
}  # fmt: skip
#: Bernett full size: all 163k train.tsv pairs (validation: pairs of held-back train proteins),
#: val.tsv (59k pairs) as the test split; 2 epochs of the 5,000 steps each.
BERNETT = PPI / "bernett"
BERNETT_FULL = {"pairs": str(BERNETT / "train.tsv"), "fasta": str(BERNETT / "sequences.fasta"),
                "test_pairs": str(BERNETT / "val.tsv"), "epochs": 2}  # fmt: skip
#: A second Guo protein-disjoint split (split seed 1) to decide the random-crops default on
#: validation: each split has its own teacher head and (test proteins excluded) its own backbone.
VARIANTS |= {
    "split1_pretrain_all": VARIANTS["pretrain_all"] | {"seed": 1},
    "split1_pretrain_all_no_crops": VARIANTS["pretrain_all_no_crops"] | {"seed": 1},
    "split1_pretrain_all_no_crops_e32": VARIANTS["pretrain_all_no_crops_e32"] | {"seed": 1},
}
VARIANTS |= {
    "bernett_full": BERNETT_FULL,
    "bernett_full_pretrain_all": BERNETT_FULL | ALL,
    "bernett_full_pretrain_all_no_crops": BERNETT_FULL | ALL | {"random_crops": False},
    # the default recipe of `ppi run` since the eighth session (32 pretraining epochs)
    "bernett_full_pretrain_all_no_crops_e32": BERNETT_FULL
    | ALL
    | {"random_crops": False, "pretrain_epochs": 32},
}
OUT = ROOT / "benchmarks" / "results" / "ppi" / "retention_guo_yeast.json"
OUT_BERNETT = ROOT / "benchmarks" / "results" / "ppi" / "retention_bernett_full.json"


def results_file(name: str) -> Path:
    return OUT_BERNETT if name.startswith("bernett_") else OUT


def same_split(name: str) -> list[str]:
    """The variants whose runs share ``name``'s split and teacher head (copied, not retrained)."""
    prefixes = ("bernett_", "split1_")
    group = next((p for p in prefixes if name.startswith(p)), None)
    if group is None:
        return [v for v in VARIANTS if not v.startswith(prefixes)]
    return [v for v in VARIANTS if v.startswith(group)]


def variant_settings(name: str) -> dict:
    """A variant's `ppi run` settings (a ``transfer_subset`` fraction becomes its FASTA)."""
    settings = dict(VARIANTS[name])
    if "transfer_subset" in settings:
        settings["transfer_fasta"] = [transfer_subset(settings.pop("transfer_subset"))]
    return settings


def transfer_subset(fraction: float) -> str:
    """A FASTA of a fixed random ``fraction`` of the unique transfer sequences (chosen by sequence
    hash, so every call and machine draws the same ones); the run still drops test proteins."""
    import hashlib

    from protdistill.io.fasta import read_fasta, write_fasta

    path = ROOT / "runs" / "retention" / "transfer_subsets" / f"fraction{fraction}.fasta"
    if not path.exists():
        unique = {seq for f in TRANSFER for seq in read_fasta(f).values()}
        ranked = sorted(unique, key=lambda q: hashlib.sha256(q.encode()).hexdigest())
        chosen = ranked[: round(fraction * len(ranked))]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_fasta(path, {f"transfer{i}": q for i, q in enumerate(chosen)})
    return str(path)


def run_job(name: str, seed: int, args: argparse.Namespace) -> dict:
    from protdistill.config import resolve
    from protdistill.tasks.ppi.common.config import PpiConfig
    from protdistill.tasks.ppi.run.pipeline import run

    guo = PPI / "guo_yeast"
    settings = {
        "pairs": str(guo / "pairs.tsv"),
        "fasta": str(guo / "sequences.fasta"),
        "pretrain_epochs": args.pretrain_epochs,
    }
    cfg = resolve(
        PpiConfig,
        teacher=args.teacher,
        cache=str(args.cache),
        progress=False,
        student_seed=seed,
        **(settings | variant_settings(name)),
    )
    out = ROOT / "runs" / "retention" / name / f"seed{seed}"
    done = [ROOT / "runs" / "retention" / v / "seed0" for v in same_split(name)]
    done = [d for d in done if (d / "teacher" / "logits.safetensors").exists()]
    first = done[0] if done else out
    if out != first:
        for path in [first / "config.yaml", first / "split.json", *first.glob("teacher/*")]:
            target = out / path.relative_to(first)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    start = time.perf_counter()
    metrics = run(cfg, out, log=lambda m: print(f"[{name} s{seed}] {m}", flush=True))
    pretrain = out / "pretrain.json"
    backbone = json.loads(pretrain.read_text()).get("backbone") if pretrain.exists() else None
    report = Path(backbone) / "report.json" if backbone else None
    row = {
        "metrics": metrics,
        "wall_s_this_call": round(time.perf_counter() - start, 1),
        "run_dir": str(out.relative_to(ROOT)),
        "backbone_report": json.loads(report.read_text()) if report and report.exists() else None,
    }
    return row | {"best_val_ce": best_val_ce(row)}


def best_val_ce(row: dict) -> float | None:
    """The lowest validation cross-entropy of a run's task distillation (its best.ckpt): kept in
    the row, so the summary survives the run folder; read from its history for older rows."""
    if row.get("best_val_ce") is not None:
        return row["best_val_ce"]
    history = ROOT / row["run_dir"] / "student" / "history.json"
    if not history.exists():
        return None
    return min(h["val_ce"] for h in json.loads(history.read_text()) if "val_ce" in h)


def summarise(runs: dict[str, dict[str, dict]]) -> dict:
    """Mean / sd over student seeds of the figures the issue asks for."""
    out = {}
    for name, seeds in runs.items():
        rows = list(seeds.values())
        pick = {
            "student_auroc": lambda m: m["student"]["auroc"],
            "student_aupr": lambda m: m["student"]["aupr"],
            "R": lambda m: m["retention"]["R"],
            "aupr_ratio": lambda m: m["retention"]["aupr_ratio"],
            "transplant_auroc": lambda m: m["student_head_transplant"]["auroc"],
            "transplant_aupr": lambda m: m["student_head_transplant"]["aupr"],
            "R_transplant": lambda m: m["retention_head_transplant"]["R"],
            "embedding_cosine": lambda m: m["student"]["embedding_cosine_test_proteins"]["mean"],
        }
        entry = {"seeds": sorted(seeds), "n": len(rows)}
        values = [best_val_ce(r) for r in rows]
        if None not in values:  # what a variant is chosen by: validation, never the test split
            entry["val_ce"] = {"mean": float(np.mean(values)), "sd": float(np.std(values)),
                               "values": values}  # fmt: skip
        for key, get in pick.items():
            try:
                values = [get(r["metrics"]) for r in rows]
            except KeyError:  # no head transplant when the student is as wide as the teacher
                continue
            entry[key] = {"mean": float(np.mean(values)), "sd": float(np.std(values)),
                          "values": values}  # fmt: skip
        m = rows[0]["metrics"]
        entry["teacher"] = {"auroc": m["teacher"]["auroc"], "aupr": m["teacher"]["aupr"]}
        entry["prior"] = m["retention"]["prior"]
        entry["general_distillation"] = m["student"].get("general_distillation")
        out[name] = entry
    return out


def measure_speed(args: argparse.Namespace) -> dict:
    """Pairs/s from raw sequences of the teacher and of each student size, one fresh process
    each, one after the other in this call (benchmarks/ppi.py --throughput-one)."""
    import subprocess
    import sys

    models = {"teacher": ("teacher", "pretrain_all_no_crops"),
              "student_S": ("student", "pretrain_all_no_crops_e32"),  # the default recipe
              "student_S_e4": ("student", "pretrain_all_no_crops"),
              "student_S_len1024": ("student", "pretrain_all_no_crops_len1024"),
              "student_S_random_crops": ("student", "pretrain_all"),
              "student_M": ("student", "pretrain_all_m"),
              "student_L": ("student", "pretrain_all_l"),
              "student_esm1": ("student", "esm1")}  # fmt: skip
    reference = ROOT / "runs" / "retention" / "pretrain_all_no_crops" / "seed0"
    if not (reference / "student.safetensors").exists():
        raise SystemExit(f"--speed: no run in {reference} (the teacher is timed with its head); "
                         "run --jobs pretrain_all_no_crops:0 first")  # fmt: skip
    out = {}
    for name, (kind, variant) in models.items():
        run_dir = ROOT / "runs" / "retention" / variant / "seed0"
        if not (run_dir / "student.safetensors").exists():
            continue
        cmd = [sys.executable, str(ROOT / "benchmarks" / "ppi.py"), "--throughput-one", kind]
        cmd += ["--run-dir", str(run_dir), "--teacher", args.teacher, "--n-pairs", "200"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in [n for n in out if n != "teacher"]:
        out[name]["speedup_vs_teacher"] = out[name]["pairs_per_s"] / out["teacher"]["pairs_per_s"]
    return out


def bernett_subset_retention() -> dict:
    """R per seed of the Bernett subset benchmark (benchmarks/ppi.py --dataset bernett
    --protein-fraction 0.2), its prior taken from the subset's test pairs."""
    import random

    from protdistill.io.fasta import read_fasta
    from protdistill.io.pairs import read_pairs

    seqs = read_fasta(BERNETT / "sequences.fasta")
    keep = set(random.Random(0).sample(sorted(seqs), round(0.2 * len(seqs))))
    test = [p for p in read_pairs(BERNETT / "val.tsv", proteins=seqs)[0]
            if p.a in keep and p.b in keep]  # fmt: skip
    prior = float(np.mean([p.label for p in test]))
    data = json.loads((OUT.parent / "ppi_bernett_heldout.json").read_text())
    out = {"prior": prior, "n_test": len(test), "variants": {}}
    for name, v in data["variants"].items():
        teacher = v["metrics"]["teacher"]["aupr"]
        r = [(a - prior) / (teacher - prior) for a in v["metrics"]["student"]["aupr"]["values"]]
        out["variants"][name] = {"teacher_aupr": teacher, "R": r, "R_mean": float(np.mean(r)),
                                 "R_sd": float(np.std(r))}  # fmt: skip
    return out


def markdown_table(data: dict) -> str:
    """The BENCHMARKS.md table: mean ± sd over student seeds (sd 0 shown as one seed)."""
    cols = ["val_ce", "student_auroc", "student_aupr", "R", "transplant_auroc", "transplant_aupr",
            "R_transplant", "embedding_cosine"]  # fmt: skip
    head = "| variant | seeds | val CE | AUROC | AUPR | R | transplant AUROC | transplant AUPR "
    head += "| R transpl. | cosine (test proteins) |\n|---|---|---|---|---|---|---|---|---|---|\n"
    rows = []
    for name, entry in data.get("summary", {}).items():
        cells = [
            ""
            if c not in entry
            else f"{entry[c]['mean']:.3f} ± {entry[c]['sd']:.3f}"
            if entry["n"] > 1
            else f"{entry[c]['mean']:.3f}"
            for c in cols
        ]
        rows.append(f"| {name} | {entry['n']} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=str(SHARED / "models" / "esm2_t6_8M_standin"))
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "teacher_cache")
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--jobs", nargs="+", default=["pretrain_all:0", "baseline:0"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--speed", action="store_true", help="only measure pairs/s")
    parser.add_argument("--table", action="store_true", help="print the markdown table")
    parser.add_argument("--bernett-subset", action="store_true", help="R of the subset benchmark")
    args = parser.parse_args()
    if args.table:
        for path in (p for p in (OUT, OUT_BERNETT) if p.exists()):
            print(f"{path.name}:\n{markdown_table(json.loads(path.read_text()))}\n")
        return
    if args.bernett_subset:
        subset = bernett_subset_retention()
        _update(OUT_BERNETT, lambda data: data.update(bernett_subset=subset))
        print(json.dumps(subset, indent=1))
        return
    if args.speed:
        speed = measure_speed(args)
        _update(OUT, lambda data: _new_speed(data, speed))
        print(json.dumps(speed, indent=1))
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    for job in args.jobs:
        name, seed = job.split(":")
        result = run_job(name, int(seed), args)
        _record(name, seed, result, args)


def _update(path: Path, change) -> dict:
    """Read a results file, apply ``change`` to it and write it back, under a lock (two job
    queues may share the machine)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = ROOT / "runs" / "retention.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {"runs": {}}
        change(data)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data


def _new_speed(data: dict, speed: dict) -> None:
    """This call's timings become ``speed``; earlier calls' move to ``speed_history`` (ratios
    compare only within one call)."""
    if "speed" in data:
        data.setdefault("speed_history", []).append(data["speed"])
    data["speed"] = {**speed, "date": str(date.today()), "threads": 2}


def _record(name: str, seed: str, result: dict, args: argparse.Namespace) -> None:
    """Add one job to its results file."""

    def add(data: dict) -> None:
        data["runs"].setdefault(name, {})[f"seed{seed}"] = result
        data["summary"] = summarise(data["runs"])
        data["machine"] = f"{platform.machine()}, {platform.processor() or 'cpu'}, 2 cores, no GPU"
        data["date"] = str(date.today())
        data["teacher"] = f"{args.teacher} (stand-in teacher: ESM-2 8M architecture, fine-tuned)"

    data = _update(results_file(name), add)
    print(json.dumps({name: data["summary"][name]}, indent=1), flush=True)


if __name__ == "__main__":
    main()
