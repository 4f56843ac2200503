"""Teacher interaction maps at a bounded resolution, and the matching binning of student maps.

The teacher map of a pair is the inter-protein block of ESM-2's contact map on A + linker + B,
restricted to the first ``map_residues`` residues of each protein and average-pooled into at most
``map_bins`` x ``map_bins`` bins (float16: at most 2 * bins^2 bytes, 2,048 bytes at 32 bins).
The student map is pooled with the same bin matrices, so both maps cover the same residues.
"""

from __future__ import annotations

import torch

from protdistill.distill.losses import map_kd


def bin_matrix(lengths: list[int], padded: int, map_residues: int, bins: int) -> torch.Tensor:
    """(B, bins, padded) averaging matrices: row k averages the residues of bin k.

    A protein of length L covers residues ``[0, min(L, map_residues))`` split into
    ``min(covered, bins)`` equal bins; unused rows (short proteins) are all zero.
    """
    out = torch.zeros(len(lengths), bins, padded)
    for b, length in enumerate(lengths):
        covered = min(length, map_residues)
        n_bins = min(covered, bins)
        idx = torch.arange(covered)
        bin_of = idx * n_bins // covered
        out[b, bin_of, idx] = 1.0
        out[b] /= out[b].sum(1, keepdim=True).clamp(min=1)
    return out


def pool_map(residue_map: torch.Tensor, map_residues: int, bins: int) -> torch.Tensor:
    """(La, Lb) residue map -> (na, nb) binned map, na = min(La, map_residues, bins)."""
    la, lb = residue_map.shape
    pa = bin_matrix([la], la, map_residues, bins)[0]
    pb = bin_matrix([lb], lb, map_residues, bins)[0]
    na, nb = min(la, map_residues, bins), min(lb, map_residues, bins)
    return (pa @ residue_map.float() @ pb.T)[:na, :nb]


def bin_student_map(
    probs: torch.Tensor, bins_a: torch.Tensor, bins_b: torch.Tensor
) -> torch.Tensor:
    """(B, La, Lb) probabilities -> (B, bins, bins) binned with (B, bins, La), (B, bins, Lb)."""
    return bins_a @ probs @ bins_b.transpose(1, 2)


def pad_maps(
    maps: list[torch.Tensor], bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack (na, nb) maps into (B, bins, bins) with row / column masks (B, bins)."""
    out = torch.zeros(len(maps), bins, bins)
    mask_a = torch.zeros(len(maps), bins, dtype=torch.bool)
    mask_b = torch.zeros(len(maps), bins, dtype=torch.bool)
    for i, m in enumerate(maps):
        na, nb = m.shape
        out[i, :na, :nb] = m.float()
        mask_a[i, :na], mask_b[i, :nb] = True, True
    return out, mask_a, mask_b


@torch.no_grad()
def map_agreement(model: torch.nn.Module, batches) -> dict[str, float]:
    """How well a map student reproduces the teacher maps of the pairs in ``batches``.

    ``batches`` are collated with teacher maps (see ``collate_pairs``); pairs without a map are
    skipped. Per pair: Pearson r between binned student and teacher maps, and the spatial KL of
    the student next to that of a flat map (the score of a student that learned no pattern).
    """
    model.eval()
    rs, kl_student, kl_flat = [], [], []
    for batch in batches:
        out = model(batch["tokens_a"], batch["mask_a"], batch["tokens_b"], batch["mask_b"])
        binned = bin_student_map(
            torch.sigmoid(out.interaction_map), batch["bins_a"], batch["bins_b"]
        )
        for i in range(len(binned)):
            ma, mb = batch["map_mask_a"][i : i + 1], batch["map_mask_b"][i : i + 1]
            if not (ma.any() and mb.any()):
                continue
            s, t = binned[i : i + 1], batch["teacher_map"][i : i + 1]
            kl_student.append(map_kd(s, t, ma, mb, "spatial").item())
            kl_flat.append(map_kd(torch.ones_like(s), t, ma, mb, "spatial").item())
            cells = ma[0, :, None] & mb[0, None, :]
            pair = torch.stack([s[0][cells], t[0][cells].float()])
            rs.append(torch.corrcoef(pair)[0, 1].nan_to_num(0.0).item())
    return {
        "pairs": len(rs),
        "pearson_r": _mean(rs),
        "spatial_kl": _mean(kl_student),
        "spatial_kl_flat_map": _mean(kl_flat),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / max(len(values), 1)
