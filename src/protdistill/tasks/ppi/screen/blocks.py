"""The scoring core of `ppi screen`: a Siamese student's pair head over blocks of cached protein
embeddings, and the running top-K partners of every protein (a bounded top-K per row, merged
block by block with tensor ops, never the full score matrix)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from protdistill.students.outputs import masked_max, symmetric_combine
from protdistill.students.pair_heads import score_factors

#: Bytes held per scored pair while a block is evaluated: the (3D) pair features, the hidden
#: layer, logits and probabilities in float32, with room for the temporaries of LayerNorm / GELU.
BYTES_PER_PAIR_PER_DIM = 4 * 3 * 2


def block_size(memory_bytes: int, dim: int, hidden: int) -> int:
    """Side ``S`` of an ``S x S`` block of pairs that fits ``memory_bytes`` (at least 16)."""
    per_pair = BYTES_PER_PAIR_PER_DIM * (3 * dim + hidden)
    return max(16, int((memory_bytes / per_pair) ** 0.5))


@torch.inference_mode()
def score_block(head: nn.Module, rows: Tensor, cols: Tensor) -> Tensor:
    """(R, C) interaction logits of every (row, column) protein pair.

    ``rows`` (R, D), ``cols`` (C, D): pooled student embeddings. A head with ``score`` (every
    PyTorch pair head, students/pair_heads.py) scores the block itself; an ONNX Runtime head
    takes the student's own ``[a+b, |a-b|, a*b]`` features, so each logit is what the full model
    gives for that pair.
    """
    if hasattr(head, "score"):
        return head.score(rows, cols)
    a, b = rows[:, None, :], cols[None, :, :]
    features = torch.cat([(a + b), (a - b).abs(), a * b], dim=-1)
    logits = head(features.reshape(-1, features.shape[-1]))
    return (logits[:, 1] - logits[:, 0]).reshape(len(rows), len(cols))


@dataclass
class TopK:
    """Best ``k`` partners per protein: ``values`` (N, k) ranking values (-inf = empty slot) and
    ``index`` (N, k) partner indices (-1 = empty), best first."""

    values: Tensor
    index: Tensor

    @classmethod
    def empty(cls, n: int, k: int) -> TopK:
        return cls(torch.full((n, k), -torch.inf), torch.full((n, k), -1, dtype=torch.long))

    def merge(self, rows: Tensor, probs: Tensor, partners: Tensor) -> None:
        """Offer ``probs`` (R, C): row ``r`` is protein ``rows[r]``, column ``c`` its partner
        ``partners[c]``. Equal probabilities rank the lower partner index first, so the result
        does not depend on how the grid was cut into blocks or shared among ranks."""
        if self.values.shape[1] == 0 or probs.numel() == 0:
            return
        k = self.values.shape[1]
        if probs.shape[1] <= 2 * k:
            self._offer(rows, probs, partners[None, :].expand(len(rows), -1))
            return
        # pre-select the block's best k per row: ``topk`` picks arbitrarily among values tied
        # with the k-th, so rows with such ties (and only they) offer all their candidates
        best, at = torch.topk(probs, k, dim=1)
        tied = (probs >= best[:, -1:]).sum(1) > k
        if bool(tied.any()):
            t = tied.nonzero()[:, 0]
            self._offer(rows[t], probs[t], partners[None, :].expand(len(t), -1))
            keep = (~tied).nonzero()[:, 0]
            rows, best, at = rows[keep], best[keep], at[keep]
        self._offer(rows, best, partners[at])

    def _offer(self, rows: Tensor, values: Tensor, index: Tensor) -> None:
        cand_v = torch.cat([self.values[rows], values], dim=1)
        cand_i = torch.cat([self.index[rows], index], dim=1)
        self._keep_best(rows, cand_v, cand_i)

    def combine(self, other: TopK) -> None:
        """Merge another top-K of the same proteins (e.g. another rank's share of the grid)."""
        rows = torch.arange(len(self.values))
        cand_v = torch.cat([self.values, other.values], dim=1)
        cand_i = torch.cat([self.index, other.index], dim=1)
        self._keep_best(rows, cand_v, cand_i)

    def _keep_best(self, rows: Tensor, cand_v: Tensor, cand_i: Tensor) -> None:
        k = self.values.shape[1]
        by_index = torch.sort(cand_i, dim=1, stable=True).indices  # ties: lower partner first
        cand_v, cand_i = torch.gather(cand_v, 1, by_index), torch.gather(cand_i, 1, by_index)
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


class SiameseScorer:
    """Logits of a Siamese student's pairs from (N, D) pooled embeddings (NaN rows: skipped
    proteins). A factorised head's per-protein factors are computed once, so a block is one
    matrix product; any other head scores each block from the embeddings."""

    def __init__(self, model: nn.Module, features: list[Tensor | None], memory_bytes: int) -> None:
        width = next(f for f in features if f is not None).shape[0]
        nan = torch.full((width,), float("nan"))
        self.head = model.head
        self.emb = torch.stack([nan if f is None else f for f in features])
        self.factors = None
        if hasattr(self.head, "screen_factors"):
            with torch.inference_mode():
                self.factors = self.head.screen_factors(self.emb)
            # per pair: the (R, C) logits, the outer sums and the top-K / mask temporaries
            self.side = max(16, int((memory_bytes / 24) ** 0.5))
            return
        linear = [m for m in self.head.modules() if isinstance(m, nn.Linear)]
        self.side = block_size(memory_bytes, width, linear[0].out_features if linear else 128)

    @torch.inference_mode()
    def __call__(self, rows: Tensor, cols: Tensor) -> Tensor:
        """(R, C) logits of rows x cols (indices into the embeddings)."""
        if self.factors is not None:
            beta, scaled, phi, bias = self.factors
            return score_factors(beta[rows], scaled[rows], beta[cols], phi[cols], bias)
        return score_block(self.head, self.emb[rows], self.emb[cols])

    @torch.inference_mode()
    def pairs(self, a: Tensor, b: Tensor) -> Tensor:
        """(P,) logits of the pairs (a[i], b[i])."""
        if self.factors is not None:
            beta, scaled, phi, bias = self.factors
            return beta[a] + beta[b] + (scaled[a] * phi[b]).sum(-1) + bias
        out = [torch.zeros(0)]
        for s in range(0, len(a), 65536):
            za, zb = self.emb[a[s : s + 65536]], self.emb[b[s : s + 65536]]
            logits = self.head(symmetric_combine(za, zb))  # MLP / ONNX heads read pair features
            out.append(logits[:, 1] - logits[:, 0])
        return torch.cat(out)


class InteractionScorer:
    """Pairs of an interaction student from cached (C, L) residue features: for each row
    protein, the residue map against a chunk of column proteins (padded to the chunk's longest)
    and the student's own map summary and head, so each probability is the full model's."""

    def __init__(self, model: nn.Module, features: list[Tensor | None], memory_bytes: int) -> None:
        self.model = model
        self.features = features
        self.memory_bytes = memory_bytes
        longest = max(f.shape[1] for f in features if f is not None)
        # a row block holds few proteins: each of its pairs costs a whole residue map
        self.side = max(1, min(64, memory_bytes // (16 * longest * longest * 64)))

    @torch.inference_mode()
    def _one_row(self, a: int, cols: Tensor) -> Tensor:
        ha = self.features[a]
        out = []
        per_pair = 16 * ha.shape[1] * max(self.features[int(c)].shape[1] for c in cols)
        chunk = max(1, self.memory_bytes // per_pair)
        for start in range(0, len(cols), chunk):
            hb, mask_b = _stack([self.features[int(c)] for c in cols[start : start + chunk]])
            n = len(hb)
            ha_n = ha[None].expand(n, -1, -1)
            mask_a = torch.ones(n, ha.shape[1], dtype=torch.bool)
            scores = self.model.interaction_map(ha_n, hb, mask_a, mask_b)
            valid = mask_a[:, :, None] & mask_b[:, None, :]
            pooled = symmetric_combine(masked_max(ha_n, mask_a), masked_max(hb, mask_b))
            features = torch.cat([pooled, self.model.map_summary(scores, valid)], dim=1)
            logits = self.model.head(features)
            out.append(logits[:, 1] - logits[:, 0])
        return torch.cat(out)

    def __call__(self, rows: Tensor, cols: Tensor) -> Tensor:
        """(R, C) logits of rows x cols."""
        return torch.stack([self._one_row(int(a), cols) for a in rows])

    def pairs(self, a: Tensor, b: Tensor) -> Tensor:
        """(P,) logits of the pairs (a[i], b[i])."""
        out = [self._one_row(int(i), j[None]) for i, j in zip(a, b, strict=True)]
        return torch.cat(out) if out else torch.zeros(0)


def _stack(features: list[Tensor]) -> tuple[Tensor, Tensor]:
    """(B, C, L_max) zero-padded residue features and their (B, L_max) mask."""
    longest = max(f.shape[1] for f in features)
    out = features[0].new_zeros(len(features), features[0].shape[0], longest)
    mask = torch.zeros(len(features), longest, dtype=torch.bool)
    for i, f in enumerate(features):
        out[i, :, : f.shape[1]] = f
        mask[i, : f.shape[1]] = True
    return out, mask
