"""Structure features for StructDiff: ESM-2 contacts (always) and ESMFold features (optional).

Pair features ``(L, L, P)``: channel 0 is the ESM-2 contact probability; with ESMFold,
``DIST_BINS`` radial-basis encodings of the predicted C-alpha distances follow. Residue features
``(L, F)`` (ESMFold only): pLDDT / 100 and a helix / strand / coil one-hot assigned from C-alpha
geometry. All values are in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import EsmForProteinFolding

from protdistill.errors import ModelError

#: Centres (Å) of the radial-basis distance channels.
DIST_CENTRES = (4.0, 8.0, 12.0, 16.0)
DIST_BINS = len(DIST_CENTRES)
RESIDUE_DIM = 4  # pLDDT + helix/strand/coil


def pair_dim(use_fold: bool) -> int:
    """Number of pair channels: contacts, plus distance bins with ESMFold."""
    return 1 + (DIST_BINS if use_fold else 0)


def residue_dim(use_fold: bool) -> int:
    return RESIDUE_DIM if use_fold else 0


def distance_rbf(dist: Tensor, centres: Sequence[float] = DIST_CENTRES, width: float = 3.0):
    """Radial-basis encoding ``(..., K)`` of distances ``(...)`` in Å."""
    c = torch.tensor(centres, dtype=dist.dtype, device=dist.device)
    return torch.exp(-(((dist[..., None] - c) / width) ** 2))


def secondary_structure(ca: Tensor) -> Tensor:
    """Helix / strand / coil one-hot ``(L, 3)`` from C-alpha coordinates ``(L, 3)``.

    A P-SEA-like rule: residue i is helical when d(i, i+3) is 4.2–6.0 Å and d(i, i+4) is
    5.0–7.0 Å, extended (strand) when d(i, i+2) > 6.4 Å and d(i, i+3) > 9.0 Å; else coil.
    """
    n = ca.shape[0]
    out = torch.zeros(n, 3)
    out[:, 2] = 1.0

    def d(i: int, k: int) -> float:
        return float((ca[i] - ca[i + k]).norm()) if i + k < n else float("nan")

    for i in range(n):
        d2, d3, d4 = d(i, 2), d(i, 3), d(i, 4)
        if 4.2 <= d3 <= 6.0 and 5.0 <= d4 <= 7.0:
            out[i] = torch.tensor([1.0, 0.0, 0.0])
        elif d2 > 6.4 and d3 > 9.0:
            out[i] = torch.tensor([0.0, 1.0, 0.0])
    return out


@dataclass
class FoldResult:
    """ESMFold outputs for one peptide: ``ca`` ``(L, 3)`` Å and ``plddt`` ``(L,)`` in 0–100."""

    ca: Tensor
    plddt: Tensor


class FoldFeaturizer:
    """Runs ``transformers.EsmForProteinFolding`` and turns its outputs into StructDiff features."""

    def __init__(self, model: torch.nn.Module, identity: str = "esmfold") -> None:
        self.model = model.eval().requires_grad_(False)
        self.identity = identity

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> FoldFeaturizer:
        """Load ESMFold weights (e.g. a local copy of ``facebook/esmfold_v1``)."""
        try:
            model = EsmForProteinFolding.from_pretrained(name_or_path)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"cannot load ESMFold ({exc})".replace("\n", " "),
                path=name_or_path,
                fix="give a directory with EsmForProteinFolding weights, or set fold_model: null",
            ) from exc
        return cls(model, identity=f"esmfold:{name_or_path}")

    @torch.no_grad()
    def fold(self, seqs: Sequence[str]) -> list[FoldResult]:
        """Predict C-alpha coordinates and pLDDT per peptide (one at a time: peptides are short)."""
        out = []
        for seq in seqs:
            pred = self.model.infer([seq])  # maps letters to ESMFold's own residue indices
            ca = pred.positions[-1, 0, :, 1, :].float()  # (L, 3): atom14 index 1 = C-alpha
            plddt = pred.plddt[0, :, 1].float()  # (L,) C-alpha pLDDT, 0-1 or 0-100
            plddt = plddt * 100 if plddt.max() <= 1.0 else plddt
            out.append(FoldResult(ca=ca, plddt=plddt))
        return out

    def features(self, seqs: Sequence[str]) -> list[tuple[Tensor, Tensor]]:
        """``(pair (L, L, DIST_BINS), residue (L, RESIDUE_DIM))`` per peptide."""
        feats = []
        for res in self.fold(seqs):
            dist = torch.cdist(res.ca, res.ca)
            residue = torch.cat(
                [(res.plddt / 100).clamp(0, 1)[:, None], secondary_structure(res.ca)], dim=-1
            )
            feats.append((distance_rbf(dist), residue))
        return feats
