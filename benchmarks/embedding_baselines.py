"""How much of the teacher's protein embedding a student carries, against what amino-acid
composition alone explains (issue 14's embedding-cosine target).

    python benchmarks/embedding_baselines.py --run runs/retention/pretrain_all_no_crops/seed0

On the run's test proteins (never in its training pairs or its transfer set), every prediction is
compared with the teacher's pooled embedding standardised with the training proteins' statistics,
as the run's metrics.json does (mean cosine over proteins):
- student: the run's final student through its feature-KD projector (metrics.json's figure);
- backbone: the general-distillation encoder through its own projector, before task distillation
  (its projector was fitted on the transfer set, standardised with the transfer set's statistics);
- *_ridge: the same linear probe for every representation: ridge regression to the standardised
  teacher embedding, fitted on the run's training proteins, its strength chosen on the validation
  proteins: from amino-acid composition + log length (22 numbers, no learning from the teacher),
  from the backbone's pooled embedding, from the final student's, and from the student's and the
  composition together (does the student carry anything composition does not?).
Writes benchmarks/results/ppi/embedding_baselines.json (one entry per run).
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import date
from pathlib import Path

import numpy as np
import torch

from protdistill.alphabet import AMINO_ACIDS

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "ppi" / "embedding_baselines.json"
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 1e4, 1e5)


def composition_features(seq: str) -> np.ndarray:
    """Amino-acid fractions (20), log length and its square."""
    counts = np.array([seq.count(a) for a in AMINO_ACIDS], dtype=float)
    n = max(len(seq), 1)
    return np.concatenate([counts / n, [np.log(n), np.log(n) ** 2]])


def mean_cosine(pred: np.ndarray, target: np.ndarray) -> float:
    num = (pred * target).sum(1)
    den = np.linalg.norm(pred, axis=1) * np.linalg.norm(target, axis=1) + 1e-12
    return float((num / den).mean())


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Weights of ridge regression with an unpenalised intercept (last row)."""
    x1 = np.c_[x, np.ones(len(x))]
    penalty = alpha * np.eye(x1.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(x1.T @ x1 + penalty, x1.T @ y)


def ridge_predict(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.c_[x, np.ones(len(x))] @ w


def linear_probe(features: dict[str, np.ndarray], target: dict[str, np.ndarray], ids: dict) -> dict:
    """Ridge from ``features`` to ``target``: fit on train ids, strength chosen on val, test."""
    feats = {k: np.stack([features[p] for p in v]) for k, v in ids.items()}
    mu, sd = feats["train"].mean(0), feats["train"].std(0) + 1e-8
    x = {k: (v - mu) / sd for k, v in feats.items()}
    y = {k: np.stack([target[p] for p in v]) for k, v in ids.items()}
    val = {a: mean_cosine(ridge_predict(x["val"], ridge_fit(x["train"], y["train"], a)), y["val"])
           for a in ALPHAS}  # fmt: skip
    alpha = max(val, key=val.get)
    w = ridge_fit(x["train"], y["train"], alpha)
    return {"alpha": alpha, "val_cosine": val[alpha],
            "test_cosine": mean_cosine(ridge_predict(x["test"], w), y["test"])}  # fmt: skip


def load_backbone_model(backbone: Path) -> tuple[torch.nn.Module, torch.nn.Module, object]:
    """(student with the backbone's encoder, its pretraining projector, target statistics)."""
    from protdistill.distill.losses import FeatureProjector
    from protdistill.students import build_student
    from protdistill.tasks.ppi.pretrain.general import init_from_backbone, load_backbone

    _, meta = load_backbone(backbone)
    student_cfg = {"kind": "resnet1d", **meta["student"]}
    model = build_student(student_cfg)
    loaded = init_from_backbone(model, student_cfg, backbone)
    proj_state = {k.removeprefix("projector."): v for k, v in loaded["state"].items()
                  if k.startswith("projector.")}  # fmt: skip
    return model.eval(), FeatureProjector.from_state(proj_state), loaded["stats"]


def backbone_cosine(pooled: dict[str, torch.Tensor], projector, stats, ids: list[str],
                    target: dict, mean: torch.Tensor, sd: torch.Tensor) -> float:  # fmt: skip
    """The backbone's projected embedding, un-standardised, then in the run's standardisation."""
    with torch.no_grad():
        pred = {p: (projector(pooled[p]) * stats.pooled_sd + stats.pooled_mean - mean) / sd
                for p in ids}  # fmt: skip
    return mean_cosine(np.stack([pred[p].numpy() for p in ids]),
                       np.stack([target[p] for p in ids]))  # fmt: skip


def evaluate_run(run: Path) -> dict:
    from protdistill.config import resolve
    from protdistill.io.fasta import read_fasta
    from protdistill.tasks.ppi.common.config import PpiConfig
    from protdistill.tasks.ppi.common.data import load_split
    from protdistill.tasks.ppi.run.prepare import proteins_of
    from protdistill.tasks.ppi.run.student import load_student
    from protdistill.tasks.ppi.run.teacher import embed_proteins, standard_stats
    from protdistill.tasks.ppi.run.transplant import student_embeddings

    cfg = resolve(PpiConfig, run / "config.yaml", progress=False)
    split = load_split(run / "split.json")
    seqs = dict(read_fasta(cfg.fasta).items())
    ids = {k: sorted(proteins_of(v)) for k, v in split.items()}
    emb = embed_proteins(cfg, run, {p: seqs[p] for v in ids.values() for p in v})
    mean, sd = standard_stats(emb, set(ids["train"]))  # as the run's metrics.json
    # a validation pair may hold a training protein: the probes fit on the others only
    ids["train"] = sorted(set(ids["train"]) - set(ids["val"]))
    target = {p: ((v - mean) / sd).numpy() for p, v in emb.items()}
    metrics = json.loads((run / "metrics.json").read_text())
    every = [p for v in ids.values() for p in v]
    composition = {p: composition_features(seqs[p]) for p in every}
    out = {
        "test_proteins": len(ids["test"]),
        "student": metrics["student"]["embedding_cosine_test_proteins"]["mean"],
        "composition_ridge": linear_probe(composition, target, ids),
    }
    with torch.no_grad():
        student = student_embeddings(load_student(run)[0], seqs, every, cfg.max_residues)
    student_np = {p: v.numpy() for p, v in student.items()}
    out["student_ridge"] = linear_probe(student_np, target, ids)
    both = {p: np.concatenate([student_np[p], composition[p]]) for p in every}
    out["student_and_composition_ridge"] = linear_probe(both, target, ids)
    pretrain = run / "pretrain.json"
    if pretrain.exists():
        backbone = Path(json.loads(pretrain.read_text())["backbone"])
        model, projector, stats = load_backbone_model(backbone)
        with torch.no_grad():
            pooled = student_embeddings(model, seqs, every, cfg.max_residues)
        out["backbone"] = backbone_cosine(pooled, projector, stats, ids["test"], target, mean, sd)
        out["backbone_ridge"] = linear_probe({p: v.numpy() for p, v in pooled.items()}, target, ids)
        out["backbone_dir"] = str(backbone)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, nargs="+", required=True, help="`ppi run` folders")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from protdistill.io.atomic import write_json

    data = json.loads(OUT.read_text()) if OUT.exists() else {"runs": {}}
    for run in args.run:
        result = evaluate_run(run)
        print(run, json.dumps(result, indent=1), flush=True)
        inside = run.resolve().is_relative_to(ROOT)
        data["runs"][str(run.resolve().relative_to(ROOT)) if inside else str(run)] = result
    machine = f"{platform.machine()}, {args.threads} thread(s), no GPU"
    data |= {"date": str(date.today()), "machine": machine}
    write_json(OUT, data)


if __name__ == "__main__":
    main()
