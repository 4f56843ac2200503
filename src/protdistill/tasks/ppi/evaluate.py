"""Use a trained run: score labelled pairs, predict unlabelled ones, explain one pair."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from protdistill.io.atomic import write_json
from protdistill.io.pairs import write_pairs
from protdistill.tasks.ppi.data import load_ppi
from protdistill.tasks.ppi.pipeline import load_student, predict_pairs


def _run_dir(model: str | Path) -> Path:
    model = Path(model)
    return model if model.is_dir() else model.parent


def _max_residues(meta: dict) -> int:
    return int(meta.get("ppi", {}).get("max_residues", 1000))


def evaluate_pairs(
    model: str | Path,
    pairs: str | Path,
    fasta: str | Path,
    out: str | Path,
    *,
    teacher: str | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict:
    """Metrics of the student (and, with ``teacher``, the run's teacher) -> ``out/metrics.json``."""
    from protdistill.tasks.ppi.metrics import binary_metrics, plot_curves

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_ppi(pairs, fasta)
    student, meta = load_student(model)
    labels = torch.tensor([p.label for p in data.pairs]).numpy()
    probs = predict_pairs(student, data.pairs, data.sequences, max_residues=_max_residues(meta))
    metrics = {"student": binary_metrics(labels, probs.numpy())}
    curves = {"student": (labels, probs.numpy())}
    if teacher:
        t_probs = teacher_probabilities(_run_dir(model), teacher, data, out, log=log)
        metrics["teacher"] = binary_metrics(labels, t_probs.numpy())
        curves["teacher"] = (labels, t_probs.numpy())
    write_json(out / "metrics.json", metrics)
    plot_curves(curves, out)
    return metrics


def teacher_probabilities(run_dir: Path, teacher: str, data, out: Path, *, log) -> torch.Tensor:
    """(N,) probabilities of the run's teacher head on the teacher's (cached) embeddings."""
    from protdistill.config import resolve
    from protdistill.distill.checkpoint import load_model_state
    from protdistill.tasks.ppi.config import PpiConfig
    from protdistill.tasks.ppi.pipeline import embed_proteins
    from protdistill.tasks.ppi.teacher_head import TeacherHead, head_logits

    cfg = resolve(PpiConfig, run_dir / "config.yaml", teacher=teacher)
    state, meta = load_model_state(run_dir / "teacher" / "head.safetensors")
    head = TeacherHead(int(meta["dim"]), int(meta["hidden"]))
    head.load_state_dict(state)
    emb = embed_proteins(cfg, run_dir, data.sequences, log=log)
    return head_logits(head, emb, data.pairs).softmax(-1)[:, 1]


def predict_file(model: str | Path, pairs: str | Path, fasta: str | Path, out: str | Path) -> int:
    """Write ``protein_a protein_b probability`` for every pair; returns the number written."""
    data = load_ppi(pairs, fasta, require_labels=False)
    student, meta = load_student(model)
    probs = predict_pairs(student, data.pairs, data.sequences, max_residues=_max_residues(meta))
    rows = [(p.a, p.b, f"{s:.6f}") for p, s in zip(data.pairs, probs.tolist(), strict=True)]
    write_pairs(out, rows, ("protein_a", "protein_b", "probability"))
    return len(rows)


def explain_pair(
    model: str | Path,
    fasta: str | Path,
    a: str,
    b: str,
    out: str | Path,
    *,
    teacher: str | None = None,
    window: int = 9,
) -> dict:
    """Heatmap PNG of the student's interaction map for the pair ``a``, ``b``."""
    from protdistill.errors import InputError
    from protdistill.io.fasta import read_fasta
    from protdistill.tasks.ppi.explain import interaction_probabilities, plot_interaction

    sequences = read_fasta(fasta)
    for pid in (a, b):
        if pid not in sequences:
            raise InputError(
                f"protein {pid!r} is not in the FASTA",
                path=fasta,
                fix="pass ids that appear in the FASTA headers",
            )
    student, meta = load_student(model)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    prob_map, probability = interaction_probabilities(
        student, sequences[a], sequences[b], _max_residues(meta)
    )
    teacher_map = None
    if teacher:
        from protdistill.tasks.ppi.maps import pool_map
        from protdistill.teachers.esm import EsmTeacher

        cfg = meta.get("ppi", {})
        crop, bins = int(cfg.get("map_residues", 128)), int(cfg.get("map_bins", 32))
        raw = EsmTeacher(teacher).pair_map(sequences[a][:crop], sequences[b][:crop])
        teacher_map = pool_map(raw, crop, bins)
    info = plot_interaction(
        prob_map,
        out,
        name_a=a,
        name_b=b,
        probability=probability,
        window=window,
        teacher_map=teacher_map,
    )
    write_json(Path(out).with_suffix(".json"), info)
    return info
