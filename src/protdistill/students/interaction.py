"""Dense interaction student: per-residue features for A and B, an (La, Lb) interaction map, and a
label predicted from the map and pooled features (in the spirit of D-SCRIPT's contact module)."""

from __future__ import annotations

import math

import torch
from torch import nn

from protdistill.alphabet import PAD, VOCAB_SIZE
from protdistill.config import Config
from protdistill.students.outputs import PairHead, PairOutput, masked_max, symmetric_combine


class InteractionConfig(Config):
    """Hyper-parameters of :class:`InteractionStudent`."""

    kind: str = "interaction"
    embed_dim: int = 32
    channels: int = 64
    layers: int = 3
    kernel_size: int = 5
    map_dim: int = 32
    top_k: int = 16
    dropout: float = 0.1
    hidden: int = 128


class _ConvBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        pad = dilation * (kernel_size // 2)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=pad, dilation=dilation)
        self.norm = nn.BatchNorm1d(channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x + self.act(self.norm(self.conv(x)))) * mask[:, None, :]


class InteractionStudent(nn.Module):
    """Residue encoder (dilated residual convs, full resolution) shared by A and B.

    interaction_map[b, i, j] = <q(a_i), q(b_j)> / sqrt(d): the same projection on both sides makes
    map(B, A) the transpose of map(A, B), so the score is symmetric. The label is read from the
    mean of the top-k map entries (masked) plus ``[a+b, |a-b|, a*b]`` of max-pooled features.
    """

    def __init__(self, cfg: InteractionConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or InteractionConfig()
        self.embed = nn.Embedding(VOCAB_SIZE, cfg.embed_dim, padding_idx=PAD)
        self.stem = nn.Conv1d(
            cfg.embed_dim, cfg.channels, cfg.kernel_size, padding=cfg.kernel_size // 2
        )
        self.blocks = nn.ModuleList(
            _ConvBlock(cfg.channels, cfg.kernel_size, dilation=2**i) for i in range(cfg.layers)
        )
        self.query = nn.Linear(cfg.channels, cfg.map_dim)
        self.map_bias = nn.Parameter(torch.tensor(-3.0))
        self.head = PairHead(3 * cfg.channels + 2, cfg.hidden, cfg.dropout)

    @property
    def embedding_dim(self) -> int:
        """Width D of the max-pooled protein embedding."""
        return self.cfg.channels

    def residues(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens -> (B, C, L) per-residue features, zero on padding."""
        x = self.stem(self.embed(tokens).transpose(1, 2)) * mask[:, None, :]
        for block in self.blocks:
            x = block(x, mask)
        return x

    def interaction_map(
        self, ha: torch.Tensor, hb: torch.Tensor, mask_a: torch.Tensor, mask_b: torch.Tensor
    ) -> torch.Tensor:
        """(B, C, La), (B, C, Lb) -> (B, La, Lb) map logits; padded cells are set to -inf-like."""
        qa, qb = self.query(ha.transpose(1, 2)), self.query(hb.transpose(1, 2))
        scores = qa @ qb.transpose(1, 2) / math.sqrt(qa.shape[-1]) + self.map_bias
        valid = mask_a[:, :, None] & mask_b[:, None, :]
        return scores.masked_fill(~valid, -1e4)

    def map_summary(self, scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, La, Lb) map logits + valid cells -> (B, 2): mean of the top-k logits, mean prob."""
        flat = scores.flatten(1)
        k = min(self.cfg.top_k, flat.shape[1])
        top = flat.topk(k, dim=1).values
        n_valid = valid.flatten(1).sum(1).clamp(min=1)
        keep = torch.arange(k, device=flat.device)[None, :] < n_valid[:, None]
        top_mean = (top * keep).sum(1) / keep.sum(1).clamp(min=1)
        prob_mean = (torch.sigmoid(scores) * valid).flatten(1).sum(1) / n_valid
        return torch.stack([top_mean, prob_mean], dim=1)

    def forward(
        self,
        tokens_a: torch.Tensor,
        mask_a: torch.Tensor,
        tokens_b: torch.Tensor,
        mask_b: torch.Tensor,
    ) -> PairOutput:
        """Tokens and masks (B, La), (B, Lb) -> logits (B, 2) and map (B, La, Lb)."""
        ha, hb = self.residues(tokens_a, mask_a), self.residues(tokens_b, mask_b)
        scores = self.interaction_map(ha, hb, mask_a, mask_b)
        valid = mask_a[:, :, None] & mask_b[:, None, :]
        za, zb = masked_max(ha, mask_a), masked_max(hb, mask_b)
        pooled = symmetric_combine(za, zb)
        features = torch.cat([pooled, self.map_summary(scores, valid)], dim=1)
        return PairOutput(
            logits=self.head(features),
            features=features,
            interaction_map=scores,
            mask_a=mask_a,
            mask_b=mask_b,
            embedding_a=za,
            embedding_b=zb,
        )
