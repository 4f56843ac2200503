"""Interface benchmark (issue 15): do teacher and student maps point at real interfaces?

    python benchmarks/interfaces.py --teacher ../shared/models/esm2_t6_8M_standin \
        --student contact_kd=runs/interfaces/student_contact \
        --student attention_kd=runs/interfaces/student_attention [--epochs 30]

On the DIPS complexes of ../shared/data/ppi/interfaces_dips (every inter-chain residue contact
< 6 Å), scores full-length maps of: teacher constructions (contact head on A+G25+B, both chain
orders, junction-masked + APC ("clean"), other linker lengths, all attention heads, attention heads
chosen on the training folds, residue-embedding similarity); the distilled interaction student
(trained on Guo pairs only, never on DIPS); students fine-tuned on DIPS contacts (from scratch and
from the distilled one); a probe on the teacher's residue embeddings; and the propensity and random
baselines. Everything fitted on DIPS is cross-validated over PDB entries (5 folds). Teacher maps
are cached per complex in --cache (resumable).
Results: benchmarks/results/interfaces/interfaces_dips.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from protdistill.io.atomic import torch_save, write_json
from protdistill.io.contacts import read_complexes
from protdistill.students.interaction import InteractionConfig, InteractionStudent
from protdistill.tasks.ppi.interfaces import metrics as im
from protdistill.tasks.ppi.interfaces.complexes import student_map
from protdistill.tasks.ppi.interfaces.training import InterfaceTrainConfig, cross_validate
from protdistill.tasks.ppi.run.student import load_student
from protdistill.teachers import pair_maps as pm
from protdistill.teachers.esm import EsmTeacher

ROOT = Path(__file__).resolve().parents[1]
DIPS = ROOT.parent / "shared" / "data" / "ppi" / "interfaces_dips"
OUT = ROOT / "benchmarks" / "results" / "interfaces" / "interfaces_dips.json"


def teacher_outputs(teacher: EsmTeacher, c, cache: Path) -> dict:
    """Raw teacher maps of one complex (cached: attention is the slow part)."""
    path = cache / f"{c.a}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    both = {}
    both["fwd"] = pm.contact_block(teacher, c.seq_a, c.seq_b)
    both["bwd"] = pm.contact_block(teacher, c.seq_b, c.seq_a).T
    for n in (10, 50):
        fwd = pm.contact_block(teacher, c.seq_a, c.seq_b, "G" * n)
        both[f"g{n}"] = 0.5 * (fwd + pm.contact_block(teacher, c.seq_b, c.seq_a, "G" * n).T)
    both["att"] = pm.attention_blocks(teacher, c.seq_a, c.seq_b).half()
    both["emb"] = pm.embedding_similarity(teacher, c.seq_a, c.seq_b)
    torch_save(path, both)
    return both


def head_choice(raw: list[dict], cx: list, train: list[int], k: int) -> list[int]:
    """The ``k`` attention heads with the best mean top-L/10 / random on training complexes."""
    heads = raw[0]["att"].shape[0]
    gain = np.zeros(heads)
    for i in train:
        for h in range(heads):
            s = im.score_map(raw[i]["att"][h].float(), cx[i])
            gain[h] += s["top_l10"] / max(s["random_precision"], 1e-9)
    return sorted(np.argsort(-gain)[:k].tolist())


def residue_probe(teacher: EsmTeacher, cx: list, folds: list[int]) -> list[torch.Tensor]:
    """Logistic regression on teacher residue states -> interface; map = score_a + score_b."""
    states = [[e.per_residue.numpy() for e in teacher.embed([c.seq_a, c.seq_b])] for c in cx]
    labels = []
    for c in cx:
        t = c.contact_matrix()
        labels.append([t.any(1).numpy(), t.any(0).numpy()])
    maps: list = [None] * len(cx)
    for f in sorted(set(folds)):
        train = [i for i in range(len(cx)) if folds[i] != f]
        x = np.concatenate([s for i in train for s in states[i]])
        y = np.concatenate([v for i in train for v in labels[i]])
        clf = LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced").fit(x, y)
        for i in (i for i in range(len(cx)) if folds[i] == f):
            sa, sb = (torch.tensor(clf.decision_function(s)) for s in states[i])
            maps[i] = sa[:, None] + sb[None, :]
    return maps


def table(path: str) -> str:
    """The results JSON as the markdown table of BENCHMARKS.md."""
    report = json.loads(Path(path).read_text())
    head = ("| map | all: top-L/10 (x random) | top-L/5 | interface AUROC | hetero: top-L/10 | "
            "AUROC | homo: top-L/10 | AUROC |")  # fmt: skip
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for name, g in report["results"].items():
        a, he, ho = g["all"], g["heterodimers"], g["homodimers"]
        lines.append(
            f"| {name} | {a['top_l10']:.3f} ({a.get('top_l10_x_random', 0):.1f}x) | "
            f"{a['top_l5']:.3f} | {a['interface_auroc']:.3f} | {he['top_l10']:.3f} | "
            f"{he['interface_auroc']:.3f} | {ho['top_l10']:.3f} | {ho['interface_auroc']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", metavar="JSON", help="only print the markdown table of a result")
    ap.add_argument("--teacher")
    ap.add_argument(
        "--student",
        action="append",
        default=[],
        metavar="NAME=RUN",
        help="a distilled interaction student (repeatable), e.g. contact_kd=runs/interfaces/x",
    )
    ap.add_argument("--cache", default="/work/cache/dips_maps")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    if not args.teacher:
        ap.error("--teacher is required")
    torch.set_num_threads(args.threads)
    start = time.time()
    cx = read_complexes(
        DIPS / "sequences.fasta", DIPS / "pairs.tsv", DIPS / "contacts.tsv", DIPS / "complexes.tsv"
    )
    folds = im.pdb_folds(cx)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    teacher = EsmTeacher(args.teacher)
    raw = [teacher_outputs(teacher, c, cache) for c in cx]
    seconds = {"teacher_maps": time.time() - start}
    maps: dict[str, list] = {
        "teacher_contact": [r["fwd"] for r in raw],
        "teacher_contact_apc": [pm.apc(r["fwd"]) for r in raw],
        "teacher_both_orders": [0.5 * (r["fwd"] + r["bwd"]) for r in raw],
        "teacher_clean": [pm.clean_map(0.5 * (r["fwd"] + r["bwd"])) for r in raw],
        "teacher_clean_linker10": [pm.clean_map(r["g10"]) for r in raw],
        "teacher_clean_linker50": [pm.clean_map(r["g50"]) for r in raw],
        "teacher_attention_all_heads": [r["att"].float().mean(0) for r in raw],
        "teacher_embedding_similarity": [r["emb"] for r in raw],
        "teacher_attention_cv_heads": [None] * len(cx),
        "propensity": [None] * len(cx),
    }
    chosen = {}
    for f in sorted(set(folds)):
        train = [i for i in range(len(cx)) if folds[i] != f]
        chosen[f] = head_choice(raw, cx, train, k=8)
        prop = im.fit_propensity(cx[i] for i in train)
        for i in (i for i in range(len(cx)) if folds[i] == f):
            maps["teacher_attention_cv_heads"][i] = raw[i]["att"][chosen[f]].float().mean(0)
            maps["propensity"][i] = im.propensity_map(cx[i], prop)
    t0 = time.time()
    maps["teacher_residue_probe"] = residue_probe(teacher, cx, folds)
    seconds["teacher_probe"] = time.time() - t0
    maps["diagonal"] = [im.diagonal_map(c) for c in cx]
    gen = torch.Generator().manual_seed(0)
    maps["random"] = [torch.rand(len(c.seq_a), len(c.seq_b), generator=gen) for c in cx]
    train_cfg = InterfaceTrainConfig(epochs=args.epochs, max_residues=256)
    for spec in args.student:
        name, _, run = spec.rpartition("=")
        name = name or "distilled"
        distilled = load_student(run)[0]
        maps[f"student_{name}"] = [student_map(distilled)(c) for c in cx]
        t0 = time.time()
        maps[f"student_{name}_then_supervised"] = cross_validate(distilled, cx, train_cfg)
        seconds[f"fine_tune_5_folds_from_{name}"] = time.time() - t0
    torch.manual_seed(0)
    t0 = time.time()
    scratch = InteractionStudent(InteractionConfig())
    maps["student_supervised_from_scratch"] = cross_validate(scratch, cx, train_cfg)
    seconds["fine_tune_5_folds_from_scratch"] = time.time() - t0
    results = {}
    for name, per_complex in maps.items():
        rows = [
            {**im.score_map(m, c), "homodimer": c.homodimer}
            for m, c in zip(per_complex, cx, strict=True)
        ]
        results[name] = im.summarise(rows)
    report = {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, CPU",
        "teacher": f"{args.teacher} (stand-in teacher)",
        "students": args.student,
        "complexes": len(cx),
        "heterodimers": sum(not c.homodimer for c in cx),
        "pdb_entries": len({c.pdb for c in cx}),
        "fine_tune": train_cfg.model_dump(),
        "attention_heads_chosen_per_fold": chosen,
        "seconds": seconds,
        "results": results,
    }
    write_json(args.out, report)
    for name, groups in results.items():
        line = " | ".join(
            f"{g}: L/10 {v['top_l10']:.3f} ({v.get('top_l10_x_random', 0):.1f}x) "
            f"L/5 {v['top_l5']:.3f} AUROC {v['interface_auroc']:.3f}"
            for g, v in groups.items()
        )
        print(f"{name:36s} {line}")
    print(json.dumps(seconds))


if __name__ == "__main__":
    main()
