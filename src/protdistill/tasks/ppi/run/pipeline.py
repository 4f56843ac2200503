"""The PPI flow, stage by stage (prepare -> teacher -> train -> evaluate); each stage skips work
whose output already exists, so a killed `ppi run` resumes where it stopped.

RUN_DIR/
  config.yaml            resolved PpiConfig            split.json        pairs per split
  data_report.json       validation summary            teacher/          head, logits, metrics
  pretrain.json          backbone used (general distillation) and its transfer set
  student/               checkpoints, metrics.csv, history.json
  student.safetensors    best student weights + config metadata
  metrics.json           {"teacher": {...}, "student": {...}, "sites": {...} with --sites}
  sites/                 with --sites: teacher site head, site model, metrics (tasks/ppi/sites)
  predictions_test.tsv   roc_curve.png  pr_curve.png  training_curves.png
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protdistill.distill.parallel import barrier, finish, launch, main_first
from protdistill.io.atomic import write_json
from protdistill.progress import Log, no_log
from protdistill.tasks.ppi.common.config import PpiConfig
from protdistill.tasks.ppi.run.backbone import run_backbone
from protdistill.tasks.ppi.run.evaluate import evaluate_run
from protdistill.tasks.ppi.run.prepare import prepare
from protdistill.tasks.ppi.run.student import load_student
from protdistill.tasks.ppi.run.teacher import (
    cache_root,
    distill_targets,
    embed_proteins,
    fit_teacher,
    load_teacher,
)
from protdistill.tasks.ppi.run.train import train_student
from protdistill.tasks.ppi.sites.stage import run_sites


def run(cfg: PpiConfig, run_dir: str | Path, *, log: Log = no_log) -> dict:
    """The whole pipeline; with ``folds > 1`` one sub-run per fold and a mean / sd summary."""
    run_dir = Path(run_dir)
    if cfg.folds > 1:
        return _run_folds(cfg, run_dir, log=log)
    return _run_single(cfg, run_dir, fold=0, log=log)


def _run_single(cfg: PpiConfig, run_dir: Path, *, fold: int, log: Log) -> dict:
    """Every stage in order. Under several ranks (``cfg.devices`` / ``num_nodes``): rank 0
    prepares and fits the teacher head first (the others read its files), teacher outputs are
    computed in per-rank shares, the student trains with DDP and rank 0 evaluates."""
    launch(cfg.scale)
    data, split = main_first(lambda: prepare(cfg, run_dir, fold=fold, log=log))
    barrier()  # every rank decides what is left to do from the same files
    needs_teacher = not (run_dir / "teacher" / "logits.safetensors").exists()
    needs_student = not (run_dir / "student.safetensors").exists()
    barrier()
    teacher, emb = None, {}
    if needs_teacher:
        teacher = load_teacher(cfg)
        emb = embed_proteins(cfg, run_dir, data.sequences, teacher, log=log)
    logits = main_first(lambda: fit_teacher(cfg, run_dir, emb, split, log=log))
    maps, feats, scores, backbone = None, None, None, None
    if needs_student:
        maps, feats, scores = distill_targets(cfg, run_dir, data, split, teacher, emb, log=log)
        backbone = main_first(lambda: run_backbone(cfg, run_dir, data, split, log=log))
    train_student(
        cfg, run_dir, data, split, logits, maps, feats,
        backbone=backbone, teacher_scores=scores, log=log,
    )  # fmt: skip
    if not finish().is_main:
        return {}
    metrics = evaluate_run(cfg, run_dir, data, split, logits, log=log)
    if cfg.sites:  # binding-site supervision (issue 45): teacher site head + site KD
        metrics["sites"] = _sites(cfg, run_dir, teacher, log)
        write_json(run_dir / "metrics.json", metrics)
    return metrics


def _sites(cfg: PpiConfig, run_dir: Path, teacher, log: Log) -> dict:
    student, meta = load_student(run_dir)
    return run_sites(
        cfg.sites, student, meta["student"], teacher or load_teacher(cfg), run_dir / "sites",
        cache_root(cfg, run_dir) / "site_states", log=log,
    )  # fmt: skip


def _run_folds(cfg: PpiConfig, run_dir: Path, *, log: Log) -> dict:
    per_fold = []
    for fold in range(cfg.folds):
        log(f"fold {fold + 1}/{cfg.folds}")
        per_fold.append(_run_single(cfg, run_dir / f"fold_{fold}", fold=fold, log=log))
    summary: dict = {"folds": cfg.folds}
    for model in per_fold[0]:
        keys = [k for k, v in per_fold[0][model].items() if type(v) in (int, float)]
        summary[model] = {
            k: {
                "mean": float(np.mean([f[model][k] for f in per_fold])),
                "sd": float(np.std([f[model][k] for f in per_fold])),
            }
            for k in keys
        }
    write_json(run_dir / "metrics.json", {"summary": summary, "per_fold": per_fold})
    return summary
