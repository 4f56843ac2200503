"""Channel models: power normalisation, AWGN noise power, Rayleigh equalisation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.errors import ConfigError
from protdistill.tasks.semcom.channel import noise_std, power_normalize, transmit


def test_power_normalize_gives_unit_complex_power_and_zero_padding() -> None:
    x = torch.randn(3, 7, 8) * 5
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    y = power_normalize(x, mask)
    assert torch.all(y[1, 4:] == 0)
    for b in range(3):
        n = int(mask[b].sum())
        assert y[b, :n].pow(2).sum() / (n * 4) == pytest.approx(1.0, rel=1e-5)


@settings(max_examples=15, deadline=None)
@given(st.floats(-5, 25))
def test_awgn_noise_power_matches_snr(snr: float) -> None:
    x = power_normalize(torch.randn(8, 64, 16))
    gen = torch.Generator().manual_seed(0)
    noise = transmit(x, snr, "awgn", gen) - x
    complex_power = noise.pow(2).mean() * 2
    assert float(complex_power) == pytest.approx(10 ** (-snr / 10), rel=0.05)
    assert float(noise_std(snr)) ** 2 * 2 == pytest.approx(10 ** (-snr / 10), rel=1e-5)


def test_rayleigh_is_equalised_and_reproducible() -> None:
    x = power_normalize(torch.randn(4, 5, 6))
    y = transmit(x, 120.0, "rayleigh", torch.Generator().manual_seed(1))
    assert torch.allclose(y, x, atol=1e-3)  # noise-free limit: perfect CSI undoes the fading
    a = transmit(x, 5.0, "rayleigh", torch.Generator().manual_seed(2))
    b = transmit(x, 5.0, "rayleigh", torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.allclose(a, x, atol=1e-2)


def test_per_sentence_snr_and_mixed_channel() -> None:
    x = power_normalize(torch.randn(2, 200, 8))
    snr = torch.tensor([0.0, 30.0])
    err = (transmit(x, snr, "awgn", torch.Generator().manual_seed(0)) - x).pow(2).mean((1, 2))
    assert err[0] > 100 * err[1]
    y = transmit(x, 10.0, "mixed", torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert torch.equal(transmit(x, 0.0, "none"), x)


def test_bad_channel_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown channel"):
        transmit(torch.zeros(1, 2, 4), 0.0, "fiber")
    with pytest.raises(ConfigError, match="odd"):
        transmit(torch.zeros(1, 2, 3), 0.0, "awgn")
