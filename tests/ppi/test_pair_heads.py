"""Pair heads: the factorised head's closed form against brute force, symmetry, the propensity +
pairing decomposition, a block of scores equal to the pairwise formula, the block top-K equal to a
full stable sort, calibration and specificity against hand computations, the option through a
saved run."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import protdistill
from protdistill.distill.checkpoint import save_model
from protdistill.students import build_student
from protdistill.students.pair_heads import FactorisedPairHead, MlpPairHead
from protdistill.tasks.ppi.screen.blocks import SiameseScorer, TopK
from protdistill.tasks.ppi.screen.ranking import prior_shift, profile, reference_set, specificity


def _head(dim: int, width: int, seed: int, phi_hidden: int = 0) -> FactorisedPairHead:
    torch.manual_seed(seed)
    head = FactorisedPairHead(dim, width, dropout=0.0, phi_hidden=phi_hidden)
    with torch.no_grad():
        for p in head.parameters():
            p.normal_()
    return head.eval()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 12), st.integers(1, 8),
       st.integers(0, 99), st.sampled_from([0, 5]))  # fmt: skip
def test_factorised_block_equals_brute_force(r, c, dim, width, seed, phi_hidden) -> None:
    head = _head(dim, width, seed, phi_hidden)
    rows, cols = torch.randn(r, dim), torch.randn(c, dim)
    block = head.score(rows, cols)
    # float32 rounding scales with the largest logit: terms in the hundreds may cancel to ~0
    scale = max(1.0, block.abs().max().item())
    brute = torch.empty(r, c)
    for i in range(r):
        for j in range(c):
            a, b = head.norm(rows[i]), head.norm(cols[j])
            pairing = sum(head.lam[k] * head.phi(a)[k] * head.phi(b)[k] for k in range(width))
            brute[i, j] = head.beta(a)[0] + head.beta(b)[0] + pairing + head.bias
    assert torch.allclose(block, brute, atol=1e-4 * scale, rtol=0)
    # symmetric by construction, and the parts sum to the logit
    assert torch.allclose(head.score(cols, rows), block.T, atol=1e-5 * scale, rtol=0)
    a, b = rows[:1].expand(c, -1), cols
    parts = head.propensity(a) + head.propensity(b) + head.pairing(a, b) + head.bias
    assert torch.allclose(parts, block[0], atol=1e-4 * scale, rtol=0)


def test_two_class_logits_give_the_sigmoid_of_the_pair_logit() -> None:
    head = _head(5, 3, 0)
    za, zb = torch.randn(7, 5), torch.randn(7, 5)
    prob = head.logits(za, zb).softmax(-1)[:, 1]
    assert torch.allclose(prob, torch.sigmoid(head.pair_logit(za, zb)), atol=1e-6)


def test_mlp_head_scores_a_block_as_it_scores_pairs() -> None:
    torch.manual_seed(0)
    head = MlpPairHead(6, 10, 0.0).eval()
    rows, cols = torch.randn(4, 6), torch.randn(3, 6)
    block = head.score(rows, cols)
    for i in range(4):
        out = head.logits(rows[i : i + 1].expand(3, -1), cols)
        assert torch.allclose(block[i], out[:, 1] - out[:, 0], atol=1e-5)
    assert head.propensity(rows) is None


def test_scorer_factors_equal_the_student_forward() -> None:
    torch.manual_seed(1)
    model = build_student({"kind": "resnet1d", "embed_dim": 8, "channels": [8, 12],
                           "head": "factorised", "head_width": 5}).eval()  # fmt: skip
    emb = [torch.randn(12) for _ in range(9)]
    scorer = SiameseScorer(model, emb, memory_bytes=2**20)
    idx = torch.arange(9)
    block = scorer(idx, idx)
    with torch.no_grad():
        direct = model.head.score(torch.stack(emb), torch.stack(emb))
    assert torch.allclose(block, direct, atol=1e-5)
    a, b = torch.tensor([0, 3, 8]), torch.tensor([5, 3, 1])
    assert torch.allclose(scorer.pairs(a, b), block[a, b], atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 5), min_size=12, max_size=12), min_size=1, max_size=4),
    st.integers(1, 5),
)
def test_block_merge_keeps_what_a_full_stable_sort_keeps(values, k) -> None:
    # few distinct values: many ties, some rows tied at the k-th value, some not
    v = torch.tensor(values, dtype=torch.float)
    v[:, ::4] = -torch.inf  # masked pairs
    rows, partners = torch.arange(len(v)), torch.arange(v.shape[1]) * 3
    full, merged = TopK.empty(len(v), k), TopK.empty(len(v), k)
    # the reference: every candidate sorted stably
    full._keep_best(rows, torch.cat([full.values, v], 1),
                    torch.cat([full.index, partners[None, :].expand(len(v), -1)], 1))  # fmt: skip
    merged.merge(rows, v, partners)  # 12 > 2k: the pre-selection path
    assert torch.equal(full.index, merged.index) and torch.equal(full.values, merged.values)


def test_prior_shift_is_bayes_on_a_synthetic_prior() -> None:
    # a classifier calibrated at a balanced training prior: p = sigmoid(x); at prior 0.01 the
    # posterior is p*0.01 / (p*0.01 + (1-p)*0.99) (Bayes with the class-conditional ratios kept)
    x = torch.linspace(-6, 6, 25)
    p = torch.sigmoid(x)
    expected = p * 0.01 / (p * 0.01 + (1 - p) * 0.99)
    got = torch.sigmoid(x + prior_shift(0.5, 0.01))
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.all(got[1:] > got[:-1])  # monotone: the ranking is unchanged
    assert prior_shift(0.3, None) == 0.0
    assert math.isclose(prior_shift(0.2, 0.2), 0.0, abs_tol=1e-12)


def test_profile_and_specificity_equal_a_hand_computation() -> None:
    logits = torch.tensor([[0.0, 5.0, 1.0, 3.0], [5.0, 0.0, 4.0, 3.0],
                           [1.0, 4.0, 0.0, -2.0], [3.0, 3.0, -2.0, 0.0]])  # fmt: skip

    def scorer(rows, cols):
        return logits[rows][:, cols]

    idx = torch.arange(4)
    mean, sd = profile(scorer, idx, idx, side=3)
    # self left out: 0 -> (5, 1, 3) mean 3, sd sqrt(8/3); 1 -> (5, 4, 3) mean 4, sd sqrt(2/3)
    assert torch.allclose(mean, torch.tensor([3.0, 4.0, 1.0, 4 / 3]))
    assert torch.allclose(sd[:2], torch.tensor([(8 / 3) ** 0.5, (2 / 3) ** 0.5]))
    spec = specificity(logits, mean, sd)
    assert spec[2, 1].item() == pytest.approx((4.0 - 4.0) / (2 / 3) ** 0.5)
    assert spec[1, 0].item() == pytest.approx((5.0 - 3.0) / (8 / 3) ** 0.5)
    assert torch.equal(reference_set(idx, 10), idx)
    sample = reference_set(torch.arange(100), 10, seed=3)
    assert len(sample) == 10 and torch.equal(sample, reference_set(torch.arange(100), 10, seed=3))


@pytest.mark.parametrize(("head", "phi_hidden"), [("mlp", 0), ("factorised", 0),
                                                   ("factorised", 6)])  # fmt: skip
def test_head_option_round_trips_through_a_saved_run(tmp_path, head, phi_hidden) -> None:
    student = {"kind": "resnet1d", "embed_dim": 8, "channels": [8, 12], "head": head,
               "head_width": 4, "head_phi_hidden": phi_hidden}  # fmt: skip
    model = build_student(student).eval()
    save_model(tmp_path / "student.safetensors", model, {"student": student, "ppi": {}})
    loaded = protdistill.load(tmp_path / "student.safetensors")
    kind = FactorisedPairHead if head == "factorised" else MlpPairHead
    assert isinstance(loaded.network.head, kind)
    saved = model.head.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in loaded.network.head.state_dict().items())
    seqs = {"a": "MKTAYIAKQR", "b": "MSTNPKPQRKT"}
    p = loaded.predict([("a", "b")], seqs)
    q = loaded.predict([("b", "a")], seqs)
    assert abs(float(p[0]) - float(q[0])) < 1e-6
