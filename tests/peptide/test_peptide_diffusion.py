"""Noise schedules, q_sample statistics, the loss, samplers and classifier-free guidance."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.errors import ConfigError
from protdistill.tasks.peptide.diffusion import (
    GaussianDiffusion,
    classifier_free_guidance,
    make_betas,
)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["linear", "cosine", "sqrt"]), st.integers(2, 2000))
def test_alpha_bar_is_monotone_and_in_unit_interval(schedule: str, steps: int) -> None:
    betas = make_betas(schedule, steps)
    abar = torch.cumprod(1 - betas, 0)
    assert betas.shape == (steps,)
    assert ((betas > 0) & (betas < 1)).all()
    assert (abar[1:] < abar[:-1]).all()
    assert 0 < abar[-1] < abar[0] < 1


def test_schedules_end_near_pure_noise() -> None:
    for schedule in ("linear", "cosine", "sqrt"):
        d = GaussianDiffusion(1000, schedule)
        assert d.alphas_cumprod[0] > 0.95  # sqrt adds noise fast by design (0.977)
        assert d.alphas_cumprod[-1] < 0.01


def test_unknown_schedule_and_bad_steps_raise() -> None:
    with pytest.raises(ConfigError, match="schedule"):
        make_betas("quadratic", 10)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="steps"):
        GaussianDiffusion(10).sample_steps(11)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "sqrt"])
@pytest.mark.parametrize("step", [0, 250, 999])
def test_q_sample_mean_and_variance(schedule: str, step: int) -> None:
    torch.manual_seed(0)
    d = GaussianDiffusion(1000, schedule)
    x0 = torch.full((20000, 4), 1.5)
    t = torch.full((20000,), step, dtype=torch.long)
    xt = d.q_sample(x0, t)
    abar = float(d.alphas_cumprod[step])
    assert xt.mean().item() == pytest.approx(abar**0.5 * 1.5, abs=0.02)
    assert xt.var().item() == pytest.approx(1 - abar, abs=0.02 + 0.02 * (1 - abar))


def test_q_sample_with_given_noise_is_exact() -> None:
    d = GaussianDiffusion(100, "cosine")
    x0, noise = torch.randn(3, 5, 2), torch.randn(3, 5, 2)
    t = torch.tensor([0, 50, 99])
    abar = d.alphas_cumprod[t].float().view(-1, 1, 1)
    expected = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    torch.testing.assert_close(d.q_sample(x0, t, noise), expected)


@pytest.mark.parametrize("objective", ["eps", "x0"])
def test_loss_is_zero_for_an_oracle_and_ignores_padding(objective: str) -> None:
    d = GaussianDiffusion(100, "linear", objective)
    x0 = torch.randn(2, 6, 3)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    noise = torch.randn_like(x0)
    t = torch.tensor([10, 90])
    target = noise if objective == "eps" else x0

    def oracle(x, tt, _):  # noqa: ANN001, ANN202
        return target

    assert d.loss(oracle, x0, mask, t=t, noise=noise).item() == pytest.approx(0.0, abs=1e-10)

    def wrong_on_padding(x, tt, _):  # noqa: ANN001, ANN202
        out = target.clone()
        out[0, 4:] += 100.0
        return out

    assert d.loss(wrong_on_padding, x0, mask, t=t, noise=noise).item() == pytest.approx(0.0)

    def off_by_one(x, tt, _):  # noqa: ANN001, ANN202
        return target + 1.0

    assert d.loss(off_by_one, x0, mask, t=t, noise=noise).item() == pytest.approx(1.0)
    loss, x0_hat, steps = d.loss_terms(oracle, x0, mask, t=t, noise=noise)
    assert loss.item() == pytest.approx(0.0, abs=1e-10) and steps.tolist() == [10, 90]
    torch.testing.assert_close(x0_hat, x0 * mask[..., None], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("method", ["ddim", "ddpm"])
@pytest.mark.parametrize("objective", ["eps", "x0"])
def test_samplers_recover_the_oracle_target(method: str, objective: str) -> None:
    d = GaussianDiffusion(200, "cosine", objective)
    target = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    target = target * mask[..., None]
    seen_prev = []

    def oracle(x, t, x0_prev):  # noqa: ANN001, ANN202
        seen_prev.append(x0_prev)
        return target if objective == "x0" else d.predict_eps(x, t, target)

    out = d.sample(
        oracle, mask, 3, steps=20, method=method, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(out, target, atol=1e-4, rtol=1e-4)
    assert seen_prev[0] is None and seen_prev[1] is not None  # self-conditioning input
    assert len(seen_prev) == 20


def test_ddim_is_deterministic_given_a_seed() -> None:
    d = GaussianDiffusion(100)
    mask = torch.ones(2, 4, dtype=torch.bool)

    def net(x, t, _):  # noqa: ANN001, ANN202
        return 0.5 * x

    a = d.sample(net, mask, 3, steps=10, generator=torch.Generator().manual_seed(1))
    b = d.sample(net, mask, 3, steps=10, generator=torch.Generator().manual_seed(1))
    c = d.sample(net, mask, 3, steps=10, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_sample_steps_are_descending_and_span_the_chain() -> None:
    steps = GaussianDiffusion(1000).sample_steps(50)
    assert len(steps) == 50 and steps[0] == 999 and steps[-1] == 0
    assert all(a > b for a, b in zip(steps, steps[1:], strict=False))


@settings(max_examples=30, deadline=None)
@given(st.floats(-3, 5, allow_nan=False))
def test_guidance_formula(scale: float) -> None:
    cond, uncond = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    out = classifier_free_guidance(cond, uncond, scale)
    torch.testing.assert_close(out, uncond + scale * (cond - uncond))
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 1.0), cond)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 0.0), uncond)


def _masked_std(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[i][mask[i]].std(unbiased=False) for i in range(len(x))])


@settings(max_examples=30, deadline=None)
@given(st.floats(1.5, 8.0), st.floats(0.0, 1.0), st.integers(0, 10_000))
def test_guidance_rescale_keeps_direction_and_restores_the_spread(
    scale: float, phi: float, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    cond, uncond = torch.randn(3, 5, 4, generator=gen), torch.randn(3, 5, 4, generator=gen)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    plain = classifier_free_guidance(cond, uncond, scale)
    full = classifier_free_guidance(cond, uncond, scale, rescale=1.0, mask=mask)
    mixed = classifier_free_guidance(cond, uncond, scale, rescale=phi, mask=mask)
    torch.testing.assert_close(_masked_std(full, mask), _masked_std(cond, mask))
    torch.testing.assert_close(mixed, phi * full + (1 - phi) * plain)
    ratio = full / plain  # one positive factor per sample: the direction is kept
    assert (ratio > 0).all()
    torch.testing.assert_close(ratio, ratio[:, :1, :1].expand_as(ratio))
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, scale, 0.0, mask), plain)


def test_guidance_rescale_ignores_padded_positions() -> None:
    cond, uncond = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    a = classifier_free_guidance(cond, uncond, 3.0, rescale=1.0, mask=mask)
    noisy = cond.clone(), uncond.clone()
    for x in noisy:
        x[~mask] = 100.0
    b = classifier_free_guidance(*noisy, 3.0, rescale=1.0, mask=mask)
    torch.testing.assert_close(a[mask], b[mask])


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_scales_the_starting_noise(temperature: float) -> None:
    d = GaussianDiffusion(100, objective="x0")
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)

    def identity(x, t, _):  # noqa: ANN001, ANN202 - one step returns the starting noise
        return x

    def run(temp: float) -> torch.Tensor:
        gen = torch.Generator().manual_seed(4)
        return d.sample(identity, mask, 3, steps=1, generator=gen, temperature=temp)

    torch.testing.assert_close(run(temperature), temperature * run(1.0))
    assert (run(temperature)[0, 2] == 0).all()


def test_projection_applies_only_below_its_timestep() -> None:
    d = GaussianDiffusion(1000, objective="x0")
    mask = torch.ones(2, 4, dtype=torch.bool)
    target = torch.full((2, 4, 3), 0.7)
    seen: list[int] = []

    def net(x, t, _):  # noqa: ANN001, ANN202
        seen.append(int(t[0]))
        return 0.5 * x

    calls: list[int] = []

    def project(x0: torch.Tensor) -> torch.Tensor:
        calls.append(seen[-1])
        return target

    out = d.sample(net, mask, 3, steps=20, project=project, project_below=300)
    assert calls == [s for s in seen if s < 300] and 0 < len(calls) < 20
    torch.testing.assert_close(out, target)  # the last estimate is a projected one
    calls.clear()
    d.sample(net, mask, 3, steps=20, project=project, project_below=0)
    assert calls == []


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=2), st.integers(0, 10_000))
def test_rounding_loss_weights_peptides_ignores_padding_and_trains_only_the_estimate(
    weights: list[float], seed: int
) -> None:
    import torch.nn.functional as F

    from protdistill.tasks.peptide.decoder import ResidueDecoder, letter_targets, rounding_loss

    torch.manual_seed(seed)
    decoder = ResidueDecoder(6, 8)
    seqs = ["ACDE", "KLMNPQ"]
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6], dtype=torch.bool)
    x0_hat = torch.randn(2, 6, 6, requires_grad=True)
    w = torch.tensor(weights)
    loss = rounding_loss(decoder, x0_hat, mask, seqs, w)
    per = [
        F.cross_entropy(
            decoder(x0_hat[i : i + 1, : len(s)], mask).logits[0], letter_targets([s], len(s))[0]
        )
        for i, s in enumerate(seqs)
    ]
    want = (w[0] * per[0] + w[1] * per[1]) / w.sum()
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert x0_hat.grad is not None and x0_hat.grad[0, 4:].abs().sum() == 0  # padding: no gradient
    assert x0_hat.grad[0, :4].abs().sum() > 0
    assert all(p.grad is None for p in decoder.parameters())  # the decoder is not trained by it
    padded = x0_hat.detach().clone()
    padded[0, 4:] = 99.0
    torch.testing.assert_close(rounding_loss(decoder, padded, mask, seqs, w), want.detach())


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(2, 9), min_size=2, max_size=5),
    scale=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**16),
)
def test_embedding_stats_standardise_to_the_signal_scale(lengths, scale, seed) -> None:
    from protdistill.tasks.peptide.data import embedding_stats

    gen = torch.Generator().manual_seed(seed)
    embeddings = [3.0 + 5.0 * torch.randn(n, 4, generator=gen) for n in lengths]
    mean, std = embedding_stats(embeddings, scale)
    z = (torch.cat(embeddings) - mean) / std
    assert torch.allclose(z.mean(0), torch.zeros(4), atol=1e-4)
    assert torch.allclose(z.std(0), torch.full((4,), scale), rtol=1e-4)
    _, unscaled = embedding_stats(embeddings)
    assert torch.allclose(std * scale, unscaled)
