"""StructDiff denoiser: a Transformer over residues conditioned on timestep, type and structure.

Conditioning: the timestep and the peptide type (index ``num_types`` is the null class used for
classifier-free guidance) modulate every block (adaptive layer norm, as in DiT). Structure arrives
as pair features ``(B, L, L, P)`` (ESM-2 contacts, optional ESMFold distances) turned into a
per-head attention bias, and residue features ``(B, L, F)`` (pLDDT, secondary structure) added to
the tokens. A small structure head predicts those features from clean embeddings so that sampling,
where no structure exists yet, conditions on the structure of its own current estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from protdistill.config import Config


class DenoiserConfig(Config):
    """Network shape; ``pair_dim`` / ``residue_dim`` 0 disables that structure input."""

    embed_dim: int = 320
    d_model: int = 128
    layers: int = 3
    heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1
    num_types: int = 3
    max_length: int = 64
    pair_dim: int = 1
    residue_dim: int = 0
    structure_hidden: int = 64
    self_condition: bool = False
    absolute_positions: bool = True
    relative_positions: int = 0


@dataclass
class StructureFeatures:
    """Structure conditioning: ``pair`` ``(B, L, L, P)`` and ``residue`` ``(B, L, F)`` in [0, 1].

    ``present`` ``(B,)`` bool marks samples whose features are real (False = no structure).
    """

    pair: Tensor | None = None
    residue: Tensor | None = None
    present: Tensor | None = None


@dataclass
class DenoiserOutput:
    """``prediction`` ``(B, L, D)`` (epsilon or x0) and the residue ``mask`` ``(B, L)``."""

    prediction: Tensor
    mask: Tensor


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding ``(B, dim)`` of integer timesteps ``(B,)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=-1)


class Block(nn.Module):
    """Pre-norm Transformer block with adaLN-zero modulation and an additive attention bias."""

    def __init__(self, d: int, heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ff = nn.Sequential(
            nn.Linear(d, ff_mult * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_mult * d, d)
        )
        self.modulation = nn.Linear(d, 6 * d)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        self.dropout = dropout

    def forward(self, x: Tensor, c: Tensor, bias: Tensor) -> Tensor:
        """``x`` ``(B, L, d)``, ``c`` ``(B, d)``, ``bias`` ``(B, H, L, L)`` (−inf: padded keys)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c)[:, None].chunk(6, -1)
        h = self.norm1(x) * (1 + scale1) + shift1
        b, n, d = h.shape
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=drop)
        x = x + gate1 * self.out(attn.transpose(1, 2).reshape(b, n, d))
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.ff(h)


class StructureHead(nn.Module):
    """Predicts structure features (probabilities) from embeddings ``(B, L, D)``."""

    def __init__(self, embed_dim: int, pair_dim: int, residue_dim: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, hidden), nn.GELU())
        self.pair = nn.Linear(hidden, pair_dim) if pair_dim else None
        self.residue = nn.Linear(hidden, residue_dim) if residue_dim else None

    def logits(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Pair logits ``(B, L, L, P)`` (symmetric) and residue logits ``(B, L, F)``."""
        h = self.proj(x)
        pair = None
        if self.pair is not None:
            prod = h[:, :, None, :] * h[:, None, :, :]
            pair = self.pair(prod)
        residue = self.residue(h) if self.residue is not None else None
        return pair, residue

    def forward(self, x: Tensor, mask: Tensor) -> StructureFeatures:
        pair, residue = self.logits(x)
        pm = (mask[:, :, None] & mask[:, None, :]).unsqueeze(-1)
        return StructureFeatures(
            pair=None if pair is None else torch.sigmoid(pair) * pm,
            residue=None if residue is None else torch.sigmoid(residue) * mask.unsqueeze(-1),
            present=torch.ones(x.shape[0], dtype=torch.bool, device=x.device),
        )

    def loss(self, x: Tensor, mask: Tensor, target: StructureFeatures) -> Tensor:
        """Masked binary cross-entropy against teacher structure features."""
        pair, residue = self.logits(x)
        total = x.new_zeros(())
        if pair is not None and target.pair is not None:
            pm = (mask[:, :, None] & mask[:, None, :]).unsqueeze(-1).expand_as(pair).float()
            bce = F.binary_cross_entropy_with_logits(pair, target.pair, reduction="none")
            total = total + (bce * pm).sum() / pm.sum().clamp_min(1)
        if residue is not None and target.residue is not None:
            rm = mask.unsqueeze(-1).expand_as(residue).float()
            bce = F.binary_cross_entropy_with_logits(residue, target.residue, reduction="none")
            total = total + (bce * rm).sum() / rm.sum().clamp_min(1)
        return total


class StructDenoiser(nn.Module):
    """Denoiser ``(x_t, t, type, structure) -> DenoiserOutput`` over ``(B, L, D)`` embeddings."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.null_type = cfg.num_types
        self.inp = nn.Linear(cfg.embed_dim, d)
        # Self-conditioning (Chen et al. 2023, "Analog Bits"): the previous clean estimate is a
        # second input; no estimate (first step, half the training batch) adds nothing.
        self.self_cond = nn.Linear(cfg.embed_dim, d, bias=False) if cfg.self_condition else None
        self.pos = nn.Embedding(cfg.max_length, d) if cfg.absolute_positions else None
        # Relative positions (Shaw et al. 2018; T5): a learned per-head attention bias for each
        # offset, clipped at +-k. Peptides are often windows of a longer protein at varying
        # starts; a bias by offset learns a motif once, wherever the window begins.
        k = cfg.relative_positions
        self.relative = nn.Embedding(2 * k + 1, cfg.heads * cfg.layers) if k else None
        if self.relative is not None:
            nn.init.zeros_(self.relative.weight)
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.type_emb = nn.Embedding(cfg.num_types + 1, d)
        self.struct_flag = nn.Embedding(2, d)
        self.blocks = nn.ModuleList(
            Block(d, cfg.heads, cfg.ff_mult, cfg.dropout) for _ in range(cfg.layers)
        )
        self.pair_bias = nn.Linear(cfg.pair_dim, cfg.heads * cfg.layers) if cfg.pair_dim else None
        self.residue_in = nn.Linear(cfg.residue_dim, d) if cfg.residue_dim else None
        self.structure_head = (
            StructureHead(cfg.embed_dim, cfg.pair_dim, cfg.residue_dim, cfg.structure_hidden)
            if cfg.pair_dim or cfg.residue_dim
            else None
        )
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False)
        self.final_mod = nn.Linear(d, 2 * d)
        self.final = nn.Linear(d, cfg.embed_dim)
        for layer in (self.final_mod, self.final):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def structure_parameters(self) -> list[nn.Parameter]:
        """Parameters that read or predict structure (trained alone in a 'structure' stage)."""
        mods = [self.pair_bias, self.residue_in, self.structure_head, self.struct_flag]
        return [p for m in mods if m is not None for p in m.parameters()]

    def relative_bias(self, n: int, device: torch.device) -> Tensor:
        """Attention bias ``(layers, heads, n, n)`` by key-minus-query offset (clipped)."""
        assert self.relative is not None
        k = self.cfg.relative_positions
        idx = torch.arange(n, device=device)
        offset = (idx[None, :] - idx[:, None]).clamp(-k, k) + k
        bias = self.relative(offset).view(n, n, self.cfg.layers, self.cfg.heads)
        return bias.permute(2, 3, 0, 1)

    def forward(
        self,
        x_t: Tensor,
        t: Tensor,
        type_ids: Tensor,
        mask: Tensor,
        structure: StructureFeatures | None = None,
        x0_self: Tensor | None = None,
    ) -> DenoiserOutput:
        """``x_t`` ``(B, L, D)``, ``t`` ``(B,)``, ``type_ids`` ``(B,)``, ``mask`` ``(B, L)``;
        ``x0_self`` ``(B, L, D)``: the previous clean estimate (self-conditioning models only)."""
        b, n, _ = x_t.shape
        d, heads, layers = self.cfg.d_model, self.cfg.heads, self.cfg.layers
        h = self.inp(x_t)
        if self.pos is not None:
            positions = torch.arange(n, device=x_t.device).clamp_max(self.cfg.max_length - 1)
            h = h + self.pos(positions)[None]
        if self.self_cond is not None and x0_self is not None:
            h = h + self.self_cond(x0_self * mask.unsqueeze(-1))
        present = torch.zeros(b, dtype=torch.long, device=x_t.device)
        bias = x_t.new_zeros(b, layers, heads, n, n)
        if structure is not None:
            keep = structure.present
            keep = torch.ones(b, dtype=torch.bool, device=x_t.device) if keep is None else keep
            present = keep.long()
            kf = keep.to(x_t.dtype)
            if self.pair_bias is not None and structure.pair is not None:
                pb = self.pair_bias(structure.pair) * kf[:, None, None, None]
                bias = pb.view(b, n, n, layers, heads).permute(0, 3, 4, 1, 2)
            if self.residue_in is not None and structure.residue is not None:
                h = h + self.residue_in(structure.residue) * kf[:, None, None]
        if self.relative is not None:
            bias = bias + self.relative_bias(n, x_t.device)[None]
        c = (
            self.time(timestep_embedding(t, d))
            + self.type_emb(type_ids)
            + self.struct_flag(present)
        )
        key_pad = torch.where(mask, 0.0, float("-inf")).to(x_t.dtype)[:, None, None, :]
        for i, block in enumerate(self.blocks):
            h = block(h, c, bias[:, i] + key_pad)
        shift, scale = self.final_mod(c)[:, None].chunk(2, -1)
        out = self.final(self.final_norm(h) * (1 + scale) + shift)
        return DenoiserOutput(prediction=out * mask.unsqueeze(-1), mask=mask)
