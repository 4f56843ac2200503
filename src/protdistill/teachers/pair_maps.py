"""Full-length inter-protein maps from a frozen ESM-2, by several documented constructions.

ESM-2 sees one sequence, so a pair is read as A + linker + B (the trick of ESM-based PPI / docking
work) and the A x B block of a pairwise output is the pair's map. Pairs longer than the model's
window are covered by windows of A x windows of B; cells are averaged over the windows that hold
both residues, so every residue pair gets a value (no N-terminal cap). Constructions:

* ``contact``: the block of the contact head's map (the first wave's teacher map).
* ``both_orders``: mean of A+linker+B and (B+linker+A) transposed: the model is not symmetric in
  the order of the chains.
* ``clean``: both orders, the cells next to the linker junction (the artefact that dominated the
  first wave's maps) set to the map's median, then APC (average product correction).
* ``attention``: the symmetrised A x B block of every attention head, APC-corrected per head;
  a head selection (indices into layers x heads) averages the chosen ones.
* ``embedding``: cosine similarity of per-residue last-layer states, each chain embedded alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from protdistill.errors import InputError
from protdistill.teachers.esm import DEFAULT_LINKER, EsmTeacher
from protdistill.teachers.windows import window_starts

#: Cells whose residues are fewer than this many positions (ignoring the linker) from the
#: junction of the two chains are masked in ``clean`` maps.
JUNCTION_BAND = 24


def apc(block: Tensor) -> Tensor:
    """Average product correction ``m - row_mean * col_mean / mean`` of the last two axes."""
    row, col = block.mean(-1, keepdim=True), block.mean(-2, keepdim=True)
    total = block.mean((-2, -1), keepdim=True).clamp(min=1e-8)
    return block - row * col / total


def junction_mask(len_a: int, len_b: int, band: int = JUNCTION_BAND) -> Tensor:
    """``(La, Lb)`` True where A's residue ``i`` and B's ``j`` are within ``band`` of the junction
    of A + linker + B or of B + linker + A (both corners)."""
    i = torch.arange(len_a)[:, None]
    j = torch.arange(len_b)[None, :]
    return ((len_a - 1 - i) + j < band) | ((len_b - 1 - j) + i < band)


def pair_windows(
    len_a: int, len_b: int, budget: int, overlap_fraction: float = 0.5
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Windows ``((a0, a1), (b0, b1))`` with ``(a1 - a0) + (b1 - b0) <= budget`` covering every
    residue pair; one window when the pair fits."""
    if len_a + len_b <= budget:
        return [((0, len_a), (0, len_b))]
    half = budget // 2
    wa = len_a if len_a <= half else max(half, budget - len_b)
    wb = min(len_b, budget - wa)
    starts_a = window_starts(len_a, wa, int(wa * overlap_fraction))
    starts_b = window_starts(len_b, wb, int(wb * overlap_fraction))
    return [((sa, sa + wa), (sb, sb + wb)) for sa in starts_a for sb in starts_b]


def _windowed(
    teacher: EsmTeacher,
    seq_a: str,
    seq_b: str,
    linker: str,
    block_of: callable,
) -> Tensor:
    """Average ``block_of(joined_output, na)`` (a ``(..., na, nb)`` tensor) over the windows."""
    budget = teacher.max_residues - len(linker)
    total = count = None
    for (a0, a1), (b0, b1) in pair_windows(len(seq_a), len(seq_b), budget):
        block = block_of(seq_a[a0:a1] + linker + seq_b[b0:b1], a1 - a0, len(linker))
        if total is None:
            total = block.new_zeros((*block.shape[:-2], len(seq_a), len(seq_b)))
            count = torch.zeros(len(seq_a), len(seq_b))
        total[..., a0:a1, b0:b1] += block
        count[a0:a1, b0:b1] += 1
    return total / count


def contact_block(
    teacher: EsmTeacher, seq_a: str, seq_b: str, linker: str = DEFAULT_LINKER
) -> Tensor:
    """``(La, Lb)`` contact-head block of A + linker + B at full length."""

    def block(joined: str, na: int, gap: int) -> Tensor:
        m = teacher.contacts([joined])[0]
        return m[:na, na + gap :]

    return _windowed(teacher, seq_a, seq_b, linker, block)


def contact_both_orders(
    teacher: EsmTeacher, seq_a: str, seq_b: str, linker: str = DEFAULT_LINKER
) -> Tensor:
    """Mean of the A-B block and the transposed B-A block."""
    forward = contact_block(teacher, seq_a, seq_b, linker)
    return 0.5 * (forward + contact_block(teacher, seq_b, seq_a, linker).T)


def clean_map(both_orders: Tensor, band: int = JUNCTION_BAND) -> Tensor:
    """Junction cells set to the median of the others, then APC."""
    mask = junction_mask(*both_orders.shape, band)
    out = both_orders.clone()
    if (~mask).any():
        out[mask] = out[~mask].median()
    return apc(out)


def attention_blocks(
    teacher: EsmTeacher, seq_a: str, seq_b: str, linker: str = DEFAULT_LINKER
) -> Tensor:
    """``(layers * heads, La, Lb)`` symmetrised, APC-corrected attention blocks, both orders."""

    def block(joined: str, na: int, gap: int) -> Tensor:
        att = teacher.attentions([joined])[0]  # (layers, H, T, T)
        att = att.flatten(0, 1)
        inter = att[:, :na, na + gap :] + att[:, na + gap :, :na].transpose(1, 2)
        return apc(inter)

    forward = _windowed(teacher, seq_a, seq_b, linker, block)
    backward = _windowed(teacher, seq_b, seq_a, linker, block).transpose(1, 2)
    return 0.5 * (forward + backward)


def select_heads(blocks: Tensor, heads: Sequence[int] | None) -> Tensor:
    """Mean of the chosen heads' blocks (all heads when ``heads`` is None)."""
    chosen = blocks if heads is None else blocks[list(heads)]
    return chosen.mean(0)


def embedding_similarity(teacher: EsmTeacher, seq_a: str, seq_b: str) -> Tensor:
    """``(La, Lb)`` cosine similarity of last-layer residue states, chains embedded separately."""
    ea, eb = (e.per_residue for e in teacher.embed([seq_a, seq_b]))
    ea = torch.nn.functional.normalize(ea - ea.mean(0), dim=-1)
    eb = torch.nn.functional.normalize(eb - eb.mean(0), dim=-1)
    return ea @ eb.T


#: Names of the constructions :func:`teacher_pair_map` builds.
CONSTRUCTIONS = ("contact", "both_orders", "clean", "attention", "embedding")


def teacher_pair_map(
    teacher: EsmTeacher,
    seq_a: str,
    seq_b: str,
    construction: str = "clean",
    *,
    linker: str = DEFAULT_LINKER,
    heads: Sequence[int] | None = None,
) -> Tensor:
    """``(La, Lb)`` full-length teacher map of one pair by ``construction`` (see the module)."""
    if construction == "contact":
        return contact_block(teacher, seq_a, seq_b, linker)
    if construction == "both_orders":
        return contact_both_orders(teacher, seq_a, seq_b, linker)
    if construction == "clean":
        return clean_map(contact_both_orders(teacher, seq_a, seq_b, linker))
    if construction == "attention":
        return select_heads(attention_blocks(teacher, seq_a, seq_b, linker), heads)
    if construction == "embedding":
        return embedding_similarity(teacher, seq_a, seq_b)
    raise InputError(
        f"unknown teacher map construction {construction!r}",
        record="--teacher-map",
        fix=f"use one of {', '.join(CONSTRUCTIONS)}",
    )


def kd_target(teacher_map: Tensor) -> Tensor:
    """A non-negative version of a (possibly APC-corrected, signed) map for the spatial map KD,
    which normalises maps over their cells: the minimum is moved to zero."""
    return teacher_map - teacher_map.min()
