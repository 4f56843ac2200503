"""Site supervision end to end: teacher states (cached once) -> teacher site head -> site KD into
a student's residue encoder -> validation metrics of both and the student's throughput."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from protdistill.alphabet import encode
from protdistill.io.sites import SiteChain
from protdistill.students.site import SiteStudent
from protdistill.tasks.ppi.sites import metrics as sm
from protdistill.tasks.ppi.sites.states import fill_states, load_states, open_states
from protdistill.tasks.ppi.sites.teacher_head import TeacherSiteHead, teacher_probabilities
from protdistill.tasks.ppi.sites.training import SiteTrainConfig, fit_sites, predict_logits
from protdistill.teachers.esm import EsmTeacher

Log = Callable[[str], None]


def split(chains: Sequence[SiteChain], name: str) -> list[SiteChain]:
    return [c for c in chains if c.split == name]


def teacher_site_head(
    teacher: EsmTeacher,
    chains: Sequence[SiteChain],
    cache_root: str | Path,
    cfg: SiteTrainConfig,
    log: Log = lambda _: None,
) -> tuple[TeacherSiteHead, dict, dict]:
    """Fit the head on the train chains' cached states; return it, its history and the teacher
    probabilities of every chain ``{id: (L,) tensor}`` (the soft targets of site KD)."""
    cache = open_states(teacher, cache_root)
    n = fill_states(teacher, cache, [c.seq for c in chains])
    log(f"teacher states: {n} computed, {len(chains) - n} from the cache")
    states = dict(zip((c.id for c in chains), load_states(cache, [c.seq for c in chains]),
                      strict=True))  # fmt: skip
    train, val = split(chains, "train"), split(chains, "val")
    torch.manual_seed(cfg.seed)
    head = TeacherSiteHead(teacher.hidden_size)
    head, history = fit_sites(
        head,
        ([states[c.id] for c in train], [c.labels for c in train], None),
        ([states[c.id] for c in val], [c.labels for c in val]),
        cfg,
        log,
    )
    probs = teacher_probabilities(head, [states[c.id] for c in chains])
    return head, history, dict(zip((c.id for c in chains), probs, strict=True))


def distil_sites(
    encoder: nn.Module,
    chains: Sequence[SiteChain],
    teacher_probs: dict[str, torch.Tensor] | None,
    cfg: SiteTrainConfig,
    log: Log = lambda _: None,
    states: dict[str, torch.Tensor] | None = None,
) -> tuple[SiteStudent, dict]:
    """Site KD into ``encoder`` (a student with ``residues``): teacher probabilities + labels
    (labels only when ``teacher_probs`` is None); with ``states`` (teacher residue states per
    chain id) and ``cfg.feature_weight`` > 0, also feature KD of those states."""
    train, val = split(chains, "train"), split(chains, "val")
    torch.manual_seed(cfg.seed)
    student = SiteStudent(encoder)
    soft = [teacher_probs[c.id] for c in train] if teacher_probs is not None else None
    targets = [states[c.id] for c in train] if states is not None else None
    return fit_sites(
        student,
        ([encode(c.seq) for c in train], [c.labels for c in train], soft, targets),
        ([encode(c.seq) for c in val], [c.labels for c in val]),
        cfg,
        log,
    )


def evaluate_sites(model: nn.Module, inputs: Sequence, chains: Sequence[SiteChain]) -> dict:
    """Val metrics (pooled, per chain, by PPBS subset) and residues per second of inference."""
    start = time.perf_counter()
    scores = predict_logits(model, inputs)
    seconds = time.perf_counter() - start
    out = sm.site_metrics(scores, [c.labels for c in chains], [c.subset for c in chains])
    out["residues_per_s"] = sum(len(c.seq) for c in chains) / max(seconds, 1e-9)
    return out


def propensity_baseline(chains: Sequence[SiteChain]) -> dict:
    """Amino-acid propensity fitted on train, scored on val."""
    train, val = split(chains, "train"), split(chains, "val")
    prop = sm.fit_site_propensity([c.seq for c in train], [c.labels for c in train])
    scores = [sm.propensity_scores(c.seq, prop) for c in val]
    return sm.site_metrics(scores, [c.labels for c in val], [c.subset for c in val])


def val_states(teacher: EsmTeacher, chains: Sequence[SiteChain], cache_root: str | Path) -> list:
    """Cached teacher states of the val chains (for timing and scoring the teacher head)."""
    cache = open_states(teacher, cache_root, readonly=True)
    return load_states(cache, [c.seq for c in split(chains, "val")])


def retention(student: dict, teacher: dict) -> float:
    return float(sm.margin_retention(student["auroc"], teacher["auroc"]))


def positives(chains: Sequence[SiteChain]) -> float:
    return float(np.mean([y for c in chains for y in c.labels]))
