"""Binary classification metrics (AUPR = average precision, never a trapezoid) and curve plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from protdistill.plotting import pyplot


def binary_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """AUROC, AUPR (average precision), accuracy, F1, MCC and n for labels in {0, 1}."""
    labels, probs = np.asarray(labels).astype(int), np.asarray(probs, dtype=float)
    pred = (probs >= threshold).astype(int)
    both = len(np.unique(labels)) == 2
    return {
        "auroc": float(skm.roc_auc_score(labels, probs)) if both else float("nan"),
        "aupr": float(skm.average_precision_score(labels, probs)) if both else float("nan"),
        "accuracy": float(skm.accuracy_score(labels, pred)),
        "f1": float(skm.f1_score(labels, pred, zero_division=0)),
        "mcc": float(skm.matthews_corrcoef(labels, pred)) if both else 0.0,
        "n": int(len(labels)),
    }


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
