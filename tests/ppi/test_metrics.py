"""Binary metrics: vectorised bootstrap scores, intervals and warnings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from protdistill.tasks.ppi.common.metrics import binary_metrics, ranking_scores


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 60), st.integers(0, 10_000))
def test_vectorised_ranking_scores_match_scikit_learn(n, seed) -> None:
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1] + list(rng.integers(0, 2, n - 2)))
    probs = rng.permutation(n) / n  # distinct scores
    auroc, ap = ranking_scores(labels[None], probs[None])
    assert auroc[0] == pytest.approx(skm.roc_auc_score(labels, probs))
    assert ap[0] == pytest.approx(skm.average_precision_score(labels, probs))


def test_intervals_narrow_with_more_pairs_and_small_sets_warn() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (60, 2000):
        labels = rng.integers(0, 2, n)
        probs = np.clip(labels * 0.3 + rng.random(n) * 0.7, 0, 1)
        m = binary_metrics(labels, probs)
        lo, hi = m["aupr_ci95"]
        assert lo < m["aupr"] < hi
        widths.append(hi - lo)
        assert ("warnings" in m) == (n < 100)
    assert widths[1] < widths[0] / 3
    one_class = binary_metrics(np.ones(10), rng.random(10))
    assert "auroc_ci95" not in one_class and "one class" in one_class["warnings"][0]


def test_retention_interval_brackets_r_and_is_one_for_the_teacher_itself() -> None:
    from protdistill.tasks.ppi.run.transplant import retention, retention_interval

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    teacher = np.clip(labels * 0.4 + rng.random(400) * 0.6, 0, 1)
    assert retention_interval(labels, teacher, teacher) == pytest.approx([1.0, 1.0])
    student = np.clip(labels * 0.2 + rng.random(400) * 0.8, 0, 1)
    lo, hi = retention_interval(labels, student, teacher)
    r = retention(
        skm.average_precision_score(labels, student),
        skm.average_precision_score(labels, teacher),
        labels.mean(),
    )["R"]
    assert lo < r < hi < 1.0
