"""The scoring core of `ppi screen`: a Siamese student's pair head over blocks of cached protein
embeddings, and the running top-K partners of every protein (a bounded top-K per row, merged
block by block with tensor ops, never the full score matrix)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

#: Bytes held per scored pair while a block is evaluated: the (3D) pair features, the hidden
#: layer, logits and probabilities in float32, with room for the temporaries of LayerNorm / GELU.
BYTES_PER_PAIR_PER_DIM = 4 * 3 * 2


def block_size(memory_bytes: int, dim: int, hidden: int) -> int:
    """Side ``S`` of an ``S x S`` block of pairs that fits ``memory_bytes`` (at least 16)."""
    per_pair = BYTES_PER_PAIR_PER_DIM * (3 * dim + hidden)
    return max(16, int((memory_bytes / per_pair) ** 0.5))


@torch.inference_mode()
def score_block(head: nn.Module, rows: Tensor, cols: Tensor) -> Tensor:
    """(R, C) interaction probabilities of every (row, column) protein pair.

    ``rows`` (R, D), ``cols`` (C, D): pooled student embeddings. The features are the student's
    own ``[a+b, |a-b|, a*b]``, so each probability is what the full model gives for that pair.
    """
    a, b = rows[:, None, :], cols[None, :, :]
    features = torch.cat([(a + b), (a - b).abs(), a * b], dim=-1)
    logits = head(features.reshape(-1, features.shape[-1]))
    return logits.softmax(-1)[:, 1].reshape(len(rows), len(cols))


@dataclass
class TopK:
    """Best ``k`` partners per protein: ``values`` (N, k) probabilities (-1 = empty slot) and
    ``index`` (N, k) partner indices (-1 = empty), best first."""

    values: Tensor
    index: Tensor

    @classmethod
    def empty(cls, n: int, k: int) -> TopK:
        return cls(torch.full((n, k), -1.0), torch.full((n, k), -1, dtype=torch.long))

    def merge(self, rows: Tensor, probs: Tensor, partners: Tensor) -> None:
        """Offer ``probs`` (R, C): row ``r`` is protein ``rows[r]``, column ``c`` its partner
        ``partners[c]``. Ties keep the earlier candidate (stable), so the result does not depend
        on how the grid was cut into blocks."""
        k = self.values.shape[1]
        if k == 0 or probs.numel() == 0:
            return
        cand_v = torch.cat([self.values[rows], probs], dim=1)
        cand_i = torch.cat([self.index[rows], partners[None, :].expand(len(rows), -1)], dim=1)
        order = torch.sort(cand_v, dim=1, descending=True, stable=True).indices[:, :k]
        self.values[rows] = torch.gather(cand_v, 1, order)
        self.index[rows] = torch.gather(cand_i, 1, order)


def pair_mask(rows: Tensor, cols: Tensor, symmetric: bool, include_self: bool) -> Tensor:
    """(R, C) True where a pair is scored. All-vs-all (``symmetric``): each unordered pair once,
    ``i < j`` (``i <= j`` with ``include_self``); bipartite: all, the same id only with
    ``include_self`` (``rows`` / ``cols`` hold indices into one shared id list)."""
    if symmetric:
        return rows[:, None] <= cols[None, :] if include_self else rows[:, None] < cols[None, :]
    same = rows[:, None] == cols[None, :]
    return torch.ones_like(same) if include_self else ~same
