"""Heatmap of a student's A x B interaction map, with the top-scoring region marked."""

from __future__ import annotations

from pathlib import Path

import torch

from protdistill.alphabet import encode_batch
from protdistill.errors import InputError, ModelError
from protdistill.io.atomic import write_json
from protdistill.io.fasta import read_fasta
from protdistill.plotting import pyplot
from protdistill.tasks.ppi.run.student import load_student, max_residues_of
from protdistill.tasks.ppi.sites.figure import plot_combined
from protdistill.tasks.ppi.sites.model import load_site_model, site_logits
from protdistill.teachers.esm import EsmTeacher
from protdistill.teachers.pair_maps import teacher_pair_map

#: Both panels are drawn relative to their own mean: the spatial map loss teaches the student
#: *where* the teacher's contacts are, not their level, so absolute values are not comparable.
RELATIVE = "score relative to the pair's mean"


def top_region(prob_map: torch.Tensor, window: int = 9) -> tuple[int, int, float]:
    """(row, col, mean) of the ``window`` x ``window`` square with the highest mean probability."""
    w = min(window, *prob_map.shape)
    pooled = torch.nn.functional.avg_pool2d(prob_map[None, None], w, stride=1)[0, 0]
    flat = int(pooled.argmax())
    row, col = divmod(flat, pooled.shape[1])
    return row, col, float(pooled[row, col])


@torch.no_grad()
def interaction_probabilities(model, seq_a: str, seq_b: str, max_residues: int) -> tuple:
    """(La, Lb) sigmoid interaction map and the pair's interaction probability."""
    tokens_a, mask_a = encode_batch([seq_a], max_residues)
    tokens_b, mask_b = encode_batch([seq_b], max_residues)
    out = model.eval()(tokens_a, mask_a, tokens_b, mask_b)
    if out.interaction_map is None:
        raise ModelError(
            f"{type(model).__name__} has no interaction map",
            record="explain",
            fix="train with --student interaction to get residue-level maps",
        )
    return torch.sigmoid(out.interaction_map[0]), float(out.probability[0])


def plot_interaction(
    prob_map: torch.Tensor,
    path: str | Path,
    *,
    name_a: str,
    name_b: str,
    probability: float,
    window: int = 9,
    teacher_map: torch.Tensor | None = None,
    teacher_label: str = "ESM-2 map",
) -> dict:
    """Write the heatmap PNG (rows: residues of A, columns: residues of B; 1-based positions)."""
    plt = pyplot()
    row, col, score = top_region(prob_map, window)
    w = min(window, *prob_map.shape)
    panels = [("student interaction map", prob_map)]
    if teacher_map is not None:
        panels.append((f"teacher ({teacher_label})", teacher_map.float()))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 5), dpi=120, squeeze=False)
    for ax, (title, m) in zip(axes[0], panels, strict=True):
        la, lb = m.shape
        extent = (0.5, lb + 0.5, la + 0.5, 0.5)
        im = ax.imshow(
            _relative(m).numpy(),
            cmap="magma",
            aspect="auto",
            extent=extent,
            interpolation="nearest",
        )
        fig.colorbar(im, ax=ax, fraction=0.046, label=RELATIVE)
        ax.set_title(title, fontsize=9)
        if m is prob_map:
            ax.add_patch(plt.Rectangle((col + 0.5, row + 0.5), w, w, fill=False, ec="cyan", lw=1.5))
        ax.set_xlabel(f"{name_b} residue position")
        ax.set_ylabel(f"{name_a} residue position")
    fig.suptitle(
        f"{name_a} x {name_b}: P(interact) = {probability:.3f}; top region "
        f"{name_a}:{row + 1}-{row + w}, {name_b}:{col + 1}-{col + w}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return {
        "probability": probability,
        "top_region": {
            "a_start": row + 1,
            "a_end": row + w,
            "b_start": col + 1,
            "b_end": col + w,
            "mean_probability": score,
            "relative_to_pair_mean": score / float(prob_map.mean()),
        },
    }


def _relative(m: torch.Tensor) -> torch.Tensor:
    """A map relative to its mean (signed, APC-corrected teacher maps: z-scores)."""
    if float(m.min()) < 0:
        return (m - m.mean()) / m.std().clamp(min=1e-8)
    return m / m.mean().clamp(min=1e-12)


def explain_pair(
    model: str | Path,
    fasta: str | Path,
    a: str,
    b: str,
    out: str | Path,
    *,
    teacher: str | None = None,
    teacher_map: str = "clean",
    window: int = 9,
) -> dict:
    """Heatmap PNG of the student's interaction map for the pair ``a``, ``b`` (and, with
    ``teacher``, the teacher's full-length map by construction ``teacher_map``)."""
    sequences = read_fasta(fasta)
    for pid in (a, b):
        if sequences.resolve(pid) is None:
            raise InputError(
                f"protein {pid!r} is not in the FASTA",
                path=fasta,
                fix="pass ids that appear in the FASTA headers",
            )
    a, b = sequences.resolve(a), sequences.resolve(b)
    student, meta = load_student(model)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    prob_map, probability = interaction_probabilities(
        student, sequences[a], sequences[b], max_residues_of(meta)
    )
    shown = None
    if teacher:
        crop = max_residues_of(meta)  # the residues the student map covers
        shown = teacher_pair_map(
            EsmTeacher(teacher), sequences[a][:crop], sequences[b][:crop], teacher_map
        )
    info = plot_interaction(
        prob_map,
        out,
        name_a=a,
        name_b=b,
        probability=probability,
        window=window,
        teacher_map=shown,
        teacher_label=f"ESM-2, {teacher_map} map",
    )
    crop = max_residues_of(meta)  # the residues the student map covers
    info.update(_sites_figure(model, sequences[a][:crop], sequences[b][:crop], prob_map, Path(out),
                              a, b))  # fmt: skip
    write_json(Path(out).with_suffix(".json"), info)
    return info


def _sites_figure(model, seq_a: str, seq_b: str, prob_map, out: Path, a: str, b: str) -> dict:
    """A run trained with --sites: the combined map (pairing + both site profiles) as
    ``OUT.sites.png``; ``{}`` for runs without a site model."""
    try:
        sites, _ = load_site_model(model)
    except InputError:
        return {}
    site_a, site_b = site_logits(sites, [seq_a, seq_b])
    pairing = torch.logit(prob_map.clamp(1e-6, 1 - 1e-6))
    path = out.with_suffix(".sites.png")
    found = plot_combined(site_a, site_b, pairing, path, name_a=a, name_b=b)
    return {"sites": {"figure": str(path), **found}}
