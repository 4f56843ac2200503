"""Figures of residue-pair maps with the true contacts of a solved complex overlaid."""

from __future__ import annotations

from pathlib import Path

import torch

from protdistill.io.contacts import Complex
from protdistill.plotting import pyplot
from protdistill.tasks.ppi.interfaces import metrics as im


def plot_complex(complex_: Complex, maps: dict[str, torch.Tensor], path: str | Path) -> Path:
    """One panel per map (rows: chain A, columns: chain B, 1-based positions): the map as a
    z-scored heatmap, true contacts as open cyan circles, the top L/10 cells as white crosses."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 4.0), dpi=110, squeeze=False)
    contacts = complex_.contacts.numpy() + 1
    k = max(1, min(len(complex_.seq_a), len(complex_.seq_b)) // 10)
    la, lb = len(complex_.seq_a), len(complex_.seq_b)
    for ax, (name, m) in zip(axes[0], maps.items(), strict=True):
        m = m.float()
        z = (m - m.mean()) / m.std().clamp(min=1e-8)
        ax.imshow(
            z.clamp(-3, 3).numpy(), cmap="magma", aspect="auto", interpolation="nearest",
            extent=(0.5, lb + 0.5, la + 0.5, 0.5),
        )  # fmt: skip
        ax.scatter(
            contacts[:, 1], contacts[:, 0], s=9, facecolors="none", edgecolors="cyan", lw=0.6
        )
        top = torch.argsort(m.flatten(), descending=True)[:k]
        ax.scatter(top % lb + 1, top // lb + 1, s=14, marker="x", c="white", lw=0.8)
        score = im.score_map(m, complex_)
        ax.set_title(
            f"{name}\ntop-L/10 {score['top_l10']:.2f} (random {score['random_precision']:.3f}), "
            f"interface AUROC {score['interface_auroc']:.2f}",
            fontsize=8,
        )
        ax.set_xlabel(f"{complex_.b} residue")
        ax.set_ylabel(f"{complex_.a} residue")
    kind = "homodimer" if complex_.homodimer else "heterodimer"
    fig.suptitle(
        f"{complex_.name} ({kind}, PDB {complex_.pdb}): circles = true contacts (< 6 Å), "
        f"crosses = top {k} predicted",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
