"""Helpers for the peptide tests: tiny ESM-2 config, typed toy peptides, ../shared location."""

from __future__ import annotations

import random

ESM_VOCAB = (
    "<cls> <pad> <eos> <unk> L A G V S E R T I D P K Q N F Y M H W C X B U Z O . - <null_1> <mask>"
).split()
SHARED = __import__("pathlib").Path(__file__).resolve().parents[2].parent / "shared"


def tiny_esm_config(**kw):  # noqa: ANN201
    from transformers import EsmConfig

    base = dict(
        vocab_size=33,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        pad_token_id=1,
        mask_token_id=32,
        position_embedding_type="rotary",
        token_dropout=True,
        max_position_embeddings=1026,
    )
    base.update(kw)
    return EsmConfig(**base)


def make_peptides(n_per_type: int = 24, seed: int = 0) -> list[tuple[str, str]]:
    """Typed peptides with a type-specific bias (amp: K/L rich, afp: C/G rich, avp: W/D rich)."""
    rng = random.Random(seed)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    bias = {"amp": "KLKLK", "afp": "CGCGC", "avp": "WDWDW"}
    rows = []
    for kind, extra in bias.items():
        for _ in range(n_per_type):
            n = rng.randint(6, 20)
            rows.append((kind, "".join(rng.choice(letters + extra * 3) for _ in range(n))))
    return rows
