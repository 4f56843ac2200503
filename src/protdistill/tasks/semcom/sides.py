"""Which side loses what: the teacher-minus-model BLEU-1 of each distilled part, per channel, SNR.

A student whose ``encoder`` part was distilled sends with a student transmitter to the teacher's
receiver, so its gap is what the transmitter lost; a ``decoder`` student (and the hybrid of a
``full`` run: teacher transmitter, student receiver) measures the receiver. For a ``full`` run the
transmitter's share is the full student's gap minus its hybrid's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from protdistill.io.atomic import atomic_path
from protdistill.plotting import pyplot

#: (column, kind, distill part) -> which side that model's gap measures.
SIDES = {
    "transmitter": ("student", "encoder"),
    "receiver": ("student", "decoder"),
    "full": ("student", "full"),
    "receiver_in_full": ("hybrid", "full"),
}


def _bleu1(model: dict[str, Any], channel: str) -> dict[float, float]:
    return {r["snr"]: r["bleu1"] for r in model["results"][channel]}


def side_gaps(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (channel, SNR, T): the teacher-minus-model BLEU-1 of each side present."""
    models = report["models"]
    teacher = models["teacher"]
    by_side: dict[tuple[str, float], dict[str, Any]] = {}
    for m in models.values():
        for side, (kind, part) in SIDES.items():
            if m["kind"] == kind and m["distill_part"] == part:
                by_side.setdefault((side, m["temperature"]), m)  # first run of that part and T
    rows = []
    temps = sorted({t for _, t in by_side})
    for ch in report["channels"]:
        ref = _bleu1(teacher, ch)
        for t in temps:
            for snr in report["snrs"]:
                row: dict[str, Any] = {"channel": ch, "snr": snr, "temperature": t}
                for side in SIDES:
                    m = by_side.get((side, t))
                    if m is not None:
                        row[side] = ref[snr] - _bleu1(m, ch)[snr]
                if "full" in row and "receiver_in_full" in row:
                    row["transmitter_in_full"] = row["full"] - row["receiver_in_full"]
                rows.append(row)
    return rows


def plot_sides(rows: list[dict[str, Any]], channels: list[str], path: Path) -> Path:
    """BLEU-1 lost by each side against SNR, one panel per channel (one line per side and T)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(channels), figsize=(5.5 * len(channels), 4), squeeze=False)
    sides = ("transmitter", "receiver", "transmitter_in_full", "receiver_in_full", "full")
    for j, ch in enumerate(channels):
        ax = axes[0][j]
        for t in sorted({r["temperature"] for r in rows}):
            sel = [r for r in rows if r["channel"] == ch and r["temperature"] == t]
            for side in sides:
                pts = [(r["snr"], r[side]) for r in sel if side in r]
                if pts:
                    ls = "--" if side.endswith("in_full") else "-"
                    ax.plot(*zip(*pts, strict=True), ls=ls, marker="o", ms=3,
                            label=f"{side.replace('_', ' ')} (T={t:g})")  # fmt: skip
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(f"{ch.upper()}: BLEU-1 lost (teacher - model)")
        ax.set_xlabel("SNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
