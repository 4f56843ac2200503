"""Embeddings back to residues: the teacher's masked-LM head when present, else a trained decoder.

The stand-in teacher has no LM head, so :class:`ResidueDecoder` (a small per-residue MLP) is fitted
on the cached real embeddings; :func:`decoder_accuracy` reports how well it recovers real peptides.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoTokenizer, EsmForMaskedLM

from protdistill.alphabet import AMINO_ACIDS
from protdistill.errors import ModelError

#: Residues a decoder may emit (X is never generated).
LETTERS = AMINO_ACIDS


@dataclass
class DecoderOutput:
    """``logits`` ``(B, L, 20)`` over :data:`LETTERS` and the residue ``mask`` ``(B, L)``."""

    logits: Tensor
    mask: Tensor

    def sequences(self) -> list[str]:
        """Arg-max residues of each real position."""
        best = self.logits.argmax(-1)
        return [
            "".join(LETTERS[int(i)] for i in row[m]) for row, m in zip(best, self.mask, strict=True)
        ]


def letter_targets(seqs: list[str], length: int) -> Tensor:
    """Indices into :data:`LETTERS` ``(B, length)``; -100 marks padding and X (ignored)."""
    index = {aa: i for i, aa in enumerate(LETTERS)}
    out = torch.full((len(seqs), length), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor([index.get(c, -100) for c in s], dtype=torch.long)
    return out


class ResidueDecoder(nn.Module):
    """Per-residue MLP ``(B, L, D) -> (B, L, 20)``, trained on (noised) real embeddings."""

    def __init__(self, embed_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(embed_dim), nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, 20)
        )

    def forward(self, x: Tensor, mask: Tensor) -> DecoderOutput:
        return DecoderOutput(logits=self.net(x), mask=mask)

    def loss(self, x: Tensor, mask: Tensor, seqs: list[str], noise: float = 0.0) -> Tensor:
        """Cross-entropy on the letters of ``seqs``; ``noise`` adds Gaussian jitter (robustness)."""
        if noise > 0:
            x = x + noise * torch.randn_like(x)
        logits = self.net(x)
        target = letter_targets(seqs, x.shape[1]).to(x.device)
        return F.cross_entropy(logits.reshape(-1, 20), target.reshape(-1), ignore_index=-100)


class LMHeadDecoder(nn.Module):
    """Wraps an ESM-2 masked-LM head (``EsmLMHead``), restricted to the 20 amino-acid tokens.

    Works on *raw* (un-standardised) last-layer embeddings; the caller un-standardises.
    """

    def __init__(self, lm_head: nn.Module, token_ids: list[int]) -> None:
        super().__init__()
        if len(token_ids) != 20:
            raise ModelError(
                f"LM head vocabulary gives {len(token_ids)} of the 20 amino-acid tokens",
                fix="use an ESM-2 tokenizer, or the trained residue decoder",
            )
        self.lm_head = lm_head
        self.register_buffer("token_ids", torch.tensor(token_ids), persistent=False)

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> LMHeadDecoder:
        """Load the LM head of an ``EsmForMaskedLM`` checkpoint; ModelError when it has none."""
        try:
            model, info = EsmForMaskedLM.from_pretrained(name_or_path, output_loading_info=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load {name_or_path} ({exc})", path=name_or_path) from exc
        if any(k.startswith("lm_head") for k in info.get("missing_keys", [])):
            raise ModelError(
                "checkpoint has no masked-LM head",
                path=name_or_path,
                fix="train the residue decoder on cached embeddings (decoder: trained)",
            )
        tok = AutoTokenizer.from_pretrained(name_or_path)
        ids = [tok.convert_tokens_to_ids(a) for a in LETTERS]
        return cls(model.lm_head.eval(), ids)

    def forward(self, x: Tensor, mask: Tensor) -> DecoderOutput:
        logits = self.lm_head(x)[..., self.token_ids]
        return DecoderOutput(logits=logits, mask=mask)


def rounding_loss(
    decoder: ResidueDecoder, x0_hat: Tensor, mask: Tensor, seqs: list[str], weight: Tensor
) -> Tensor:
    """Diffusion-LM's rounding term: the decoder's cross-entropy on the clean estimates ``x0_hat``
    ``(B, L, D)``, each peptide weighted by ``weight`` ``(B,)`` (its signal fraction ᾱ_t, so pure
    noise is not asked for letters). Only the estimate learns; the decoder's weights stay put."""
    params = {k: v.detach() for k, v in decoder.named_parameters()}
    logits = torch.func.functional_call(decoder, params, (x0_hat, mask)).logits
    target = letter_targets(seqs, x0_hat.shape[1]).to(x0_hat.device)
    ce = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
    per_peptide = ce.sum(1) / (target != -100).sum(1).clamp_min(1)
    return (weight * per_peptide).sum() / weight.sum().clamp_min(1e-8)


@torch.no_grad()
def decoder_accuracy(decoder: nn.Module, x: Tensor, mask: Tensor, seqs: list[str]) -> float:
    """Fraction of real residues (X excluded) the decoder recovers from embeddings ``(B, L, D)``."""
    logits = decoder(x, mask).logits
    target = letter_targets(seqs, x.shape[1]).to(x.device)
    valid = target != -100
    return float((logits.argmax(-1)[valid] == target[valid]).float().mean())
