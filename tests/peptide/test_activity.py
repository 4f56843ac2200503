"""The independent activity classifier: features, data hygiene (held-out only, conflicts
dropped), it separates actives from inactives, and real peptides are scored out of fold."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.errors import InputError
from protdistill.tasks.peptide.activity import (
    activity_report,
    features,
    fit_activity_classifier,
    labelled_peptides,
)

AA = "ACDEFGHIKLMNPQRSTVWY"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(AA, min_size=1, max_size=60), min_size=1, max_size=5))
def test_features_are_finite_with_a_fixed_width(seqs) -> None:
    x = features(seqs)
    assert x.shape == (len(seqs), 20 + 49 + 1 + 4) and np.isfinite(x).all()
    np.testing.assert_allclose(x[:, :20].sum(1), 1.0)  # amino-acid composition


def _write(folder, name, rows) -> None:
    lines = ["id,sequence,label"] + [f"s{i},{s},{y}" for i, (s, y) in enumerate(rows)]
    (folder / name).write_text("\n".join(lines) + "\n")


def _peptides(rng, alphabet, n):
    return ["".join(rng.choices(alphabet, k=rng.randint(8, 30))) for _ in range(n)]


@pytest.fixture
def folder(tmp_path):
    rng = random.Random(0)
    active = _peptides(rng, "KRLLWKKAG", 80)  # cationic, amphipathic
    inactive = _peptides(rng, "DESTNQPGA", 80)
    _write(tmp_path, "amp_one.csv", [(s, 1) for s in active[:40]] + [(s, 0) for s in inactive[:40]])
    _write(tmp_path, "amp_two.csv", [(s, 1) for s in active[40:]] + [(s, 0) for s in inactive[40:]])
    _write(tmp_path, "avp_x.csv", [("KKKK", 1)])
    return tmp_path, active, inactive


def test_data_is_held_out_deduplicated_and_conflicts_dropped(folder) -> None:
    path, active, inactive = folder
    _write(path, "amp_three.csv", [(active[0], 0), ("ACDXZ", 1), (inactive[1], 0)])
    seqs, y, files = labelled_peptides(path, "amp", exclude=active[1:11])
    assert files == ["amp_one.csv", "amp_three.csv", "amp_two.csv"]
    assert active[0] not in seqs  # labelled both ways
    assert "ACDXZ" not in seqs  # non-standard residues
    assert not set(active[1:11]) & set(seqs)  # the generator's training peptides
    assert seqs.count(inactive[1]) == 1 and len(seqs) == len(y) == 160 - 1 - 10
    with pytest.raises(InputError, match="no labelled afp"):
        labelled_peptides(path, "afp")


def test_classifier_separates_and_scores_real_peptides_out_of_fold(folder) -> None:
    path, active, inactive = folder
    clf = fit_activity_classifier(path, "amp")
    assert clf.cv_auroc > 0.9 and clf.n_positive == clf.n_negative == 80
    rng = random.Random(5)
    report = activity_report(clf, {"new active": _peptides(rng, "KRLLWKKAG", 30),
                                   "new inactive": _peptides(rng, "DESTNQPGA", 30)})  # fmt: skip
    assert report["new active"]["mean"] > 0.8 > 0.2 > report["new inactive"]["mean"]
    oof = clf.probability(active[:5])
    np.testing.assert_allclose(oof, [clf.out_of_fold[s] for s in active[:5]])
    assert activity_report(clf, {"none": []})["none"]["mean"] is None
    with pytest.raises(InputError, match="too few held-out avp"):
        fit_activity_classifier(path, "avp")
