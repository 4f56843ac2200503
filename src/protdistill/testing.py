"""Tiny random ESM-2 models (2 layers, width 32) for tests and examples that must run without
downloaded weights. Same vocabulary and tokenizer format as the hub's `facebook/esm2_*`."""

from __future__ import annotations

from pathlib import Path

from protdistill.alphabet import ESM_VOCAB, write_esm_vocab  # noqa: F401 (re-exported)


def tiny_esm_config(**overrides):  # noqa: ANN201 (transformers.EsmConfig, imported lazily)
    """An `EsmConfig` of ESM-2 shape: rotary positions, token dropout, 33-token vocabulary."""
    from transformers import EsmConfig  # lazy: start-up time

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
    return EsmConfig(**{**base, **overrides})


def tiny_esm(seed: int = 0, **overrides):  # noqa: ANN201 (transformers.EsmModel)
    """A seeded random `EsmModel` in eval mode."""
    import torch  # lazy: start-up time
    from transformers import EsmModel

    torch.manual_seed(seed)
    return EsmModel(tiny_esm_config(**overrides), add_pooling_layer=False).eval()


def save_tiny_esm(folder: str | Path, seed: int = 0, **overrides) -> str:
    """Save a tiny random ESM-2 (weights + tokenizer) as a local model directory."""
    from transformers import EsmTokenizer  # lazy: start-up time

    folder = Path(folder)
    tiny_esm(seed, **overrides).save_pretrained(folder)
    EsmTokenizer(str(write_esm_vocab(folder))).save_pretrained(folder)
    return str(folder)
