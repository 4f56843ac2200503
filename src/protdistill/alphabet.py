"""Residue alphabet shared by every student: 20 amino acids, X for unknown, 0 for padding."""

from __future__ import annotations

from pathlib import Path

import torch

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: Rare / ambiguous letters that are mapped to X (selenocysteine, pyrrolysine, B, Z, J).
AMBIGUOUS = "UOBZJX"
PAD = 0
UNK = len(AMINO_ACIDS) + 1  # index of X
VOCAB_SIZE = len(AMINO_ACIDS) + 2  # pad + 20 + X
_INDEX = {aa: i + 1 for i, aa in enumerate(AMINO_ACIDS)}
#: ESM-2's own 33-token vocabulary (public and fixed), for teachers written without a tokenizer.
ESM_VOCAB = (
    "<cls> <pad> <eos> <unk> L A G V S E R T I D P K Q N F Y M H W C X B U Z O . - <null_1> <mask>"
).split()


def write_esm_vocab(folder: str | Path) -> Path:
    """``folder/vocab.txt`` in ESM-2's token order (what `EsmTokenizer` reads)."""
    path = Path(folder) / "vocab.txt"
    path.write_text("\n".join(ESM_VOCAB) + "\n", encoding="utf-8")
    return path


def encode(seq: str) -> torch.Tensor:
    """Encode a validated sequence as token ids ``(L,)``; unknown letters become X."""
    return torch.tensor([_INDEX.get(c, UNK) for c in seq], dtype=torch.long)


def encode_batch(seqs: list[str], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to ``(B, L)`` token ids and a boolean mask (True = real residue)."""
    if max_len is not None:
        seqs = [s[:max_len] for s in seqs]
    length = max((len(s) for s in seqs), default=1)
    tokens = torch.full((len(seqs), max(length, 1)), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = encode(s)
    return tokens, tokens != PAD


def decode(tokens: torch.Tensor) -> str:
    """Inverse of :func:`encode`, dropping padding."""
    letters = "-" + AMINO_ACIDS + "X"
    return "".join(letters[int(t)] for t in tokens if int(t) != PAD)
