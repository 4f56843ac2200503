"""The combined map of a pair as a figure: heatmap of ``s_a[i] + s_b[j] + w z(P)[i, j]`` with its
top cells marked and the two site profiles (probabilities) along the axes."""

from __future__ import annotations

from pathlib import Path

import torch

from protdistill.plotting import pyplot
from protdistill.tasks.ppi.sites.maps import DEFAULT_WEIGHT, combine


def top_cells(score: torch.Tensor, k: int) -> list[tuple[int, int]]:
    """(row, col) of the ``k`` highest cells, best first (0-based)."""
    flat = torch.argsort(score.flatten(), descending=True, stable=True)[:k]
    return [divmod(int(i), score.shape[1]) for i in flat]


def plot_combined(
    site_a: torch.Tensor,
    site_b: torch.Tensor,
    pairing: torch.Tensor | None,
    path: str | Path,
    *,
    name_a: str,
    name_b: str,
    weight: float = DEFAULT_WEIGHT,
) -> dict:
    """Write the PNG; return the top L/10 cells (1-based) and the map's weight."""
    m = combine(site_a, site_b, pairing, weight)
    k = max(1, min(m.shape) // 10)
    cells = top_cells(m, k)
    plt = pyplot()
    fig = plt.figure(figsize=(6.4, 6.0), dpi=120)
    grid = fig.add_gridspec(2, 2, width_ratios=(1, 5), height_ratios=(1, 5), wspace=0.05,
                            hspace=0.05)  # fmt: skip
    main = fig.add_subplot(grid[1, 1])
    top = fig.add_subplot(grid[0, 1], sharex=main)
    left = fig.add_subplot(grid[1, 0], sharey=main)
    la, lb = m.shape
    main.imshow(m.numpy(), cmap="magma", aspect="auto", interpolation="nearest",
                extent=(0.5, lb + 0.5, la + 0.5, 0.5))  # fmt: skip
    main.scatter([c + 1 for _, c in cells], [r + 1 for r, _ in cells], s=12, facecolors="none",
                 edgecolors="cyan", linewidths=0.8, label=f"top L/10 ({k})")  # fmt: skip
    main.legend(loc="lower right", fontsize=7)
    main.set_xlabel(f"{name_b} residue position")
    main.tick_params(labelleft=False)
    top.plot(range(1, lb + 1), torch.sigmoid(site_b).numpy(), lw=0.8)
    top.set_ylim(0, 1)
    top.set_ylabel("site P", fontsize=7)
    top.tick_params(labelbottom=False, labelsize=7)
    left.plot(torch.sigmoid(site_a).numpy(), range(1, la + 1), lw=0.8)
    left.set_xlim(1, 0)
    left.set_ylabel(f"{name_a} residue position")
    left.tick_params(labelsize=7)
    paired = pairing is not None and weight > 0
    term = f"sites + {weight:g} x pairing (z)" if paired else "site profiles only"
    fig.suptitle(f"{name_a} x {name_b}: combined map ({term})", fontsize=9)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return {"weight": weight if paired else 0.0,
            "top_cells": [{"a": r + 1, "b": c + 1} for r, c in cells]}  # fmt: skip
