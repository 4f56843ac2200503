"""Pair heads of the Siamese students: two pooled protein embeddings -> an interaction logit.

Every head offers the same interface, so training, ``predict``, ``screen`` and export call one
thing:

- ``logits(za, zb)``: (B, D) x 2 -> (B, 2) class logits (index 1 = interacting), what the
  distillation objective reads;
- ``score(rows, cols)``: (R, D), (C, D) -> (R, C) interaction logits of every row x column pair,
  what a screen asks for block by block (``sigmoid`` of it is the probability);
- ``propensity(z)``: (N, D) -> (N,) per-protein term, or ``None`` when the head has none.

:class:`MlpPairHead` is the original head (an MLP on ``[a+b, |a-b|, a*b]``): every pair costs an
MLP pass. :class:`FactorisedPairHead` writes the logit as

    logit(a, b) = beta(a) + beta(b) + phi(a)^T diag(lambda) phi(b) + bias

(``beta``: a protein's propensity to interact at all; ``phi``: a ``width``-dim projection whose
weighted inner product is the pairing term). Symmetric by construction, and a block of scores is
two outer sums and one matrix product.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from protdistill.students.outputs import PairHead, symmetric_combine

HeadKind = Literal["mlp", "factorised"]


def _two_class(logit: Tensor) -> Tensor:
    """(B,) interaction logit -> (B, 2) class logits whose softmax[:, 1] is sigmoid(logit)."""
    half = logit[:, None] / 2
    return torch.cat([-half, half], dim=1)


class MlpPairHead(PairHead):
    """LayerNorm -> MLP on ``[a+b, |a-b|, a*b]`` (the module layout of :class:`PairHead`, so
    earlier checkpoints load unchanged). ``forward`` still takes the pair features (ONNX export
    and pruning see the same graph as before)."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__(3 * dim, hidden, dropout)

    def logits(self, za: Tensor, zb: Tensor) -> Tensor:
        """(B, D) x 2 -> (B, 2)."""
        return self(symmetric_combine(za, zb))

    def score(self, rows: Tensor, cols: Tensor) -> Tensor:
        """(R, D), (C, D) -> (R, C) interaction logits (logit of class 1 minus class 0)."""
        a, b = rows[:, None, :], cols[None, :, :]
        features = torch.cat([a + b, (a - b).abs(), a * b], dim=-1)
        out = self(features.reshape(-1, features.shape[-1]))
        return (out[:, 1] - out[:, 0]).reshape(len(rows), len(cols))

    def propensity(self, z: Tensor) -> None:
        return None


class FactorisedPairHead(nn.Module):
    """``beta(a) + beta(b) + phi(a)^T diag(lambda) phi(b) + bias`` on LayerNorm-ed embeddings.

    ``width``: the dimension of ``phi``; ``phi_hidden`` > 0 makes ``phi`` a one-hidden-layer MLP
    (computed once per protein, so a screen costs the same). Dropout acts on the normalised
    embedding in training.
    """

    def __init__(self, dim: int, width: int, dropout: float, phi_hidden: int = 0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.beta = nn.Linear(dim, 1)
        self.phi = (
            nn.Sequential(nn.Linear(dim, phi_hidden), nn.GELU(), nn.Linear(phi_hidden, width))
            if phi_hidden
            else nn.Linear(dim, width)
        )
        self.lam = nn.Parameter(torch.full((width,), 1.0 / width**0.5))
        self.bias = nn.Parameter(torch.zeros(()))

    def factors(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(N, D) -> (beta (N,), phi (N, W)): everything a screen needs of one protein."""
        h = self.drop(self.norm(z))
        return self.beta(h)[:, 0], self.phi(h)

    def propensity(self, z: Tensor) -> Tensor:
        """(N, D) -> (N,) per-protein term ``beta``."""
        return self.factors(z)[0]

    def pairing(self, za: Tensor, zb: Tensor) -> Tensor:
        """(B, D) x 2 -> (B,) pairing term ``phi(a)^T diag(lambda) phi(b)``."""
        return ((self.factors(za)[1] * self.lam) * self.factors(zb)[1]).sum(-1)

    def pair_logit(self, za: Tensor, zb: Tensor) -> Tensor:
        """(B, D) x 2 -> (B,) logit = propensity(a) + propensity(b) + pairing + bias."""
        (ba, pa), (bb, pb) = self.factors(za), self.factors(zb)
        return ba + bb + ((pa * self.lam) * pb).sum(-1) + self.bias

    def logits(self, za: Tensor, zb: Tensor) -> Tensor:
        """(B, D) x 2 -> (B, 2)."""
        return _two_class(self.pair_logit(za, zb))

    def forward(self, za: Tensor, zb: Tensor) -> Tensor:
        return self.logits(za, zb)

    def screen_factors(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(N, D) -> (beta (N,), lambda * phi (N, W), phi (N, W), bias): a screen's inputs."""
        beta, phi = self.factors(z)
        return beta, phi * self.lam, phi, self.bias

    def score(self, rows: Tensor, cols: Tensor) -> Tensor:
        """(R, D), (C, D) -> (R, C): two outer sums and one (R, W) x (W, C) product."""
        (br, pr), (bc, pc) = self.factors(rows), self.factors(cols)
        return score_factors(br, pr * self.lam, bc, pc, self.bias)


def score_factors(beta_r: Tensor, phi_r: Tensor, beta_c: Tensor, phi_c: Tensor, bias) -> Tensor:
    """(R, C) logits from precomputed factors: ``phi_r`` already scaled by lambda."""
    return torch.addmm(beta_r[:, None] + beta_c[None, :] + bias, phi_r, phi_c.T)


def build_pair_head(
    kind: str, dim: int, *, hidden: int, dropout: float, width: int, phi_hidden: int = 0
) -> nn.Module:
    """The head named ``kind`` for ``dim``-wide protein embeddings."""
    if kind == "factorised":
        return FactorisedPairHead(dim, width, dropout, phi_hidden)
    return MlpPairHead(dim, hidden, dropout)
