"""Hybrid models: one model's transmitter with another's receiver (e.g. teacher → student)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from protdistill.errors import ModelError
from protdistill.tasks.semcom.model import DeepSC, save_deepsc

#: Config fields both halves must share (the interface and the shared widths).
_SHARED = ("vocab_size", "d_model", "n_heads", "d_ff", "symbol_dim", "max_len")


def make_hybrid(transmitter_from: DeepSC, receiver_from: DeepSC) -> DeepSC:
    """A new :class:`DeepSC` with copies of ``transmitter_from.transmitter`` and
    ``receiver_from.receiver``. Raises :class:`ModelError` when their interfaces differ."""
    a, b = transmitter_from.config, receiver_from.config
    diff = [
        f"{k} {getattr(a, k)} vs {getattr(b, k)}" for k in _SHARED if getattr(a, k) != getattr(b, k)
    ]
    if diff:
        raise ModelError(
            "transmitter and receiver do not fit together: " + ", ".join(diff),
            fix="pair models distilled from the same teacher (same vocabulary and symbol size)",
        )
    cfg = b.model_copy(update={"enc_layers": a.enc_layers})
    model = DeepSC(cfg)
    model.transmitter.load_state_dict(transmitter_from.transmitter.state_dict())
    model.receiver.load_state_dict(receiver_from.receiver.state_dict())
    return model.eval()


def save_hybrid(
    path: str | Path,
    transmitter_from: DeepSC,
    receiver_from: DeepSC,
    vocab: list[str],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Build the hybrid and write it as a self-contained DeepSC ``.pt``."""
    model = make_hybrid(transmitter_from, receiver_from)
    return save_deepsc(path, model, vocab, {"role": "hybrid", **(meta or {})})
