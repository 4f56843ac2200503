"""Listwise (ranking) KD: exact values, the invariances it promises, masks and gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from loss_helpers import FAST, randn

from protdistill.distill import losses as L
from protdistill.errors import ConfigError, ModelError

torch.set_num_threads(1)


def _row_kl(s: torch.Tensor, t: torch.Tensor, temperature: float) -> torch.Tensor:
    p = torch.softmax(t / temperature, -1)
    return (p * (p.log() - torch.log_softmax(s / temperature, -1))).sum() * temperature**2


def test_value_is_the_mean_row_kl() -> None:
    s, t = randn(4, 6, seed=1), randn(4, 6, seed=2)
    want = torch.stack([_row_kl(s[i], t[i], 2.0) for i in range(4)]).mean()
    torch.testing.assert_close(L.ranking_kd(s, t, temperature=2.0), want)
    assert L.ranking_kd(t, t).item() == pytest.approx(0.0, abs=1e-6)


@FAST
@given(
    rows=st.integers(1, 6),
    cols=st.integers(2, 7),
    seed=st.integers(0, 10_000),
    temperature=st.floats(0.5, 4.0),
)
def test_shifts_it_promises_to_ignore(rows: int, cols: int, seed: int, temperature: float) -> None:
    s, t = randn(rows, cols, seed=seed), randn(rows, cols, seed=seed + 1)
    base = L.ranking_kd(s, t, temperature=temperature)
    assert base.item() >= -1e-6
    row_shift = randn(rows, 1, seed=seed + 2) * 5
    shifted = L.ranking_kd(s + row_shift, t - row_shift, temperature=temperature)
    torch.testing.assert_close(shifted, base, atol=1e-5, rtol=1e-4)
    col_shift = randn(1, cols, seed=seed + 3) * 5
    centred = L.ranking_kd(s, t, temperature=temperature, centre_columns=True)
    moved = L.ranking_kd(s + col_shift, t, temperature=temperature, centre_columns=True)
    torch.testing.assert_close(moved, centred, atol=1e-5, rtol=1e-4)
    if rows > 1:  # without centring, a column shift is a different ranking
        uncentred = L.ranking_kd(s + col_shift, t, temperature=temperature)
        assert not torch.isclose(uncentred, base, atol=1e-4)


def test_standardised_scores_are_in_units_of_the_teachers_spread() -> None:
    s, t = randn(5, 6, seed=9), randn(5, 6, seed=10) * 0.1
    off = ~torch.eye(5, 6, dtype=torch.bool)
    spread = t[off].std()
    got = L.ranking_kd(s, t, off, standardise=True)
    torch.testing.assert_close(got, L.ranking_kd(s / spread, t / spread, off))
    torch.testing.assert_close(L.ranking_kd(7 * s, 7 * t, off, standardise=True), got)
    assert got > 20 * L.ranking_kd(s * 0.1, t, off)  # a flat teacher still teaches


def test_masked_entries_never_count() -> None:
    s, t = randn(3, 5, seed=4).requires_grad_(), randn(3, 5, seed=5)
    mask = torch.tensor(
        [[True, False, True, True, True], [False] * 4 + [True], [True, True, False, True, True]]
    )
    poisoned_t = torch.where(mask, t, torch.nan)
    loss = L.ranking_kd(torch.where(mask, s, torch.inf), poisoned_t, mask)
    # row 1 has one valid column: nothing to rank, left out of the mean
    want = sum(_row_kl(s[i][mask[i]], t[i][mask[i]], 1.0) for i in (0, 2)) / 2
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert torch.isfinite(s.grad).all() and (s.grad[~mask] == 0).all()
    assert s.grad[mask].abs().sum() > 0


def test_nothing_to_rank_is_zero_and_bad_input_is_refused() -> None:
    s = randn(2, 3, seed=6).requires_grad_()
    zero = L.ranking_kd(s, s.detach(), torch.zeros(2, 3, dtype=torch.bool))
    assert zero.item() == 0.0
    zero.backward()
    with pytest.raises(ModelError):
        L.ranking_kd(randn(2, 3, seed=7), randn(2, 4, seed=8))
    with pytest.raises(ConfigError):
        L.ranking_kd(s, s, temperature=0.0)
