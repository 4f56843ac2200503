"""Layer-wise semcom distillation: taps see hidden states and attention without changing the
model's output; the hidden / attention terms vanish for a student equal to its teacher and
teach the student's layers otherwise."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.distill.config import TrainConfig
from protdistill.tasks.semcom.model import DeepSC, DeepSCConfig
from protdistill.tasks.semcom.taps import (
    LayerTaps,
    attention_row_kl,
    student_to_teacher_layers,
)
from protdistill.tasks.semcom.train import SemcomModule

CFG = DeepSCConfig(vocab_size=30, d_model=16, n_heads=2, d_ff=32, enc_layers=2, dec_layers=2,
                   max_len=12, receiver_positions=True)  # fmt: skip
PAIRS = {"encoder": [(0, 0), (1, 1)], "decoder": [(0, 0), (1, 1)]}


def _batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, 30, (3, 9), generator=gen)
    tokens[:, 0] = 1
    tokens[1, 5], tokens[1, 6:] = 2, 0  # a shorter sentence, padded
    return {"tokens": tokens, "mask": tokens != 0}


@given(st.integers(1, 12), st.data())
def test_each_student_layer_maps_to_the_end_of_its_block(n_teacher, data) -> None:
    n_student = data.draw(st.integers(1, n_teacher))
    m = student_to_teacher_layers(n_teacher, n_student)
    assert len(m) == n_student and m[-1] == n_teacher - 1 and m[0] >= 0
    assert all(a < b for a, b in zip(m, m[1:], strict=False))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6))
def test_attention_row_kl_is_zero_for_equal_maps_and_positive_otherwise(b, h, q, k) -> None:
    gen = torch.Generator().manual_seed(b * 100 + h * 10 + q + k)
    t = torch.randn(b, h, q, k, generator=gen).softmax(-1)
    s = torch.randn(b, h, q, k, generator=gen).softmax(-1)
    mask = torch.ones(b, q, dtype=torch.bool)
    assert float(attention_row_kl(t, t, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(attention_row_kl(s, t, mask)) >= -1e-6
    mask[:, 0] = False  # a masked query row never counts
    s2 = s.clone()
    s2[:, :, 0] = t[:, :, 0].roll(1, -1) if k > 1 else s2[:, :, 0]
    assert float(attention_row_kl(s2, t, mask)) == pytest.approx(
        float(attention_row_kl(s, t, mask)), abs=1e-5
    )


def test_taps_keep_the_output_and_see_every_attention() -> None:
    torch.manual_seed(0)
    model, batch = DeepSC(CFG).eval(), _batch()
    fast = torch.backends.mha.get_fastpath_enabled()
    with torch.no_grad():
        plain = model(batch["tokens"], batch["mask"], 6.0, "awgn", torch.Generator().manual_seed(1))
        with LayerTaps(model, {"encoder": [1], "decoder": [0]}) as taps:
            tapped = model(
                batch["tokens"], batch["mask"], 6.0, "awgn", torch.Generator().manual_seed(1)
            )
    assert torch.backends.mha.get_fastpath_enabled() == fast
    torch.testing.assert_close(tapped.logits, plain.logits, atol=1e-5, rtol=0)
    assert set(taps.attn) == {
        ("encoder", 1, "self"),
        ("decoder", 0, "self"),
        ("decoder", 0, "cross"),
    }
    enc = taps.attn[("encoder", 1, "self")]
    assert enc.shape == (3, 2, 9, 9) and torch.allclose(enc.sum(-1), torch.ones(3, 2, 9))
    assert float(enc[1, :, :, 6:].abs().max()) == 0.0  # padded keys get no attention
    causal = taps.attn[("decoder", 0, "self")]
    assert float(causal.triu(1).abs().max()) == 0.0
    assert taps.hidden[("decoder", 0)].shape == (3, 8, 16)


def _module(student: DeepSC, teacher: DeepSC) -> SemcomModule:
    return SemcomModule(student, TrainConfig(), teacher.eval(), layer_pairs=PAIRS,
                        hidden_weight=1.0, attention_weight=1.0)  # fmt: skip


def test_layer_terms_vanish_for_the_teacher_itself_and_teach_a_different_student() -> None:
    torch.manual_seed(0)
    teacher = DeepSC(CFG).eval()
    same = copy.deepcopy(teacher).eval()  # dropout off: the same function as the teacher
    out = _module(same, teacher).step(_batch(), "val")
    assert float(out["hidden"].detach()) == pytest.approx(0.0, abs=1e-8)
    assert float(out["attention"].detach()) == pytest.approx(0.0, abs=1e-6)

    other = DeepSC(CFG).train()
    out = _module(other, teacher).step(_batch(), "train")
    assert float(out["hidden"].detach()) > 0 and float(out["attention"].detach()) > 0
    (out["hidden"] + out["attention"]).backward()
    grads = {
        name: p.grad
        for name, p in other.named_parameters()
        if "layers" in name and "self_attn" in name
    }
    assert grads and all(g is not None and float(g.abs().sum()) > 0 for g in grads.values())
