"""The math of the logit, response and feature distillation losses: exact values, gradients,
masks and invariances (relation, attention and map KD: test_structured_losses.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from loss_helpers import FAST, gen, randn, random_mask, scramble

from protdistill.distill import losses as L
from protdistill.errors import ConfigError, ModelError

torch.set_num_threads(1)


# --------------------------------------------------------------------------- kd_kl


@FAST
@given(
    b=st.integers(1, 4),
    length=st.one_of(st.none(), st.integers(1, 5)),
    c=st.integers(2, 7),
    temperature=st.floats(0.05, 50.0),
    scale=st.floats(0.0, 60.0),
    seed=st.integers(0, 10_000),
)
def test_kd_kl_is_exactly_zero_for_identical_logits(b, length, c, temperature, scale, seed) -> None:
    shape = (b, c) if length is None else (b, length, c)
    logits = randn(*shape, seed=seed) * scale
    loss = L.kd_kl(logits, logits.clone(), temperature)
    assert loss.shape == ()
    assert abs(loss.item()) <= 1e-7


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 20.0, 100.0])
def test_kd_kl_gradient_is_analytic_t_times_softmax_difference(temperature: float) -> None:
    b, c = 5, 7
    s = randn(b, c, seed=1).mul(3).requires_grad_()
    t = randn(b, c, seed=2).mul(3)
    L.kd_kl(s, t, temperature).backward()
    expected = temperature * (F.softmax(s / temperature, -1) - F.softmax(t / temperature, -1)) / b
    torch.testing.assert_close(s.grad, expected.detach(), atol=1e-6, rtol=1e-5)


def test_kd_kl_t_squared_keeps_gradient_scale_for_large_t() -> None:
    # For large T, softmax(x/T) ~ (1 + x/T)/C, so T·(p_s − p_t) → (s − t − mean)/C: constant in T.
    s = randn(3, 5, seed=3).requires_grad_()
    t = randn(3, 5, seed=4)
    norms = []
    for temperature in (50.0, 100.0, 200.0):
        s.grad = None
        L.kd_kl(s, t, temperature).backward()
        norms.append(s.grad.norm().item())
    limit = ((s - t) - (s - t).mean(-1, keepdim=True)).detach().div(5 * 3).norm().item()
    for n in norms:
        assert n == pytest.approx(limit, rel=0.03)


def test_kd_kl_value_matches_the_kl_formula() -> None:
    s, t, temperature = randn(2, 3, 4, seed=5), randn(2, 3, 4, seed=6), 2.0
    p_t = F.softmax(t / temperature, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / temperature, -1))).sum(-1).mean()
    torch.testing.assert_close(L.kd_kl(s, t, temperature), temperature**2 * kl)


@FAST
@given(seed=st.integers(0, 10_000), per_residue=st.booleans())
def test_kd_kl_masked_items_change_nothing(seed: int, per_residue: bool) -> None:
    shape = (3, 4) if per_residue else (5,)
    s = randn(*shape, 6, seed=seed).requires_grad_()
    t = randn(*shape, 6, seed=seed + 1)
    mask = random_mask(shape, seed)
    loss = L.kd_kl(s, t, 2.0, mask)
    (grad,) = torch.autograd.grad(loss, s)
    s2 = scramble(s.detach(), mask, seed + 2).requires_grad_()
    loss2 = L.kd_kl(s2, scramble(t, mask, seed + 3), 2.0, mask)
    (grad2,) = torch.autograd.grad(loss2, s2)
    torch.testing.assert_close(loss, loss2)
    torch.testing.assert_close(grad, grad2)
    assert torch.all(grad[~mask] == 0)
    torch.testing.assert_close(loss, L.kd_kl(s[mask], t[mask], 2.0))


def test_kd_kl_all_masked_is_zero_and_differentiable() -> None:
    s = randn(2, 3, seed=7).requires_grad_()
    loss = L.kd_kl(s, randn(2, 3, seed=8), 1.0, torch.zeros(2, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(s.grad == 0)


@given(temperature=st.floats(max_value=0.0, allow_nan=False))
def test_kd_kl_rejects_non_positive_temperature(temperature: float) -> None:
    with pytest.raises(ConfigError, match="temperature"):
        L.kd_kl(torch.zeros(1, 2), torch.zeros(1, 2), temperature)


def test_kd_kl_shape_errors_are_model_errors() -> None:
    with pytest.raises(ModelError, match="student shape"):
        L.kd_kl(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ModelError, match="mask shape"):
        L.kd_kl(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3), mask=torch.ones(2, dtype=torch.bool))


# --------------------------------------------------------------------------- response KD / CE


def test_cross_entropy_matches_torch_on_valid_items() -> None:
    logits, labels = randn(3, 4, 5, seed=9), torch.randint(0, 5, (3, 4), generator=gen(9))
    mask = random_mask((3, 4), 9)
    expected = F.cross_entropy(logits[mask], labels[mask])
    torch.testing.assert_close(L.cross_entropy(logits, labels, mask), expected)
    labels_ignored = labels.clone()
    labels_ignored[~mask] = -100
    torch.testing.assert_close(L.cross_entropy(logits, labels_ignored), expected)


def test_response_kd_alpha_extremes_and_missing_labels() -> None:
    s, t = randn(4, 3, seed=10), randn(4, 3, seed=11)
    y = torch.tensor([0, 2, 1, 1])
    kd = L.kd_kl(s, t, 3.0)
    ce = F.cross_entropy(s, y)
    assert torch.equal(L.response_kd(s, t, y, alpha=1.0, temperature=3.0), kd)
    torch.testing.assert_close(L.response_kd(s, t, y, alpha=0.0, temperature=3.0), ce)
    for alpha in (0.0, 0.3, 1.0):
        assert torch.equal(L.response_kd(s, t, None, alpha=alpha, temperature=3.0), kd)
    mixed = L.response_kd(s, t, y, alpha=0.3, temperature=3.0)
    torch.testing.assert_close(mixed, 0.3 * kd + 0.7 * ce)


@FAST
@given(seed=st.integers(0, 10_000), alpha=st.floats(0.0, 1.0))
def test_response_kd_masked_items_change_nothing(seed: int, alpha: float) -> None:
    s = randn(2, 5, 4, seed=seed).requires_grad_()
    t = randn(2, 5, 4, seed=seed + 1)
    y = torch.randint(0, 4, (2, 5), generator=gen(seed))
    mask = random_mask((2, 5), seed)
    loss = L.response_kd(s, t, y, alpha=alpha, temperature=2.0, mask=mask)
    (grad,) = torch.autograd.grad(loss, s)
    y2 = torch.where(mask, y, 99)  # out-of-range labels at padding are never read
    s2 = scramble(s.detach(), mask, seed + 2).requires_grad_()
    loss2 = L.response_kd(
        s2, scramble(t, mask, seed + 3), y2, alpha=alpha, temperature=2.0, mask=mask
    )
    (grad2,) = torch.autograd.grad(loss2, s2)
    torch.testing.assert_close(loss, loss2)
    torch.testing.assert_close(grad, grad2)


@given(alpha=st.one_of(st.floats(max_value=-1e-6), st.floats(min_value=1.000001)))
def test_response_kd_rejects_alpha_outside_unit_interval(alpha: float) -> None:
    with pytest.raises(ConfigError, match="alpha"):
        L.response_kd(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1).long(), alpha=alpha)


# --------------------------------------------------------------------------- feature KD


def test_feature_kd_values_and_normalisation() -> None:
    s, t = randn(3, 6, 8, seed=12), randn(3, 6, 8, seed=13)
    assert L.feature_kd(t, t.clone()).item() == pytest.approx(0.0, abs=1e-7)
    torch.testing.assert_close(L.feature_kd(s, t, normalize=False), F.mse_loss(s, t))
    expected = F.mse_loss(F.normalize(s, dim=-1), F.normalize(t, dim=-1))
    torch.testing.assert_close(L.feature_kd(s, t), expected)
    scale = torch.rand(3, 6, 1, generator=gen(1)) * 10 + 0.1
    torch.testing.assert_close(L.feature_kd(s * scale, t), expected)


@FAST
@given(seed=st.integers(0, 10_000), normalize=st.booleans(), per_residue=st.booleans())
def test_feature_kd_masked_items_change_nothing(seed, normalize, per_residue) -> None:
    shape = (3, 5) if per_residue else (6,)
    s = randn(*shape, 4, seed=seed).requires_grad_()
    t = randn(*shape, 4, seed=seed + 1)
    mask = random_mask(shape, seed)
    loss = L.feature_kd(s, t, mask, normalize)
    (grad,) = torch.autograd.grad(loss, s)
    junk = scramble(s.detach(), mask, seed + 2).requires_grad_()
    loss2 = L.feature_kd(junk, scramble(t, mask, seed + 3), mask, normalize)
    (grad2,) = torch.autograd.grad(loss2, junk)
    torch.testing.assert_close(loss, loss2)
    torch.testing.assert_close(grad, grad2)
    torch.testing.assert_close(loss, L.feature_kd(s[mask], t[mask], normalize=normalize))


def test_feature_kd_width_mismatch_points_to_projector() -> None:
    with pytest.raises(ModelError, match="FeatureProjector"):
        L.feature_kd(torch.zeros(2, 3), torch.zeros(2, 4))


def test_feature_projector_identity_or_linear() -> None:
    x = randn(2, 5, 8, seed=14)
    same = L.FeatureProjector(8, 8)
    assert torch.equal(same(x), x) and not list(same.parameters())
    proj = L.FeatureProjector(8, 12)
    assert proj(x).shape == (2, 5, 12)
    with pytest.raises(ModelError, match="width 8"):
        proj(torch.zeros(2, 7))


def test_multi_feature_kd_is_weighted_sum_and_trains_projectors() -> None:
    s1, s2 = randn(2, 4, 6, seed=15), randn(2, 4, 8, seed=16)
    t1, t2 = randn(2, 4, 10, seed=17), randn(2, 4, 8, seed=18)
    mask = random_mask((2, 4), 3)
    p1 = L.FeatureProjector(6, 10)
    total = L.multi_feature_kd([(s1, t1), (s2, t2)], [0.25, 2.0], [p1, None], mask=mask)
    manual = 0.25 * L.feature_kd(p1(s1), t1, mask) + 2.0 * L.feature_kd(s2, t2, mask)
    torch.testing.assert_close(total, manual)
    total.backward()
    assert p1.proj.weight.grad is not None and p1.proj.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="one weight"):
        L.multi_feature_kd([(s2, t2)], [1.0, 2.0])
    with pytest.raises(ConfigError, match="no feature pairs"):
        L.multi_feature_kd([])
