"""DeepSC model: shapes, causality, decoding, checkpoint round trip and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from protdistill.errors import CheckpointError, ModelError
from protdistill.tasks.semcom.data import END, PAD, START
from protdistill.tasks.semcom.hybrid import make_hybrid
from protdistill.tasks.semcom.model import DeepSC, DeepSCConfig, load_deepsc, save_deepsc

CFG = DeepSCConfig(vocab_size=30, d_model=16, n_heads=2, d_ff=32, enc_layers=2, dec_layers=1,
                   symbol_dim=4, max_len=12, dropout=0.0)  # fmt: skip


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.tensor([[START, 5, 6, 7, END, PAD], [START, 8, 9, 10, 11, END]])
    return tokens, tokens != PAD


def test_forward_shapes_and_unit_power_symbols() -> None:
    torch.manual_seed(0)
    model = DeepSC(CFG).eval()
    tokens, mask = _batch()
    out = model(tokens, mask, 10.0, "awgn", torch.Generator().manual_seed(0))
    assert out.logits.shape == (2, 5, 30)
    assert out.symbols.shape == out.received.shape == (2, 6, 4)
    assert torch.all(out.symbols[0, 5] == 0)
    power = out.symbols[1].detach().pow(2).sum() / (6 * 2)
    assert float(power) == pytest.approx(1.0, rel=1e-5)


def test_receiver_is_causal() -> None:
    torch.manual_seed(0)
    model = DeepSC(CFG).eval()
    tokens, mask = _batch()
    a = model(tokens, mask, 100.0, "none").logits
    changed = tokens.clone()
    changed[1, 4] = 3
    b = model(changed, mask, 100.0, "none").logits
    # the prefix up to position 3 is unchanged, so the predictions there cannot move ...
    # ... except through the transmitter, which sees the whole sentence: compare receivers only
    memory = model.receiver.memory(model.transmitter(tokens, mask))
    pa = model.receiver(memory, mask, tokens[:, :-1])
    pb = model.receiver(memory, mask, changed[:, :-1])
    assert torch.allclose(pa[1, :4], pb[1, :4], atol=1e-6)
    assert not torch.allclose(pa[1, 4], pb[1, 4])
    assert not torch.allclose(a, b)


def test_decode_starts_with_start_and_pads_after_end() -> None:
    torch.manual_seed(0)
    model = DeepSC(CFG).eval()
    tokens, mask = _batch()
    out = model.decode(tokens, mask, 5.0, "rayleigh", torch.Generator().manual_seed(0))
    assert out.shape[0] == 2 and out.shape[1] <= CFG.max_len
    assert torch.all(out[:, 0] == START)
    for row in out.tolist():
        if END in row:
            assert all(t == PAD for t in row[row.index(END) + 1 :])


def test_checkpoint_round_trip_is_exact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DeepSC(CFG).eval()
    vocab = ["<pad>", "<start>", "<end>", "<unk>"] + [f"w{i}" for i in range(26)]
    path = save_deepsc(tmp_path / "m.pt", model, vocab, {"role": "teacher", "p": tmp_path})
    loaded = load_deepsc(path)
    tokens, mask = _batch()
    a = model(tokens, mask, 3.0, "awgn", torch.Generator().manual_seed(5)).logits
    b = loaded.model(tokens, mask, 3.0, "awgn", torch.Generator().manual_seed(5)).logits
    assert torch.equal(a, b) and loaded.vocab == vocab and loaded.meta["p"] == str(tmp_path)
    assert torch.load(path, weights_only=True)["format"] == "protdistill.semcom/1"


def test_bad_checkpoints_are_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_deepsc(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not a protdistill semantic-communication"):
        load_deepsc(other)


def test_hybrid_takes_transmitter_and_receiver_and_rejects_mismatch() -> None:
    torch.manual_seed(0)
    a, b = DeepSC(CFG).eval(), DeepSC(CFG.model_copy(update={"enc_layers": 1})).eval()
    h = make_hybrid(a, b)
    tokens, mask = _batch()
    assert torch.equal(h.transmitter(tokens, mask), a.transmitter(tokens, mask))
    mem = h.receiver.memory(h.transmitter(tokens, mask))
    assert torch.equal(h.receiver(mem, mask, tokens), b.receiver(mem, mask, tokens))
    with pytest.raises(ModelError, match="symbol_dim 4 vs 6"):
        make_hybrid(a, DeepSC(CFG.model_copy(update={"symbol_dim": 6})))
