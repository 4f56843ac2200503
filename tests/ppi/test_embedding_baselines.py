"""The linear probe of benchmarks/embedding_baselines.py: it recovers a linear target on held-out
proteins, finds nothing in noise, and composition features are fractions plus log length."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "embedding_baselines.py"
B = runpy.run_path(str(BENCHMARK), run_name="embedding_baselines")


def _ids(n: int) -> dict[str, list[str]]:
    names = [f"p{i}" for i in range(n)]
    return {
        "train": names[: n // 2],
        "val": names[n // 2 : 3 * n // 4],
        "test": names[3 * n // 4 :],
    }


def test_probe_recovers_a_linear_target_on_held_out_proteins() -> None:
    rng = np.random.default_rng(0)
    ids = _ids(400)
    x = {p: rng.normal(size=12) for v in ids.values() for p in v}
    w = rng.normal(size=(12, 30))
    target = {p: x[p] @ w for p in x}
    result = B["linear_probe"](x, target, ids)
    assert result["test_cosine"] == pytest.approx(1.0, abs=1e-3)
    assert result["alpha"] == min(B["ALPHAS"])  # no noise: the weakest penalty wins on val


def test_probe_finds_nothing_in_noise() -> None:
    rng = np.random.default_rng(1)
    ids = _ids(400)
    x = {p: rng.normal(size=12) for v in ids.values() for p in v}
    target = {p: rng.normal(size=30) for p in x}
    assert abs(B["linear_probe"](x, target, ids)["test_cosine"]) < 0.15


def test_composition_features() -> None:
    f = B["composition_features"]("ACDAAX")
    assert f.shape == (22,)
    assert f[:20].sum() == pytest.approx(5 / 6)  # X is no amino acid of the 20
    assert f[0] == pytest.approx(3 / 6)
    assert f[20] == pytest.approx(np.log(6)) and f[21] == pytest.approx(np.log(6) ** 2)


def test_mean_cosine_of_identical_rows_is_one() -> None:
    a = np.random.default_rng(2).normal(size=(5, 7))
    assert B["mean_cosine"](a, a) == pytest.approx(1.0)
    assert B["mean_cosine"](a, -a) == pytest.approx(-1.0)
