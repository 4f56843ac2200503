"""Siamese ResNet-1D pair student: residues -> residual 1-D conv blocks -> global max pool."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from protdistill.alphabet import PAD, VOCAB_SIZE
from protdistill.config import Config
from protdistill.students.outputs import PairOutput, masked_pool, symmetric_combine
from protdistill.students.pair_heads import HeadKind, build_pair_head


class ResNet1DConfig(Config):
    """Hyper-parameters of :class:`SiameseResNet1D` (defaults give about 0.35 M parameters)."""

    kind: str = "resnet1d"
    embed_dim: int = 32
    stem_stride: int = 2
    channels: list[int] = [48, 64, 96, 128]
    kernel_size: int = 5
    dropout: float = 0.1
    hidden: int = 128
    #: global pooling of the last stage: max (as before), mean (what the ESM teacher's embedding
    #: is), or max+mean (their sum)
    pool: Literal["max", "mean", "max+mean"] = "max"
    #: pair head (students/pair_heads.py): an MLP on [a+b, |a-b|, a*b], or factorised
    #: beta(a) + beta(b) + phi(a)^T diag(lambda) phi(b) (a screen is then matrix products)
    head: HeadKind = "mlp"
    #: width of phi in the factorised head
    head_width: int = 64
    #: hidden width of phi as an MLP in the factorised head (0: phi is linear)
    head_phi_hidden: int = 0


class ResidualBlock1D(nn.Module):
    """Conv-BN-ReLU-Conv-BN plus a (projected) skip, then ReLU; padding is kept at zero."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv1d(c_in, c_out, 1, bias=False)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, C_in, L) with (B, L) mask -> (B, C_out, L), zero on padding."""
        x = x * mask[:, None, :]
        h = self.act(self.bn1(self.conv1(x))) * mask[:, None, :]
        return self.act(self.bn2(self.conv2(h)) + self.skip(x)) * mask[:, None, :]


class ResNet1DEncoder(nn.Module):
    """Tokens (B, L) + mask -> features (B, C, L'): a strided stem conv, then residual stages with
    a 2x max-pool between them (L' = L / (stem_stride * 2^(stages - 1))).

    Returns the features and the mask downsampled alongside them, so padding never leaks into the
    global max pool.
    """

    def __init__(self, cfg: ResNet1DConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, cfg.embed_dim, padding_idx=PAD)
        self.stem = nn.Conv1d(cfg.embed_dim, cfg.embed_dim, cfg.stem_stride, stride=cfg.stem_stride)
        self.stem_pool = nn.MaxPool1d(cfg.stem_stride, ceil_mode=True)
        blocks, c_in = [], cfg.embed_dim
        for c_out in cfg.channels:
            blocks.append(ResidualBlock1D(c_in, c_out, cfg.kernel_size))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.MaxPool1d(2, ceil_mode=True)
        self.out_dim = c_in

    @property
    def strides(self) -> list[int]:
        """Residues per position of each stage's output (stem stride x 2^stage)."""
        return [self.stem.stride[0] * 2**i for i in range(len(self.blocks))]

    @property
    def stage_dims(self) -> list[int]:
        """Channels of each stage's output."""
        return [block.conv2.out_channels for block in self.blocks]

    def stages(
        self, tokens: torch.Tensor, mask: torch.Tensor
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every stage's features (B, C_i, ceil(L / stride_i)) with the matching mask."""
        x = self.embed(tokens).transpose(1, 2)  # (B, E, L)
        pad = (-x.shape[-1]) % self.stem.stride[0]
        x = self.stem(nn.functional.pad(x * mask[:, None, :], (0, pad)))  # (B, E, L / stride)
        m = self.stem_pool(mask[:, None, :].float())[:, 0] > 0
        out = []
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = self.pool(x)
                m = self.pool(m[:, None, :].float())[:, 0] > 0
            x = block(x, m)
            out.append((x, m))
        return out

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.stages(tokens, mask)[-1]


class SiameseResNet1D(nn.Module):
    """Shared-weight ResNet-1D encoder for A and B; a pair head (``cfg.head``) on the two pooled
    embeddings.

    Symmetric by construction: score(A, B) == score(B, A).
    """

    def __init__(self, cfg: ResNet1DConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ResNet1DConfig()
        self.encoder = ResNet1DEncoder(self.cfg)
        d = self.encoder.out_dim
        self.head = build_pair_head(
            self.cfg.head, d, hidden=self.cfg.hidden, dropout=self.cfg.dropout,
            width=self.cfg.head_width, phi_hidden=self.cfg.head_phi_hidden,
        )  # fmt: skip

    @property
    def embedding_dim(self) -> int:
        """Width D of :meth:`embed`."""
        return self.encoder.out_dim

    def embed(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens -> (B, D) pooled protein embedding."""
        return self.pool(*self.encoder(tokens, mask))

    def pool(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, C, L') last-stage features + mask -> (B, C) protein embedding."""
        return masked_pool(x, mask, self.cfg.pool)

    def forward(
        self,
        tokens_a: torch.Tensor,
        mask_a: torch.Tensor,
        tokens_b: torch.Tensor,
        mask_b: torch.Tensor,
    ) -> PairOutput:
        """(B, La), (B, La), (B, Lb), (B, Lb) -> PairOutput with logits (B, 2)."""
        za, zb = self.embed(tokens_a, mask_a), self.embed(tokens_b, mask_b)
        features = symmetric_combine(za, zb)
        return PairOutput(
            logits=self.head.logits(za, zb), features=features, embedding_a=za, embedding_b=zb
        )
