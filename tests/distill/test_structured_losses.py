"""The math of the relation, attention and map distillation losses: exact values, gradients,
masks and invariances (logit and feature KD: test_losses.py)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from loss_helpers import FAST, gen, randn, random_mask

from protdistill.distill import losses as L
from protdistill.errors import ConfigError, ModelError

torch.set_num_threads(1)


# --------------------------------------------------------------------------- relation KD


def _random_rotation(d: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(randn(d, d, seed=seed))
    return q


def test_similarity_kd_values_and_invariances() -> None:
    s, t = randn(6, 5, seed=19), randn(6, 9, seed=20)
    sn, tn = F.normalize(s, dim=-1), F.normalize(t, dim=-1)
    torch.testing.assert_close(L.similarity_kd(s, t), F.mse_loss(sn @ sn.T, tn @ tn.T))
    rotated = s @ _random_rotation(5, 1) * torch.rand(6, 1, generator=gen(2)).add(0.5)
    torch.testing.assert_close(L.similarity_kd(rotated, t), L.similarity_kd(s, t))
    assert L.similarity_kd(s, s @ _random_rotation(5, 3)).item() < 1e-10
    mask = torch.tensor([True, False, True, True, False, True])
    torch.testing.assert_close(L.similarity_kd(s, t, mask), L.similarity_kd(s[mask], t[mask]))


def _naive_rkd_distance(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    pairs = [(i, j) for i, j in itertools.product(range(len(s)), repeat=2) if i != j]
    ds = torch.stack([torch.dist(s[i], s[j]) for i, j in pairs])
    dt = torch.stack([torch.dist(t[i], t[j]) for i, j in pairs])
    return F.smooth_l1_loss(ds / ds.mean(), dt / dt.mean())


def _naive_rkd_angle(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    def cos(x, i, j, k):
        return F.cosine_similarity(x[i] - x[j], x[k] - x[j], dim=0)

    triplets = [p for p in itertools.permutations(range(len(s)), 3)]
    a_s = torch.stack([cos(s, i, j, k) for i, j, k in triplets])
    a_t = torch.stack([cos(t, i, j, k) for i, j, k in triplets])
    return F.smooth_l1_loss(a_s, a_t)


def test_rkd_losses_match_naive_definitions() -> None:
    s, t = randn(5, 4, seed=21), randn(5, 7, seed=22) * 3
    torch.testing.assert_close(L.rkd_distance(s, t), _naive_rkd_distance(s, t))
    torch.testing.assert_close(L.rkd_angle(s, t), _naive_rkd_angle(s, t))
    assert L.rkd_distance(s, t).item() > 0 and L.rkd_angle(s, t).item() > 0


@FAST
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0))
def test_rkd_losses_are_invariant_to_similarity_transforms(seed: int, scale: float) -> None:
    s, t = randn(6, 4, seed=seed), randn(6, 8, seed=seed + 1)
    moved = (s @ _random_rotation(4, seed)) * scale + randn(1, 4, seed=seed + 2)
    torch.testing.assert_close(L.rkd_distance(moved, t), L.rkd_distance(s, t), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(L.rkd_angle(moved, t), L.rkd_angle(s, t), atol=1e-5, rtol=1e-4)
    assert L.rkd_distance(moved, s).item() < 1e-6
    assert L.rkd_angle(moved, s).item() < 1e-6


def test_rkd_gradients_are_finite_and_small_batches_give_zero() -> None:
    s = randn(4, 3, seed=23).requires_grad_()
    (L.rkd_distance(s, randn(4, 5, seed=24)) + L.rkd_angle(s, randn(4, 5, seed=25))).backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    one = randn(1, 3, seed=26).requires_grad_()
    assert L.rkd_distance(one, one.detach()).item() == 0.0
    assert L.rkd_angle(randn(2, 3), randn(2, 3)).item() == 0.0
    mask = torch.tensor([True, True, False, True])
    teacher = randn(4, 5, seed=27)
    torch.testing.assert_close(
        L.rkd_distance(s, teacher, mask), L.rkd_distance(s[mask], teacher[mask])
    )
    with pytest.raises(ModelError, match="pool"):
        L.rkd_angle(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))


# --------------------------------------------------------------------------- attention KD


def _attn(b: int, h: int, length: int, seed: int) -> torch.Tensor:
    return torch.softmax(randn(b, h, length, length, seed=seed) * 2, dim=-1)


@pytest.mark.parametrize("mode", ["mse", "kl"])
def test_attention_kd_zero_for_identical_maps(mode: str) -> None:
    a = _attn(2, 3, 5, 28)
    assert L.attention_kd(a, a.clone(), mode=mode).item() == pytest.approx(0.0, abs=1e-7)
    assert L.attention_kd(a, a.clone(), mode=mode, heads="match").item() == pytest.approx(
        0.0, abs=1e-7
    )


def test_attention_kd_values_unmasked() -> None:
    s, t = _attn(2, 4, 5, 29), _attn(2, 2, 5, 30)
    sm, tm = s.mean(1), t.mean(1)
    torch.testing.assert_close(L.attention_kd(s, t), F.mse_loss(sm, tm))
    kl = (tm * (tm.log() - sm.log())).sum(-1).mean()
    torch.testing.assert_close(L.attention_kd(s, t, mode="kl"), kl)
    t4 = _attn(2, 4, 5, 31)
    torch.testing.assert_close(L.attention_kd(s, t4, heads="match"), F.mse_loss(s, t4))
    with pytest.raises(ModelError, match="equal head counts"):
        L.attention_kd(s, t, heads="match")
    with pytest.raises(ConfigError, match="mode"):
        L.attention_kd(s, t, mode="l1")


@FAST
@given(
    seed=st.integers(0, 10_000),
    mode=st.sampled_from(["mse", "kl"]),
    heads=st.sampled_from(["mean", "match"]),
)
def test_attention_kd_masked_rows_and_columns_change_nothing(seed, mode, heads) -> None:
    b, h, length = 2, 3, 6
    s = _attn(b, h, length, seed).requires_grad_()
    t = _attn(b, h, length, seed + 1)
    mask = random_mask((b, length), seed)
    loss = L.attention_kd(s, t, mask, mode, heads)
    (grad,) = torch.autograd.grad(loss, s)
    pad = ~(mask[:, None, :, None] & mask[:, None, None, :])
    junk_s = torch.where(pad, torch.rand(s.shape, generator=gen(seed + 2)) * 9, s.detach())
    junk_s.requires_grad_()
    junk_t = torch.where(pad, torch.rand(t.shape, generator=gen(seed + 3)) * 9, t)
    loss2 = L.attention_kd(junk_s, junk_t, mask, mode, heads)
    (grad2,) = torch.autograd.grad(loss2, junk_s)
    torch.testing.assert_close(loss, loss2)
    torch.testing.assert_close(grad, grad2)
    assert torch.all(grad.masked_select(pad.expand_as(grad)) == 0)


def test_attention_kd_masked_equals_cropped_single_sample() -> None:
    s, t = _attn(1, 2, 6, 32), _attn(1, 2, 6, 33)
    mask = torch.tensor([[True, True, True, True, False, False]])
    crop = slice(0, 4)

    def renorm(a):
        a = a[:, :, crop, crop]
        return a / a.sum(-1, keepdim=True)

    for mode in ("mse", "kl"):
        cropped = L.attention_kd(
            renorm(s) if mode == "kl" else s[:, :, crop, crop],
            renorm(t) if mode == "kl" else t[:, :, crop, crop],
            mode=mode,
        )
        torch.testing.assert_close(L.attention_kd(s, t, mask, mode=mode), cropped)


# --------------------------------------------------------------------------- map KD


def _prob_map(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=gen(seed))


def test_map_kd_same_shape_values() -> None:
    s, t = _prob_map(2, 4, 5, seed=34), _prob_map(2, 4, 5, seed=35)
    ma = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    mb = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    cells = ma[:, :, None] & mb[:, None, :]
    torch.testing.assert_close(L.map_kd(s, t, ma, mb), F.mse_loss(s[cells], t[cells]))
    bce = F.binary_cross_entropy(s[cells], t[cells])
    torch.testing.assert_close(L.map_kd(s, t, ma, mb, "bce"), bce)
    entropy = F.binary_cross_entropy(t[cells], t[cells])
    torch.testing.assert_close(L.map_kd(s, t, ma, mb, "kl"), bce - entropy)
    logits = torch.logit(s)
    torch.testing.assert_close(L.map_kd(logits, t, ma, mb, "bce", from_logits=True), bce)
    assert L.map_kd(t, t.clone(), ma, mb, "kl").item() == pytest.approx(0.0, abs=1e-6)
    assert L.map_kd(t, t.clone(), ma, mb).item() == 0.0


def test_map_kd_spatial_is_kl_between_normalised_maps() -> None:
    s, t = _prob_map(1, 3, 4, seed=60) + 0.05, _prob_map(1, 3, 4, seed=61) + 0.05
    p, q = t.flatten() / t.sum(), s.flatten() / s.sum()
    expected = (p * (p / q).log()).sum()
    torch.testing.assert_close(L.map_kd(s, t, mode="spatial"), expected)
    # from logits: the student distribution is a softmax over the cells
    logits = torch.randn(1, 3, 4, generator=gen(62))
    q = logits.flatten().softmax(0)
    expected = (p * (p / q).log()).sum()
    torch.testing.assert_close(L.map_kd(logits, t, mode="spatial", from_logits=True), expected)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale_s=st.floats(1e-3, 1e3),
    scale_t=st.floats(1e-3, 1e3),
)
def test_map_kd_spatial_ignores_scale_and_masked_cells(seed, scale_s, scale_t) -> None:
    t = _prob_map(2, 5, 6, seed=seed) + 0.01
    ma = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    mb = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    # a student proportional to the teacher has zero loss, whatever the two scales
    zero = L.map_kd(scale_s * t, scale_t * t, ma, mb, "spatial")
    assert zero.item() == pytest.approx(0.0, abs=1e-5)
    s = _prob_map(2, 5, 6, seed=seed + 1) + 0.01
    loss = L.map_kd(s, t, ma, mb, "spatial")
    assert loss.item() > 0
    torch.testing.assert_close(L.map_kd(scale_s * s, scale_t * t, ma, mb, "spatial"), loss)
    # junk in padded cells changes nothing
    cells = ma[:, :, None] & mb[:, None, :]
    junk_s = torch.where(cells, s, 7.0)
    junk_t = torch.where(cells, t, 0.9)
    torch.testing.assert_close(L.map_kd(junk_s, junk_t, ma, mb, "spatial"), loss)


def test_map_kd_spatial_skips_pairs_without_a_map_and_has_gradients() -> None:
    s = _prob_map(2, 4, 4, seed=63).requires_grad_()
    t = _prob_map(2, 4, 4, seed=64)
    ma = torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    mb = torch.ones(2, 4, dtype=torch.bool)
    loss = L.map_kd(s, t, ma, mb, "spatial")
    torch.testing.assert_close(loss, L.map_kd(s[:1], t[:1], mode="spatial"))
    loss.backward()
    assert s.grad[0].abs().sum() > 0 and s.grad[1].abs().sum() == 0


@pytest.mark.parametrize("teacher_size", [(8, 10), (3, 4)])
def test_map_kd_resizes_teacher_bilinearly_to_student_shape(teacher_size) -> None:
    s = _prob_map(2, 4, 5, seed=36)
    t = _prob_map(2, *teacher_size, seed=37)
    resized = F.interpolate(
        t[:, None], size=(4, 5), mode="bilinear", align_corners=False, antialias=True
    )[:, 0]
    torch.testing.assert_close(L.map_kd(s, t), F.mse_loss(s, resized))
    torch.testing.assert_close(L.map_kd(resized, t).abs(), torch.tensor(0.0), atol=1e-10, rtol=0)
    # a constant teacher stays constant whatever the resolution
    const = torch.full((1, *teacher_size), 0.3)
    assert L.map_kd(torch.full((1, 4, 5), 0.3), const).item() < 1e-12
    assert L.map_kd(torch.full((1, 4, 5), 0.5), const).item() == pytest.approx(0.04)


@FAST
@given(
    seed=st.integers(0, 10_000),
    mode=st.sampled_from(["mse", "bce", "kl"]),
    explicit_teacher_masks=st.booleans(),
)
def test_map_kd_padding_never_contributes_even_after_resizing(
    seed, mode, explicit_teacher_masks
) -> None:
    # student at half the teacher's resolution: student lengths (3, 2) of 4, teacher (6, 4) of 8
    s = _prob_map(2, 4, 4, seed=seed).requires_grad_()
    t = _prob_map(2, 8, 8, seed=seed + 1)
    ma = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    mb = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    tma = torch.repeat_interleave(ma, 2, dim=1)
    tmb = torch.repeat_interleave(mb, 2, dim=1)
    kw = {"teacher_mask_a": tma, "teacher_mask_b": tmb} if explicit_teacher_masks else {}
    loss = L.map_kd(s, t, ma, mb, mode, **kw)
    (grad,) = torch.autograd.grad(loss, s)

    s_pad = ~(ma[:, :, None] & mb[:, None, :])
    t_pad = ~(tma[:, :, None] & tmb[:, None, :])
    junk_s = torch.where(s_pad, torch.rand(s.shape, generator=gen(seed + 2)), s.detach())
    junk_s.requires_grad_()
    junk_t = torch.where(t_pad, torch.full_like(t, 1e4), t)
    loss2 = L.map_kd(junk_s, junk_t, ma, mb, mode, **kw)
    (grad2,) = torch.autograd.grad(loss2, junk_s)
    torch.testing.assert_close(loss, loss2)
    torch.testing.assert_close(grad, grad2)
    assert torch.all(grad[s_pad] == 0)
    # and the valid teacher block alone, resized per sample, gives the same loss
    per_sample = []
    for i in range(2):
        la, lb = int(ma[i].sum()), int(mb[i].sum())
        block = t[i, : 2 * la, : 2 * lb][None, None]
        small = F.interpolate(block, size=(la, lb), mode="bilinear", antialias=True)[0, 0]
        per_sample.append((s[i, :la, :lb], small))
    if mode == "mse":
        flat_s = torch.cat([a.reshape(-1) for a, _ in per_sample])
        flat_t = torch.cat([b.reshape(-1) for _, b in per_sample])
        torch.testing.assert_close(loss, F.mse_loss(flat_s, flat_t))


def test_map_kd_shape_and_mode_errors() -> None:
    with pytest.raises(ModelError, match="La, Lb"):
        L.map_kd(torch.zeros(2, 3), torch.zeros(2, 3, 3))
    with pytest.raises(ConfigError, match="mode"):
        L.map_kd(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3), mode="l2")
    with pytest.raises(ModelError, match="mask_a"):
        L.map_kd(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3), torch.ones(1, 4, dtype=torch.bool))


def test_map_kd_gradient_flows_to_student_only_on_valid_cells() -> None:
    s = _prob_map(1, 3, 3, seed=40).requires_grad_()
    t = _prob_map(1, 6, 6, seed=41)
    ma = torch.tensor([[True, True, False]])
    L.map_kd(s, t, ma, ma, "bce").backward()
    assert torch.isfinite(s.grad).all()
    assert (s.grad[0, :2, :2] != 0).all() and (s.grad[0, 2, :] == 0).all()
    assert math.isfinite(L.map_kd(s, t, ma, ma, "kl").item())


def test_log_based_map_and_attention_losses_stay_finite_in_half_precision() -> None:
    s, t = _attn(2, 3, 5, 42), _attn(2, 3, 5, 43)
    s[0, :, 0, 0], t[1, :, 1, 2] = 0.0, 0.0  # zero probabilities must not give nan
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    for value in (
        L.attention_kd(s.half(), t.half(), mask, "kl"),
        L.map_kd(s[:, 0].half(), t[:, 0].half(), mask, mask, "kl"),
        L.map_kd(s[:, 0].half(), torch.ones(2, 5, 5).half(), mask, mask, "bce"),
    ):
        assert torch.isfinite(value)
    torch.testing.assert_close(
        L.attention_kd(s.half(), t.half(), mask, "kl"),
        L.attention_kd(s, t, mask, "kl"),
        atol=2e-3,
        rtol=2e-2,
    )


def test_map_kd_skips_student_cells_without_valid_teacher_support() -> None:
    s = _prob_map(1, 4, 4, seed=44).requires_grad_()
    t = _prob_map(1, 8, 8, seed=45)
    t_rows = torch.tensor([[True, True] + [False] * 6])  # the teacher covers student row 0 only
    t_cols = torch.ones(1, 8, dtype=torch.bool)
    loss = L.map_kd(s, t, teacher_mask_a=t_rows, teacher_mask_b=t_cols)
    loss.backward()
    assert (s.grad[0, 0] != 0).all() and (s.grad[0, 2:] == 0).all()
    moved = s.detach().clone()
    moved[0, 2:] = 7.0
    torch.testing.assert_close(
        L.map_kd(moved, t, teacher_mask_a=t_rows, teacher_mask_b=t_cols), loss
    )
