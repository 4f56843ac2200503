"""What the student keeps of the teacher, beyond its own head's scores: the teacher head applied
to the student's projected embeddings ("head transplant"), the cosine of those embeddings to the
teacher's on proteins the student never saw, and retention above chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from protdistill.alphabet import encode_batch
from protdistill.distill.checkpoint import load_model_state
from protdistill.distill.losses import FeatureProjector
from protdistill.io.pairs import Pair
from protdistill.tasks.ppi.common.metrics import binary_metrics, ranking_scores
from protdistill.tasks.ppi.run.prepare import proteins_of
from protdistill.tasks.ppi.run.teacher import load_teacher_head, standard_stats
from protdistill.tasks.ppi.run.train import PROJECTOR


def retention(student_aupr: float, teacher_aupr: float, prior: float) -> dict[str, float]:
    """R = (student - prior) / (teacher - prior): the share of the teacher's margin over chance
    the student keeps (a raw ratio hides the gap); prior = fraction of positives."""
    margin = teacher_aupr - prior
    return {
        "prior": prior,
        "aupr_ratio": student_aupr / teacher_aupr if teacher_aupr else float("nan"),
        "R": (student_aupr - prior) / margin if margin > 0 else float("nan"),
    }


def retention_interval(
    labels: np.ndarray, student: np.ndarray, teacher: np.ndarray, resamples: int = 1000
) -> list[float]:
    """Paired percentile-bootstrap 95% interval of R: the same resampled pairs score both
    models (on a few hundred test pairs the teacher's own margin over chance is uncertain)."""
    idx = np.random.default_rng(0).integers(0, len(labels), size=(resamples, len(labels)))
    _, s_ap = ranking_scores(labels[idx], student[idx])
    _, t_ap = ranking_scores(labels[idx], teacher[idx])
    prior = labels[idx].mean(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(t_ap > prior, (s_ap - prior) / (t_ap - prior), np.nan)
    return [float(v) for v in np.nanpercentile(r, [2.5, 97.5])]


@torch.no_grad()
def student_embeddings(
    model, sequences: dict[str, str], ids: list[str], max_residues: int, batch: int = 64
) -> dict[str, torch.Tensor]:
    """Pooled student embedding (D,) per protein id."""
    model.eval()
    out: dict[str, torch.Tensor] = {}
    for i in range(0, len(ids), batch):
        chunk = ids[i : i + batch]
        tokens, mask = encode_batch([sequences[p] for p in chunk], max_residues)
        # the pooled embedding as the pair forward computes it (any pair student)
        out.update(zip(chunk, model(tokens, mask, tokens, mask).embedding_a, strict=True))
    return out


def transplant_report(
    run_dir: Path,
    model,
    teacher_emb: dict[str, torch.Tensor],
    sequences: dict[str, str],
    split: dict[str, list[Pair]],
    max_residues: int,
) -> dict | None:
    """Head-transplant metrics on the test pairs and the embedding cosine on the test proteins
    (standardised with the training proteins' statistics, as feature KD saw them); None when the
    run has no feature-KD projector and the student is not as wide as the teacher."""
    head_path = run_dir / "teacher" / "head.safetensors"
    teacher_dim = next(iter(teacher_emb.values())).shape[0]
    projector = _projector(run_dir / "student" / PROJECTOR, model, teacher_dim)
    if projector is None or not head_path.exists():
        return None
    mean, sd = standard_stats(teacher_emb, proteins_of(split["train"]))  # as feature KD saw them
    test_ids = sorted(proteins_of(split["test"]))
    with torch.no_grad():
        emb = student_embeddings(model, sequences, test_ids, max_residues)
        projected = {p: projector(v) for p, v in emb.items()}
    cos = [
        torch.nn.functional.cosine_similarity(projected[p], (teacher_emb[p] - mean) / sd, dim=0)
        for p in test_ids
    ]
    head = load_teacher_head(run_dir)
    test = split["test"]
    with torch.no_grad():
        a = torch.stack([projected[p.a] * sd + mean for p in test])
        b = torch.stack([projected[p.b] * sd + mean for p in test])
        probs = head(a, b).softmax(-1)[:, 1].numpy()
    labels = np.array([int(p.label) for p in test])
    cos_values = torch.stack(cos).numpy()
    return {
        "head_transplant": binary_metrics(labels, probs),
        "embedding_cosine_test_proteins": {
            "mean": float(cos_values.mean()),
            "min": float(cos_values.min()),
            "n": len(test_ids),
        },
    }


def _projector(path: Path, model, teacher_dim: int) -> FeatureProjector | None:
    """The run's feature-KD projector; an identity one for a student as wide as the teacher
    (feature KD then compares its embedding directly and saves no weights file)."""
    if path.exists():
        return FeatureProjector.from_state(load_model_state(path)[0])
    if getattr(model, "embedding_dim", None) == teacher_dim:
        return FeatureProjector(teacher_dim, teacher_dim)
    return None
