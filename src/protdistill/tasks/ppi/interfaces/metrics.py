"""Scoring residue-pair maps against the true contacts of solved complexes.

Per complex (L = length of the shorter chain): precision of the top L/10 and L/5 cells, each next
to the density of contacts (the expected precision of a random map), and the AUROC of per-residue
interface prediction (a residue of A is scored by its row maximum, one of B by its column maximum;
a residue is at the interface when it has any contact; A and B residues are ranked together).
(Each chain's maxima are z-scored before pooling, see :func:`interface_auroc`.)
The "propensity only" baseline scores cell (i, j) by p(a_i) + p(b_j), where p is the log-odds of an
amino acid being at an interface, fitted on training complexes only: what a map gets without any
pairing. The "diagonal" baseline scores (i, j) by how close their relative positions are: the
symmetry prior of homodimers. Folds group complexes by PDB entry (chains of one assembly never
straddle train/test).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from protdistill.io.contacts import Complex
from protdistill.tasks.ppi.sites.metrics import fit_site_propensity

TOP_FRACTIONS = {"top_l10": 10, "top_l5": 5}


def score_map(score: torch.Tensor, complex_: Complex) -> dict[str, float]:
    """Top-L/10, top-L/5 precision, their random expectation and interface-residue AUROC."""
    truth = complex_.contact_matrix()
    if score.shape != truth.shape:
        raise ValueError(f"map {tuple(score.shape)} does not match {tuple(truth.shape)} residues")
    score = score.float().nan_to_num(float("-inf"))
    flat, hits = score.flatten(), truth.flatten()
    order = torch.argsort(flat, descending=True, stable=True)
    shorter = min(truth.shape)
    out: dict[str, float] = {"random_precision": float(hits.float().mean())}
    for name, denom in TOP_FRACTIONS.items():
        k = max(1, shorter // denom)
        out[name] = float(hits[order[:k]].float().mean())
    out["interface_auroc"] = interface_auroc(score, truth)
    return out


def interface_auroc(score: torch.Tensor, truth: torch.Tensor) -> float:
    """AUROC of row / column maxima against "residue has a contact", A and B pooled.

    Each chain's maxima are z-scored first: a maximum over more cells is larger, so without it
    the longer partner's residues would rank apart from the shorter one's even in a random map.
    """
    residue_scores = torch.cat([_z(score.max(1).values), _z(score.max(0).values)]).numpy()
    labels = torch.cat([truth.any(1), truth.any(0)]).numpy()
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, np.nan_to_num(residue_scores, neginf=-1e30)))


def _z(values: torch.Tensor) -> torch.Tensor:
    finite = values[torch.isfinite(values)]
    if len(finite) < 2:
        return values
    return (values - finite.mean()) / finite.std().clamp(min=1e-12)


def pdb_folds(complexes: Sequence[Complex], folds: int = 5) -> list[int]:
    """Fold index per complex: PDB entries are dealt round-robin in the order of a stable hash."""
    pdbs = sorted({c.pdb for c in complexes}, key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    fold_of = {p: i % folds for i, p in enumerate(pdbs)}
    return [fold_of[c.pdb] for c in complexes]


def fit_propensity(complexes: Iterable[Complex], pseudo: float = 1.0) -> dict[str, float]:
    """Log-odds per amino acid of being an interface residue (Laplace-smoothed; X gets 0): the
    binding-site propensity of :mod:`sites.metrics`, with every chain's interface residues as
    its labels."""
    seqs, labels = [], []
    for c in complexes:
        truth = c.contact_matrix()
        seqs += [c.seq_a, c.seq_b]
        labels += [truth.any(1).tolist(), truth.any(0).tolist()]
    return fit_site_propensity(seqs, labels, pseudo)


def propensity_map(complex_: Complex, propensity: dict[str, float]) -> torch.Tensor:
    """``(La, Lb)`` map p(a_i) + p(b_j): per-residue scores, no pairing information."""
    pa = torch.tensor([propensity.get(aa, 0.0) for aa in complex_.seq_a])
    pb = torch.tensor([propensity.get(aa, 0.0) for aa in complex_.seq_b])
    return pa[:, None] + pb[None, :]


def diagonal_map(complex_: Complex) -> torch.Tensor:
    """``(La, Lb)`` map -|i/La - j/Lb|: residue i of A touches the same relative position of B.
    The symmetry prior of homodimers (whose interfaces often pair equivalent residues), learned
    from nothing: a map that does not beat it has not found interface signal."""
    la, lb = len(complex_.seq_a), len(complex_.seq_b)
    i = torch.arange(la, dtype=torch.float64)[:, None] / la
    j = torch.arange(lb, dtype=torch.float64)[None, :] / lb
    return -(i - j).abs()


def summarise(rows: Sequence[dict], keys: Sequence[str] | None = None) -> dict[str, dict]:
    """Means of each metric for all complexes, heterodimers and homodimers (``homodimer`` key),
    with top-k precision also as a multiple of random (ratio of means)."""
    keys = keys or ["top_l10", "top_l5", "random_precision", "interface_auroc"]
    groups = {
        "all": rows,
        "heterodimers": [r for r in rows if not r["homodimer"]],
        "homodimers": [r for r in rows if r["homodimer"]],
    }
    out = {}
    for name, members in groups.items():
        stats: dict[str, float] = {"complexes": len(members)}
        for key in keys:
            values = [r[key] for r in members if not math.isnan(r[key])]
            stats[key] = float(np.mean(values)) if values else float("nan")
        for key in TOP_FRACTIONS:
            if key in stats and stats.get("random_precision"):
                stats[f"{key}_x_random"] = stats[key] / stats["random_precision"]
        out[name] = stats
    return out
