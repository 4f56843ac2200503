"""Binary classification metrics (AUPR = average precision, never a trapezoid) and curve plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from protdistill.plotting import pyplot


def binary_metrics(
    labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5, *, bootstrap: int = 1000
) -> dict:
    """AUROC, AUPR (average precision), accuracy, F1, MCC and n for labels in {0, 1}, with
    percentile-bootstrap 95% intervals of AUROC and AUPR (``bootstrap`` resamples of the pairs,
    seeded; 0 = none) and ``warnings`` when the figures cannot be trusted (few pairs, one class).
    """
    labels, probs = np.asarray(labels).astype(int), np.asarray(probs, dtype=float)
    pred = (probs >= threshold).astype(int)
    both = len(np.unique(labels)) == 2
    out = {
        "auroc": float(skm.roc_auc_score(labels, probs)) if both else float("nan"),
        "aupr": float(skm.average_precision_score(labels, probs)) if both else float("nan"),
        "accuracy": float(skm.accuracy_score(labels, pred)),
        "f1": float(skm.f1_score(labels, pred, zero_division=0)),
        "mcc": float(skm.matthews_corrcoef(labels, pred)) if both else 0.0,
        "n": int(len(labels)),
    }
    warnings = []
    if not both:
        warnings.append("only one class among the labels: AUROC and AUPR are undefined")
    if len(labels) < 100:
        warnings.append(f"only {len(labels)} pairs: the figures vary a lot with the sample")
    if both and bootstrap > 0:
        auroc, aupr = bootstrap_scores(labels, probs, bootstrap)
        out["auroc_ci95"] = [float(v) for v in np.nanpercentile(auroc, [2.5, 97.5])]
        out["aupr_ci95"] = [float(v) for v in np.nanpercentile(aupr, [2.5, 97.5])]
    if warnings:
        out["warnings"] = warnings
    return out


def ranking_scores(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise AUROC (tie-aware ranks) and average precision of ``(R, n)`` labels / scores;
    NaN for a row with one class. Matches scikit-learn when scores have no ties."""
    from scipy.stats import rankdata  # lazy: only the bootstrap needs it

    labels = labels.astype(float)
    n_pos = labels.sum(1)
    n_neg = labels.shape[1] - n_pos
    ranks = rankdata(probs, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = ((ranks * labels).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        order = np.argsort(-probs, axis=1, kind="stable")
        hits = np.take_along_axis(labels, order, axis=1)
        precision = np.cumsum(hits, 1) / np.arange(1, labels.shape[1] + 1)
        ap = (precision * hits).sum(1) / n_pos
    bad = (n_pos == 0) | (n_neg == 0)
    auroc[bad], ap[bad] = np.nan, np.nan
    return auroc, ap


def bootstrap_scores(
    labels: np.ndarray, probs: np.ndarray, resamples: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and AUPR of ``resamples`` bootstrap resamples of the pairs (seeded), in chunks of
    at most ~4 M cells so that 60k-pair test sets stay within a few hundred MB."""
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // max(1, len(labels)))
    parts = []
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, len(labels), size=(min(chunk, resamples - start), len(labels)))
        parts.append(ranking_scores(labels[idx], probs[idx]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def plot_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: str | Path
) -> list[Path]:
    """ROC and PR curves of each named model (``{name: (labels, probs)}``) as two PNGs."""
    plt = pyplot()

    out_dir = Path(out_dir)
    paths = []
    for kind in ("roc", "pr"):
        fig, ax = plt.subplots(figsize=(4.5, 4.2), dpi=120)
        for name, (labels, probs) in curves.items():
            if kind == "roc":
                x, y, _ = skm.roc_curve(labels, probs)
                score = skm.roc_auc_score(labels, probs)
                ax.plot(x, y, label=f"{name} (AUROC {score:.3f})")
            else:
                y, x, _ = skm.precision_recall_curve(labels, probs)
                score = skm.average_precision_score(labels, probs)
                ax.step(x, y, where="post", label=f"{name} (AP {score:.3f})")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], ls=":", c="grey")
            ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        else:
            ax.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
        ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
        fig.tight_layout()
        path = out_dir / f"{kind}_curve.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_history(history: list[dict], path: str | Path) -> Path:
    """Training curves: every logged ``train_*`` / ``val_*`` term per epoch."""
    plt = pyplot()

    keys = sorted({k for row in history for k in row if k.startswith(("train_", "val_"))})
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for key in keys:
        xs = [row.get("epoch", i) for i, row in enumerate(history) if key in row]
        ax.plot(xs, [row[key] for row in history if key in row], marker="o", ms=3, label=key)
    ax.set(xlabel="epoch", ylabel="value", title="Training curves")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
