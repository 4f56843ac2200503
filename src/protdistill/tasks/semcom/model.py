"""DeepSC-style semantic communication: Transformer transmitter -> channel -> Transformer receiver.

``DeepSC.transmitter`` (the "encoder" of partial distillation) = word embedding + positions +
Transformer encoder layers + dense channel encoder producing power-normalised symbols ``(B, L, S)``.
``DeepSC.receiver`` (the "decoder") = dense channel decoder (+ symbol positions) + Transformer
decoder layers + output projection. Transmitter and receiver only meet through the symbols and the
padding mask, so any transmitter can be paired with any receiver of the same ``symbol_dim`` and
vocabulary (a hybrid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from protdistill.config import Config, plain_data
from protdistill.errors import CheckpointError
from protdistill.io.atomic import torch_save
from protdistill.tasks.semcom.channel import power_normalize, transmit
from protdistill.tasks.semcom.data import END, PAD, START

FORMAT = "protdistill.semcom/1"


class DeepSCConfig(Config):
    """Architecture of a DeepSC model (the checkpoint stores it)."""

    vocab_size: int = 8000
    d_model: int = 128
    n_heads: int = 8
    d_ff: int = 512
    enc_layers: int = 3
    dec_layers: int = 3
    symbol_dim: int = 16
    max_len: int = 32
    dropout: float = 0.1
    # positions of the received symbols added to the receiver's memory (the receiver knows which
    # slot a symbol arrived in); False reproduces checkpoints written before the option existed
    receiver_positions: bool = False


@dataclass
class SemcomOutput:
    """``logits (B, T, V)`` for the next token, ``symbols (B, L, S)`` sent, ``mask (B, L)``."""

    logits: torch.Tensor
    symbols: torch.Tensor
    received: torch.Tensor
    mask: torch.Tensor


class PositionalEncoding(nn.Module):
    """Fixed sinusoidal positions added to ``(B, L, D)`` embeddings."""

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.shape[1]]


class Transmitter(nn.Module):
    """Semantic encoder + channel encoder: ids ``(B, L)`` -> symbols ``(B, L, S)``."""

    def __init__(self, cfg: DeepSCConfig) -> None:
        super().__init__()
        self.scale = math.sqrt(cfg.d_model)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=PAD)
        self.pos = PositionalEncoding(cfg.d_model, cfg.max_len)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, batch_first=True
            )
            for _ in range(cfg.enc_layers)
        )
        self.channel_encoder = nn.Sequential(
            nn.Linear(cfg.d_model, 2 * cfg.d_model),
            nn.ReLU(),
            nn.Linear(2 * cfg.d_model, cfg.symbol_dim),
        )

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``tokens (B, L)``, ``mask (B, L)`` -> unit-power symbols ``(B, L, S)`` (0 on padding)."""
        h = self.dropout(self.pos(self.embed(tokens) * self.scale))
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=~mask)
        return power_normalize(self.channel_encoder(h), mask)


class Receiver(nn.Module):
    """Channel decoder + semantic decoder: received ``(B, L, S)`` + prefix ``(B, T)`` -> logits."""

    def __init__(self, cfg: DeepSCConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.scale = math.sqrt(d)
        self.channel_in = nn.Linear(cfg.symbol_dim, d)
        self.channel_ff = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.ReLU(), nn.Linear(cfg.d_ff, d))
        self.channel_norm = nn.LayerNorm(d)
        self.memory_pos = PositionalEncoding(d, cfg.max_len) if cfg.receiver_positions else None
        self.embed = nn.Embedding(cfg.vocab_size, d, padding_idx=PAD)
        self.pos = PositionalEncoding(d, cfg.max_len)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout, batch_first=True)
            for _ in range(cfg.dec_layers)
        )
        self.out = nn.Linear(d, cfg.vocab_size)

    def memory(self, received: torch.Tensor) -> torch.Tensor:
        """Channel-decoded features ``(B, L, D)``."""
        h = torch.relu(self.channel_in(received))
        h = self.channel_norm(h + self.channel_ff(h))
        return h if self.memory_pos is None else self.memory_pos(h)

    def hidden(
        self, memory: torch.Tensor, mask: torch.Tensor, prefix: torch.Tensor
    ) -> torch.Tensor:
        """Decoder states ``(B, T, D)`` for ``prefix (B, T)`` attending to ``memory (B, L, D)``."""
        t = prefix.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=prefix.device).triu(1)
        h = self.dropout(self.pos(self.embed(prefix) * self.scale))
        for layer in self.layers:
            h = layer(
                h,
                memory,
                tgt_mask=causal,
                tgt_is_causal=True,
                tgt_key_padding_mask=prefix == PAD,
                memory_key_padding_mask=~mask,
            )
        return h

    def forward(
        self, memory: torch.Tensor, mask: torch.Tensor, prefix: torch.Tensor
    ) -> torch.Tensor:
        """``memory (B, L, D)``, source ``mask (B, L)``, ``prefix (B, T)`` -> ``(B, T, V)``."""
        return self.out(self.hidden(memory, mask, prefix))


class DeepSC(nn.Module):
    """Transmitter -> channel -> receiver. ``transmitter``/``receiver`` are the two parts."""

    def __init__(self, cfg: DeepSCConfig) -> None:
        super().__init__()
        self.config = cfg
        self.transmitter = Transmitter(cfg)
        self.receiver = Receiver(cfg)

    def forward(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        snr_db: torch.Tensor | float,
        channel: str = "awgn",
        generator: torch.Generator | None = None,
    ) -> SemcomOutput:
        """Teacher-forced pass: ``tokens (B, L)`` with ``<start> ... <end>``; logits ``(B, L-1, V)``
        predict ``tokens[:, 1:]``."""
        symbols = self.transmitter(tokens, mask)
        received = transmit(symbols, snr_db, channel, generator)
        logits = self.receiver(self.receiver.memory(received), mask, tokens[:, :-1])
        return SemcomOutput(logits=logits, symbols=symbols, received=received, mask=mask)

    @torch.no_grad()
    def decode(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        snr_db: torch.Tensor | float,
        channel: str = "awgn",
        generator: torch.Generator | None = None,
        max_len: int | None = None,
    ) -> torch.Tensor:
        """Greedy decoding of the received sentence: ids ``(B, T)`` starting with ``<start>``."""
        received = transmit(self.transmitter(tokens, mask), snr_db, channel, generator)
        return self.receiver_decode(received, mask, max_len)

    @torch.no_grad()
    def receiver_decode(
        self, received: torch.Tensor, mask: torch.Tensor, max_len: int | None = None
    ) -> torch.Tensor:
        """Greedy decoding from received symbols ``(B, L, S)``."""
        memory = self.receiver.memory(received)
        steps = max_len or self.config.max_len
        out = torch.full((received.shape[0], 1), START, dtype=torch.long, device=received.device)
        done = torch.zeros(received.shape[0], dtype=torch.bool, device=received.device)
        for _ in range(steps - 1):
            nxt = self.receiver.out(self.receiver.hidden(memory, mask, out)[:, -1]).argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            out = torch.cat([out, nxt.unsqueeze(1)], dim=1)
            done |= nxt == END
            if bool(done.all()):
                break
        return out


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def save_deepsc(
    path: str | Path, model: DeepSC, vocab: list[str], meta: dict[str, Any] | None = None
) -> Path:
    """Write a self-contained ``.pt`` (config, weights, vocabulary, metadata) atomically.

    It loads with ``torch.load(..., weights_only=True)`` and :func:`load_deepsc`.
    """
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "family": "deepsc",
        "config": model.config.model_dump(),
        "state_dict": state,
        "vocab": list(vocab),
        "meta": plain_data(meta or {}),
    }
    return torch_save(path, payload)


@dataclass
class LoadedDeepSC:
    """A model rebuilt from a checkpoint with its vocabulary and metadata."""

    model: DeepSC
    vocab: list[str]
    meta: dict[str, Any]
    path: Path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Raw checkpoint dict; :class:`CheckpointError` when missing, unreadable or not DeepSC."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            "checkpoint not found",
            path=path,
            fix="pass a .pt written by `protdistill semcom train`",
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
        raise CheckpointError(
            f"cannot read checkpoint ({type(exc).__name__})", path=path, fix="re-create the file"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            "not a protdistill semantic-communication checkpoint",
            path=path,
            fix="pass a .pt written by `protdistill semcom train` or `protdistill distill`",
        )
    return payload


def load_deepsc(path: str | Path) -> LoadedDeepSC:
    """Rebuild a :class:`DeepSC` (eval mode) from :func:`save_deepsc` output."""
    payload = read_checkpoint(path)
    model = DeepSC(DeepSCConfig(**payload["config"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            "weights do not match the stored architecture", path=path, fix="re-create the file"
        ) from exc
    return LoadedDeepSC(model.eval(), payload["vocab"], payload.get("meta", {}), Path(path))
