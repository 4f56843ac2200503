"""Residue-level site metrics (pooled and per chain, by subset) and the amino-acid propensity
baseline (per-residue log-odds fitted on training chains only)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from protdistill.alphabet import AMINO_ACIDS


def site_metrics(
    scores: Sequence[np.ndarray], labels: Sequence[Sequence[int]], groups: Sequence[str] = ()
) -> dict:
    """Pooled AUROC / AUPR over all residues, mean per-chain AUROC (chains with both classes),
    the positive rate (AUPR of a random ranking), and the same per group (e.g. PPBS subset)."""
    out = _block(scores, labels)
    if groups:
        out["by_group"] = {
            g: _block(
                [s for s, x in zip(scores, groups, strict=True) if x == g],
                [y for y, x in zip(labels, groups, strict=True) if x == g],
            )
            for g in sorted(set(groups))
        }
    return out


def _block(scores: Sequence[np.ndarray], labels: Sequence[Sequence[int]]) -> dict:
    s = np.concatenate([np.asarray(x, dtype=np.float64) for x in scores])
    y = np.concatenate([np.asarray(x) for x in labels])
    per_chain = [
        roc_auc_score(np.asarray(yy), np.asarray(ss, dtype=np.float64))
        for ss, yy in zip(scores, labels, strict=True)
        if 0 < sum(yy) < len(yy)
    ]
    both = 0 < y.sum() < len(y)
    return {
        "chains": len(scores),
        "residues": len(y),
        "positive_rate": float(y.mean()),
        "auroc": float(roc_auc_score(y, s)) if both else math.nan,
        "aupr": float(average_precision_score(y, s)) if both else math.nan,
        "per_chain_auroc": float(np.mean(per_chain)) if per_chain else math.nan,
    }


def fit_site_propensity(
    seqs: Sequence[str], labels: Sequence[Sequence[int]], pseudo: float = 1.0
) -> dict[str, float]:
    """Log-odds per amino acid of being a binding-site residue, relative to the base rate."""
    at = dict.fromkeys(AMINO_ACIDS, pseudo)
    seen = dict.fromkeys(AMINO_ACIDS, 2 * pseudo)
    for seq, flags in zip(seqs, labels, strict=True):
        for aa, flag in zip(seq, flags, strict=True):
            if aa in seen:
                seen[aa] += 1
                at[aa] += flag
    base = sum(at.values()) / sum(seen.values())
    prior = math.log(base / (1 - base))
    return {aa: math.log(at[aa] / (seen[aa] - at[aa])) - prior for aa in AMINO_ACIDS}


def propensity_scores(seq: str, propensity: dict[str, float]) -> np.ndarray:
    return np.array([propensity.get(aa, 0.0) for aa in seq])


def margin_retention(student_auroc: float, teacher_auroc: float) -> float:
    """(student AUROC - 0.5) / (teacher AUROC - 0.5): the share of the teacher's margin kept."""
    return (student_auroc - 0.5) / (teacher_auroc - 0.5)
