"""Peptide reader, evaluation metrics and baselines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.errors import InputError
from protdistill.io.atomic import write_json
from protdistill.io.peptides import Peptide, read_peptides, write_peptide_fasta
from protdistill.tasks.peptide.baselines import profile_baseline, shuffled_baseline
from protdistill.tasks.peptide.config import PeptideTrainConfig
from protdistill.tasks.peptide.data import split_like, split_peptides, type_balanced_sampler
from protdistill.tasks.peptide.evaluate import (
    composition,
    diversity,
    evaluate_set,
    frechet_distance,
    identity,
    js_divergence,
    max_identity,
    novelty,
    uniqueness,
)
from protdistill.tasks.peptide.train import _split_json, load_data

AA = "ACDEFGHIKLMNPQRSTVWY"


def test_csv_reader_deduplicates_filters_and_names_bad_lines(tmp_path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "type,id,sequence\namp,a,GLFK\namp,b,GLFK\nafp,c,GLFK\nacp,d,KKKK\namp,e," + "A" * 60 + "\n"
    )
    peps, report = read_peptides(path, types=["amp", "afp"], max_length=50)
    assert [(p.type, p.sequence) for p in peps] == [("amp", "GLFK"), ("afp", "GLFK")]
    assert (report.duplicates_dropped, report.too_long_dropped, report.other_types_dropped) == (
        1,
        1,
        1,
    )
    path.write_text("type,id,sequence\namp,a,GL1K\n")
    with pytest.raises(InputError, match=r"p.csv: a \(line 2\).*unknown residue"):
        read_peptides(path)
    path.write_text("kind,seq\namp,GLK\n")
    with pytest.raises(InputError, match="column 'type' not found"):
        read_peptides(path)


def test_fasta_round_trip_with_types(tmp_path) -> None:
    peps = [Peptide("GLFK", "amp", "s0"), Peptide("WWDW", "avp", "s1")]
    path = write_peptide_fasta(tmp_path / "s.fasta", peps)
    back, _ = read_peptides(path, max_length=None)
    assert [(p.type, p.sequence, p.id) for p in back] == [(p.type, p.sequence, p.id) for p in peps]
    (tmp_path / "bad.fasta").write_text(">x\nGLK\n")
    with pytest.raises(InputError, match="no peptide type"):
        read_peptides(tmp_path / "bad.fasta")


def test_split_is_seeded_and_keeps_sequences_on_one_side() -> None:
    peps = [Peptide(f"GL{a}{b}", t) for a in AA for b in AA[:5] for t in ("amp", "afp")]
    s1, s2 = split_peptides(peps, 0.2, seed=1), split_peptides(peps, 0.2, seed=1)
    assert s1.val == s2.val
    assert not {p.sequence for p in s1.train} & {p.sequence for p in s1.val}
    assert len(s1.sequences("val")) == 20
    assert s1.val != split_peptides(peps, 0.2, seed=2).val


def test_split_from_keeps_an_earlier_runs_held_out_peptides(tmp_path) -> None:
    """A one-type run with ``split_from`` holds out exactly the earlier run's peptides of that
    type (its own seeded split would pick others); an unknown peptide is named with the fix."""
    peps = [Peptide(f"GL{a}{b}K", t) for a in AA for b in AA[:5] for t in ("amp", "afp")]
    peps += [Peptide(f"KK{a}{b}G", "amp") for a in AA for b in AA[:5]]
    fixed = split_peptides(peps, 0.2, seed=1)
    write_json(tmp_path / "split.json", _split_json(fixed))
    csv = tmp_path / "p.csv"
    csv.write_text("type,sequence\n" + "".join(f"{p.type},{p.sequence}\n" for p in peps))
    cfg = PeptideTrainConfig(data=str(csv), types=["afp"], split_from=str(tmp_path / "split.json"))
    _, split = load_data(cfg)
    assert split.types == ["afp"]
    assert split.sequences("val") == fixed.sequences("val", "afp")
    assert split.sequences("train") == fixed.sequences("train", "afp")
    own = split_peptides([p for p in peps if p.type == "afp"], 0.2, seed=1)
    assert own.sequences("val") != split.sequences("val")
    with pytest.raises(InputError, match=r"split.json: afp GLWWW: 1 peptides .*\(fix: use"):
        split_like([*peps, Peptide("GLWWW", "afp")], fixed, tmp_path / "split.json")


@given(st.lists(st.integers(1, 40), min_size=2, max_size=4), st.integers(0, 99))
@settings(max_examples=20, deadline=None)
def test_type_balanced_sampler_draws_each_type_equally_often(sizes: list[int], seed: int) -> None:
    import torch

    peps = [Peptide(f"SEQ{t}X{i}", f"type{t}") for t, n in enumerate(sizes) for i in range(n)]
    sampler = type_balanced_sampler(peps, torch.Generator().manual_seed(seed))
    assert len(list(sampler)) == len(peps)
    weights = sampler.weights.numpy()
    per_type = [weights[[p.type == f"type{t}" for p in peps]].sum() for t in range(len(sizes))]
    np.testing.assert_allclose(per_type, per_type[0])  # every type has the same total weight
    draws = [peps[i].type for _ in range(100) for i in sampler]
    share = np.mean([t == "type0" for t in draws])  # about 1 / types, whatever type0's size
    assert abs(share - 1 / len(sizes)) < 0.2


@settings(max_examples=40, deadline=None)
@given(st.text(AA, min_size=1, max_size=30), st.text(AA, min_size=1, max_size=30))
def test_identity_bounds_and_symmetry(a: str, b: str) -> None:
    value = identity(a, b)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(identity(b, a))
    assert identity(a, a) == 1.0
    assert value <= min(len(a), len(b)) / max(len(a), len(b)) + 1e-9


def test_max_identity_pruning_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    refs = ["".join(rng.choice(list(AA), rng.integers(5, 30))) for _ in range(60)]
    for q in refs[:10] + ["GLFKKLLGG", "W"]:
        assert max_identity(q, refs) == pytest.approx(max(identity(q, r) for r in refs))


def test_uniqueness_novelty_diversity() -> None:
    train = ["GLFKKLLG", "WWDDWWDD", "ACDEFGHI"]
    assert uniqueness(["AAA", "AAA", "CCC", "DDD"]) == 0.75
    nov = novelty(["GLFKKLLG", "KKKKKKKK"], train)
    assert nov["novelty"] == 0.5 and nov["max_identity_mean"] < 1.0
    assert diversity(["AAAA", "AAAA"]) == 1.0
    assert diversity(["AAAA", "CCCC"]) == 0.0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=20))
def test_jsd_properties(p: list[float]) -> None:
    p = np.array(p)
    q = np.roll(p, 1)
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    assert 0.0 <= js_divergence(p, q) <= 1.0
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p))
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_frechet_distance_is_zero_for_same_set_and_mean_shift_squared() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 5))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 2.0) == pytest.approx(5 * 4.0, rel=1e-6)
    with pytest.raises(ValueError, match="at least 2 peptides per set, got 1 and"):
        frechet_distance(a[:1], a)  # one held-out peptide: no covariance, not a crash in sqrtm


def test_one_held_out_peptide_of_a_type_is_a_one_line_error() -> None:
    from protdistill.errors import ConfigError
    from protdistill.tasks.peptide.data import PeptideSplit
    from protdistill.tasks.peptide.evaluate import evaluate_samples

    train = [Peptide(s, "amp") for s in ("KKLLKK", "KLKLKLA", "GLFDKK")]
    split = PeptideSplit(train, [Peptide("KKWWKK", "amp")], ["amp"])
    embed = lambda seqs: np.random.default_rng(0).normal(size=(len(seqs), 4))  # noqa: E731
    with pytest.raises(ConfigError, match="type 'amp' has 1 held-out peptide") as err:
        evaluate_samples({"amp": ["KKLLKA", "KLLKKA"]}, split, embed=embed)
    assert "val_fraction" in str(err.value)


def test_baselines_keep_lengths_and_composition() -> None:
    train = ["GLFKKLLGGLL", "KKLLKKLLGG", "WWKKLLGFFA"]
    shuffled = shuffled_baseline(train, 50, seed=0)
    assert all(sorted(s) in [sorted(t) for t in train] for s in shuffled)
    prof = profile_baseline(train, 200, seed=0)
    assert {len(s) for s in prof} <= {len(t) for t in train}
    assert js_divergence(composition(prof), composition(train)) < 0.1
    assert profile_baseline(train, 5, seed=1, length=7) == profile_baseline(
        train, 5, seed=1, length=7
    )


def test_evaluate_set_reports_every_metric() -> None:
    train = shuffled_baseline(["GLFKKLLGGLLKW", "KKLLKKLLGGDEW", "WWKKLLGFFAKRT"], 30, seed=1)
    samples = shuffled_baseline(train, 20, seed=2) + [train[0]]

    def embed(seqs):  # noqa: ANN001, ANN202
        return np.stack([composition([s]) for s in seqs])

    m = evaluate_set(samples, train, held_out=train[:25], embed=embed, max_length=20)
    for key in (
        "uniqueness",
        "novelty",
        "diversity_mean_identity",
        "composition_jsd",
        "length_jsd",
        "charge_wasserstein",
        "isoelectric_point_mean",
        "frechet_distance",
    ):
        assert key in m and np.isfinite(m[key])
    assert m["novelty"] < 1.0  # one sample copies a training peptide
