"""A trained site model on disk and per-residue site profiles of any sequences.

A site model is ``site_model.safetensors`` (a :class:`~protdistill.students.site.SiteStudent`:
a pair student's residue encoder + site head; its metadata hold the student config, the head
width and the training metrics), found in a folder or in ``RUN/sites/`` of a `ppi run --sites`.
Long sequences are windowed like the teacher's: overlapping windows, per-residue average.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from protdistill.alphabet import encode_batch
from protdistill.distill.checkpoint import load_model_state, save_model
from protdistill.errors import CheckpointError, InputError
from protdistill.students import build_student
from protdistill.students.site import SiteStudent
from protdistill.teachers.windows import Piece, stitch, window_starts

FILE = "site_model.safetensors"


def save_site_model(folder: str | Path, model: SiteStudent, meta: dict) -> Path:
    """Write ``folder/site_model.safetensors`` (atomic); ``meta`` must name ``student``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    hidden = int(model.head.net[0].out_channels)
    return save_model(Path(folder) / FILE, model, {**meta, "site_head_hidden": hidden})


def find_site_model(path: str | Path) -> Path:
    """The site model file of a folder, a run (``RUN/sites/``) or the file itself."""
    path = Path(path)
    if path.is_file():  # the site model itself, or a run's student.safetensors
        path = path if path.name == FILE else path.parent
    for candidate in (path, path / FILE, path / "sites" / FILE):
        if candidate.is_file():
            return candidate
    raise InputError(
        "no site model here",
        path=path,
        fix="pass a run trained with `ppi run ... --sites DIR` (or a folder holding " + FILE + ")",
    )


def load_site_model(path: str | Path) -> tuple[SiteStudent, dict]:
    """``(site model in eval mode, meta)``."""
    file = find_site_model(path)
    state, meta = load_model_state(file)
    if "student" not in meta:
        raise CheckpointError("no student config in the metadata", path=file, fix="retrain it")
    model = SiteStudent(build_student(meta["student"]), int(meta.get("site_head_hidden", 64)))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(
            "the weights do not fit the site model described in its metadata",
            path=file,
            fix="retrain it with `ppi run ... --sites DIR` on this version",
        ) from exc
    return model.eval(), meta


@torch.no_grad()
def site_logits(
    model: nn.Module,
    seqs: Sequence[str],
    *,
    window: int = 1000,
    overlap: int = 128,
    residues_per_batch: int = 16384,
) -> list[torch.Tensor]:
    """``(L,)`` site logits per sequence; longer than ``window``: windows averaged per residue."""
    pieces = [
        Piece(i, s, seq[s : s + window])
        for i, seq in enumerate(seqs)
        for s in window_starts(len(seq), window, overlap)
    ]
    order = sorted(range(len(pieces)), key=lambda j: len(pieces[j].seq))
    results: list = [None] * len(pieces)
    per = max(1, residues_per_batch // max(window, 1))
    model.eval()
    for k in range(0, len(order), per):
        group = order[k : k + per]
        tokens, mask = encode_batch([pieces[j].seq for j in group])
        logits = model(tokens, mask)
        for row, j in enumerate(group):
            results[j] = logits[row, : len(pieces[j].seq), None].float()
    spans = [(0, len(seq)) for seq in seqs]
    return [t[:, 0] for t in stitch(pieces, results, spans, "residue")]


def site_probabilities(model: nn.Module, seqs: Sequence[str], **kw: int) -> list[torch.Tensor]:
    """``(L,)`` binding-site probabilities per sequence (sigmoid of :func:`site_logits`)."""
    return [torch.sigmoid(x) for x in site_logits(model, seqs, **kw)]
