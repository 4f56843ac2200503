"""Long sequences and batches: crops, overlapping windows, and stitching window outputs back into
one tensor per input; padding variable-length tensors into a batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Piece:
    item: int  # index of the input sequence
    start: int  # residue offset of this piece in the original sequence
    seq: str


def crop_pair(
    len_a: int, len_b: int, budget: int, max_each: int | None = None
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Residue ranges kept for A and B so that ``na + nb <= budget`` (first residues kept).

    Each protein is first cut to ``max_each``; if both still do not fit, a protein shorter than
    half the budget is kept whole and the other gets the rest; otherwise each gets half.
    """
    na = min(len_a, max_each) if max_each else len_a
    nb = min(len_b, max_each) if max_each else len_b
    if na + nb > budget:
        half = budget // 2
        if na <= half:
            nb = budget - na
        elif nb <= budget - half:
            na = budget - nb
        else:
            na, nb = half, budget - half
    return (0, na), (0, nb)


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``window`` residues covering ``length`` with ``overlap``."""
    if length <= window:
        return [0]
    stride = window - overlap
    starts = list(range(0, length - window, stride))
    return [*starts, length - window]


def stack_padded(tensors: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pad ``(L_i, D)`` tensors to ``(B, L, D)`` plus a bool mask ``(B, L)`` (True = real)."""
    length = max((t.shape[0] for t in tensors), default=0)
    out = tensors[0].new_zeros((len(tensors), length, *tensors[0].shape[1:]))
    mask = torch.zeros(len(tensors), length, dtype=torch.bool)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
    return out, mask


def stitch(
    pieces: list[Piece],
    results: list[Tensor | None],
    spans: list[tuple[int, int]],
    kind: str,
) -> list[Tensor]:
    """Average overlapping window outputs per residue (or residue pair) for each input."""
    by_item: dict[int, list[int]] = {}
    for j, p in enumerate(pieces):
        by_item.setdefault(p.item, []).append(j)
    out = []
    for item, (lo, hi) in enumerate(spans):
        js = by_item[item]
        if len(js) == 1:
            out.append(results[js[0]])
            continue
        first = results[js[0]]
        n = hi - lo
        shape = (
            (*first.shape[:-2], n, first.shape[-1])
            if kind == "residue"
            else (*first.shape[:-2], n, n)
        )
        total = first.new_zeros(shape)
        count = first.new_zeros((n, 1) if kind == "residue" else (n, n))
        for j in js:
            s, m = pieces[j].start, len(pieces[j].seq)
            if kind == "residue":
                total[..., s : s + m, :] += results[j]
                count[s : s + m] += 1
            else:
                total[..., s : s + m, s : s + m] += results[j]
                count[s : s + m, s : s + m] += 1
        out.append(total / count.clamp(min=1))
    return out
