"""The `--sites DIR` stage of `ppi run`: teacher site head on the labelled chains of DIR, site KD
into a copy of the run's trained student (its residue features + a site head), val metrics.

RUN/sites/  teacher_head.safetensors   site_model.safetensors (what `ppi sites` loads)
            metrics.json               {"teacher_head": {...}, "student": {...}, "propensity": ...}
Resumable: a finished stage is read back; the teacher states go to the shared teacher cache.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

from torch import nn

from protdistill.alphabet import encode
from protdistill.distill.checkpoint import save_model
from protdistill.io.atomic import write_json
from protdistill.io.sites import read_sites
from protdistill.tasks.ppi.sites import kd
from protdistill.tasks.ppi.sites.model import save_site_model
from protdistill.tasks.ppi.sites.training import SiteTrainConfig
from protdistill.teachers.esm import EsmTeacher


def run_sites(
    sites_dir: str | Path,
    student: nn.Module,
    student_config: dict,
    teacher: EsmTeacher,
    out: str | Path,
    cache_root: str | Path,
    *,
    head_epochs: int = 8,
    student_epochs: int = 8,
    log: Callable[[str], None] = lambda _: None,
) -> dict:
    """Teacher head + site KD; writes ``out`` (RUN/sites) and returns its metrics."""
    out = Path(out)
    if (out / "metrics.json").exists() and (out / "site_model.safetensors").exists():
        return json.loads((out / "metrics.json").read_text())
    chains = read_sites(sites_dir)
    val = kd.split(chains, "val")
    log(f"sites: {len(chains) - len(val)} train / {len(val)} val chains from {sites_dir}")
    cfg = SiteTrainConfig(epochs=head_epochs)
    head, head_history, probs = kd.teacher_site_head(teacher, chains, cache_root, cfg, log)
    out.mkdir(parents=True, exist_ok=True)
    save_model(out / "teacher_head.safetensors", head, {"teacher": teacher.identity})
    metrics = {
        "sites_dir": str(sites_dir),
        "propensity": kd.propensity_baseline(chains),
        "teacher_head": kd.evaluate_sites(head, kd.val_states(teacher, chains, cache_root), val),
    }
    metrics["teacher_head"]["training"] = head_history
    scfg = SiteTrainConfig(epochs=student_epochs, lr=3e-3)
    model, history = kd.distil_sites(copy.deepcopy(student), chains, probs, scfg, log)
    metrics["student"] = {
        **kd.evaluate_sites(model, [encode(c.seq) for c in val], val),
        "training": history,
    }
    metrics["student"]["retention_of_teacher_margin"] = kd.retention(
        metrics["student"], metrics["teacher_head"]
    )
    save_site_model(out, model, {"student": student_config, "teacher": teacher.identity})
    write_json(out / "metrics.json", metrics)
    t, s = metrics["teacher_head"], metrics["student"]
    log(f"sites val AUROC: teacher head {t['auroc']:.3f}, student {s['auroc']:.3f}")
    return metrics
