"""Binding-site supervision benchmark (issue 45): residue site prediction learned from the 5,751
labelled chains of ../shared/data/ppi/interface_sites, and the interface maps built on it.

    python benchmarks/sites.py --teacher ../shared/models/esm2_t6_8M_standin [--pair-model RUN]

Stages (each result kept in --work, so a rerun skips what is done): teacher residue states
(cached once, float16); amino-acid propensity (fitted on train); the teacher site head (train
split, best val epoch); site KD into an interaction student's residue encoder (teacher
probabilities + labels); a learning curve of the teacher head (500 / 1,500 / 5,193 train chains);
val AUROC / AUPR pooled, per chain and by PPBS subset; per-residue throughput of teacher and
student in this process. Then the DIPS complexes of ../shared/data/ppi/interfaces_dips scored like
benchmarks/interfaces.py: site maps s_a[i] + s_b[j] of each site model, and (with --pair-model, an
interaction run) the combined map with the student's pairing term at a fixed weight and at a
weight chosen on the training folds. Results: benchmarks/results/interfaces/sites.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import date
from pathlib import Path

import torch

from protdistill.alphabet import encode
from protdistill.io.atomic import write_json
from protdistill.io.contacts import read_complexes
from protdistill.io.sites import read_sites
from protdistill.students.interaction import InteractionConfig, InteractionStudent
from protdistill.tasks.ppi.interfaces import metrics as im
from protdistill.tasks.ppi.interfaces.complexes import student_map
from protdistill.tasks.ppi.run.student import load_student
from protdistill.tasks.ppi.sites import kd
from protdistill.tasks.ppi.sites import metrics as sm
from protdistill.tasks.ppi.sites.maps import choose_weight, combine
from protdistill.tasks.ppi.sites.model import load_site_model, save_site_model, site_logits
from protdistill.tasks.ppi.sites.states import fill_states, load_states, open_states
from protdistill.tasks.ppi.sites.teacher_head import TeacherSiteHead
from protdistill.tasks.ppi.sites.training import SiteTrainConfig, predict_logits
from protdistill.teachers.esm import EsmTeacher

ROOT = Path(__file__).resolve().parents[1]
SITES = ROOT.parent / "shared" / "data" / "ppi" / "interface_sites"
DIPS = ROOT.parent / "shared" / "data" / "ppi" / "interfaces_dips"
OUT = ROOT / "benchmarks" / "results" / "interfaces" / "sites.json"
CURVE = (500, 1500)
#: (name, weight of the teacher's probabilities, interaction-student hyper-parameters, training
#: settings beyond the default)
STUDENTS = (
    ("student_site_kd", 0.5, {}, {}),
    ("student_labels_only", 0.0, {}, {}),
    ("student_site_kd_wide", 0.5, {"channels": 128, "layers": 5}, {}),
    ("student_site_kd_cosine", 0.5, {}, {"schedule": "cosine"}),
    ("student_site_kd_features", 0.5, {}, {"feature_weight": 1.0}),
    ("student_site_kd_wide_features_cosine", 0.5, {"channels": 128, "layers": 5},
     {"feature_weight": 1.0, "schedule": "cosine"}),
)  # fmt: skip


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def head_stage(teacher, chains, args, cfg, n_train=None) -> tuple:
    """The teacher head (trained once per train size, kept in --work) and its val metrics."""
    path = Path(args.work) / f"teacher_head_{n_train or 'all'}.pt"
    chosen = list(chains)
    if n_train is not None:
        train = kd.split(chains, "train")
        keep = {c.id for c in random.Random(0).sample(train, n_train)}
        chosen = [c for c in chains if c.split == "val" or c.id in keep]
    if path.exists():
        saved = torch.load(path, weights_only=False)
        head = TeacherSiteHead(teacher.hidden_size)
        head.load_state_dict(saved["state"])
        return head.eval(), saved["history"], saved["probs"]
    head, history, probs = kd.teacher_site_head(teacher, chosen, args.cache, cfg, log)
    torch.save({"state": head.state_dict(), "history": history, "probs": probs}, path)
    return head, history, probs


def student_stage(chains, probs, args, cfg, name: str, alpha: float, arch: dict, extra: dict):
    folder = Path(args.work) / name
    if (folder / "site_model.safetensors").exists():
        model, meta = load_site_model(folder)
        return model, meta["history"]
    torch.manual_seed(0)
    encoder = InteractionStudent(InteractionConfig(**arch))
    states = None
    if extra.get("feature_weight"):  # the teacher's states of the train chains (cached)
        train = kd.split(chains, "train")
        cache = open_states(EsmTeacher(args.teacher), args.cache, readonly=True)
        states = dict(zip((c.id for c in train), load_states(cache, [c.seq for c in train]),
                          strict=True))  # fmt: skip
    model, history = kd.distil_sites(
        encoder, chains, probs if alpha > 0 else None,
        cfg.model_copy(update={"alpha": alpha, **extra}), log, states=states,
    )  # fmt: skip
    save_site_model(folder, model, {"student": encoder.cfg.model_dump(), "history": history})
    return model, history


def teacher_throughput(teacher, val, n: int = 60) -> float:
    """Residues per second of teacher forward + head on ``n`` val chains (this process)."""
    seqs = [c.seq for c in val[:n]]
    start = time.perf_counter()
    with torch.no_grad():
        teacher.embed(seqs)
    return sum(map(len, seqs)) / (time.perf_counter() - start)


def residue_part(teacher, chains, args) -> tuple[dict, dict]:
    cfg = SiteTrainConfig(epochs=args.head_epochs)
    val = kd.split(chains, "val")
    report = {"propensity": kd.propensity_baseline(chains)}
    log(f"propensity val AUROC {report['propensity']['auroc']:.4f}")
    head, history, probs = head_stage(teacher, chains, args, cfg)
    states = kd.val_states(teacher, chains, args.cache)
    report["teacher_head"] = {**kd.evaluate_sites(head, states, val), "training": history}
    report["teacher_head"]["residues_per_s_teacher_forward"] = teacher_throughput(teacher, val)
    report["teacher_head"]["parameters"] = {
        "teacher": sum(p.numel() for p in teacher.model.parameters()),
        "head": sum(p.numel() for p in head.parameters()),
    }
    log(f"teacher head val AUROC {report['teacher_head']['auroc']:.4f}")
    scfg = SiteTrainConfig(epochs=args.student_epochs, lr=3e-3)
    models = {"teacher_head": head}
    for name, alpha, arch, extra in STUDENTS:
        if name not in args.students:
            continue
        model, hist = student_stage(chains, probs, args, scfg, name, alpha, arch, extra)
        tokens = [encode(c.seq) for c in val]
        report[name] = {**kd.evaluate_sites(model, tokens, val), "training": hist}
        report[name]["retention_of_teacher_margin"] = kd.retention(
            report[name], report["teacher_head"]
        )
        report[name]["parameters_used"] = sum(
            v.numel() for k, v in model.state_dict().items()
            if not k.startswith(("encoder.query", "encoder.head", "encoder.map_bias"))
            and "running" not in k and "num_batches" not in k
        )  # fmt: skip
        models[name] = model
        log(f"{name} val AUROC {report[name]['auroc']:.4f}")
    report["learning_curve_teacher_head"] = {"5193": report["teacher_head"]["auroc"]}
    for n in CURVE:
        h, _, _ = head_stage(teacher, chains, args, cfg, n_train=n)
        report["learning_curve_teacher_head"][str(n)] = sm.site_metrics(
            predict_logits(h, states), [c.labels for c in val]
        )["auroc"]
        log(f"learning curve {n}: {report['learning_curve_teacher_head'][str(n)]:.4f}")
    return report, models


def dips_part(teacher, chains, models, args) -> dict:
    """Site maps and combined maps on the DIPS complexes, scored like benchmarks/interfaces.py."""
    cx = read_complexes(
        DIPS / "sequences.fasta", DIPS / "pairs.tsv", DIPS / "contacts.tsv", DIPS / "complexes.tsv"
    )
    seqs = sorted({s for c in cx for s in (c.seq_a, c.seq_b)})
    cache = open_states(teacher, args.cache)
    fill_states(teacher, cache, seqs)
    train = kd.split(chains, "train")
    prop = sm.fit_site_propensity([c.seq for c in train], [c.labels for c in train])
    profiles = {"propensity_ppbs": {s: torch.tensor(sm.propensity_scores(s, prop)) for s in seqs}}
    head_scores = predict_logits(models["teacher_head"], load_states(cache, seqs))
    profiles["teacher_head"] = {
        s: torch.from_numpy(x) for s, x in zip(seqs, head_scores, strict=True)
    }
    for name in (n for n in models if n.startswith("student")):
        logits = site_logits(models[name], seqs)
        profiles[name] = dict(zip(seqs, logits, strict=True))
    maps = {f"sites_{k}": [combine(p[c.seq_a], p[c.seq_b], None) for c in cx]
            for k, p in profiles.items()}  # fmt: skip
    if args.pair_model:
        maps.update(combined_maps(cx, profiles, args.pair_model))
    results = {}
    for name, per in maps.items():
        rows = [
            {**im.score_map(m, c), "homodimer": c.homodimer} for m, c in zip(per, cx, strict=True)
        ]
        results[name] = im.summarise(rows)
        a = results[name]
        hetero, x = a["heterodimers"]["interface_auroc"], a["all"].get("top_l10_x_random", 0)
        log(
            f"DIPS {name}: AUROC {a['all']['interface_auroc']:.3f} "
            f"hetero {hetero:.3f} L/10 x{x:.1f}"
        )
    return {
        "complexes": len(cx),
        "heterodimers": sum(not c.homodimer for c in cx),
        "results": results,
    }


def combined_maps(cx, profiles, pair_model) -> dict:
    """Pairing term of an interaction run + each student's site profiles: fixed weight 1 and a
    weight chosen per PDB fold on the other folds (mean interface AUROC + top-L/10 / random)."""
    pair_fn = student_map(load_student(pair_model)[0])
    pairing = [pair_fn(c) for c in cx]
    folds = im.pdb_folds(cx)
    out = {"pairing_only": pairing}
    for name, p in profiles.items():

        def build(i: int, w: float, p=p) -> torch.Tensor:
            return combine(p[cx[i].seq_a], p[cx[i].seq_b], pairing[i], w)

        def score(m: torch.Tensor, i: int) -> float:
            s = im.score_map(m, cx[i])
            return s["interface_auroc"] + s["top_l10"] / max(s["random_precision"], 1e-9) / 10

        out[f"combined_{name}_w1"] = [build(i, 1.0) for i in range(len(cx))]
        chosen = [None] * len(cx)
        for f in sorted(set(folds)):
            w = choose_weight(score, build, [i for i, g in enumerate(folds) if g != f])
            for i in (i for i, g in enumerate(folds) if g == f):
                chosen[i] = build(i, w)
        out[f"combined_{name}_cv_weight"] = chosen
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--cache", default=str(ROOT / "runs" / "sites_cache"))
    ap.add_argument("--work", default=str(ROOT / "runs" / "sites_bench"))
    ap.add_argument("--pair-model", help="an interaction run: its map is the pairing term")
    ap.add_argument("--head-epochs", type=int, default=8)
    ap.add_argument("--student-epochs", type=int, default=8)
    ap.add_argument("--students", nargs="+", default=[s[0] for s in STUDENTS])
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    torch.set_num_threads(1)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    start = time.time()
    chains = read_sites(SITES)
    teacher = EsmTeacher(args.teacher)
    residues, models = residue_part(teacher, chains, args)
    dips = dips_part(teacher, chains, models, args)
    report = {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, 1 torch thread, no GPU, 2 CPU cores shared",
        "teacher": f"{args.teacher} (stand-in teacher)",
        "data": "interface_sites: ScanNet PPBS val + test subsets (jertubiana/ScanNet@7685549)",
        "train_chains": len(kd.split(chains, "train")),
        "val_chains": len(kd.split(chains, "val")),
        "val_split_use": "model selection (best epoch) and the figures below",
        "residues_val": residues,
        "dips": dips,
        "pair_model": args.pair_model,
        "seconds": round(time.time() - start, 1),
    }
    write_json(args.out, report)
    print(json.dumps({k: v.get("auroc") for k, v in residues.items() if isinstance(v, dict)}))


if __name__ == "__main__":
    main()
