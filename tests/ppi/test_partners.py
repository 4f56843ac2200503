"""Partner-ranking metrics against hand-computed values on a small graph; the degree-matched
negative sampler keeps expected degrees and never emits a known positive."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.errors import ConfigError
from protdistill.io.pairs import Pair
from protdistill.tasks.ppi.common.negatives import degree_negatives, with_degree_negatives
from protdistill.tasks.ppi.screen.judge import candidate_scores, column_mean, ranking_table
from protdistill.tasks.ppi.screen.partners import (
    _auroc,
    degrees,
    hub_concentration,
    pair_set,
    partner_ranking,
    ranked,
)

IDS = ["a", "b", "c", "d", "e"]
#         a    b    c    d    e      (candidates; rows: queries a, b, c)
SCORES = np.array([
    [9.0, 0.9, 0.1, 0.5, 0.3],
    [0.9, 9.0, 0.8, 0.2, 0.7],
    [0.1, 0.8, 9.0, 0.6, 0.4],
])  # fmt: skip
POS = pair_set([("a", "d"), ("a", "e"), ("b", "c"), ("c", "e")])
NEG = pair_set([("a", "b"), ("b", "d"), ("c", "d")])


def test_partner_ranking_on_a_hand_computed_graph() -> None:
    out = partner_ranking(SCORES, IDS[:3], IDS, POS, NEG, ks=(1, 2), hub_k=2, hub_n=1)
    # a: order (self last) b .9, d .5, e .3, c .1 -> partners d (rank 2), e (rank 3)
    # b: a .9, c .8, e .7, d .2 -> partner c (rank 2)
    # c: b .8, d .6, e .4, a .1 -> partners b (rank 1), e (rank 3)
    assert out["queries"] == 3
    assert out["recall@1"] == pytest.approx((0 + 0 + 0.5) / 3)
    assert out["recall@2"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert out["rr"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    # per-query AUROC: a: d .5, e .3 vs b .9 -> 0; b: c .8 vs a .9, d .2 -> 0.5;
    # c: b .8, e .4 vs d .6 -> 0.5
    assert out["query_auroc"] == pytest.approx(1 / 3)
    assert out["query_auroc_n"] == 3
    # top-2 lists: a [b, d], b [a, c], c [b, d] -> b listed twice of 6 slots
    assert out["hub"] == {"top_share": pytest.approx(2 / 6), "listed": 4, "candidates": 5}
    # unordered pairs of the grid: ab .9, ac .1, ad .5, ae .3, bc .8, bd .2, be .7, cd .6, ce .4
    # best 20 % = ceil(1.8) = 2 pairs: ab, bc -> 1 of 4 positives (ad, ae, bc, ce)
    assert out["top20_share"] == pytest.approx(1 / 4)
    assert out["by_degree"]["1"]["queries"] == 1  # b has one known partner
    assert out["by_degree"]["2-4"]["queries"] == 2


def test_ranking_breaks_ties_by_candidate_order_and_puts_self_last() -> None:
    scores = np.array([[1.0, 1.0, 1.0, 0.5]])
    order = ranked(scores, np.array([[False, True, False, False]]))
    assert order.tolist() == [[0, 2, 3, 1]]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=8),
       st.lists(st.floats(-5, 5), min_size=1, max_size=8))  # fmt: skip
def test_auroc_equals_the_pair_count_definition(pos, neg) -> None:
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    assert _auroc(np.array(pos), np.array(neg)) == pytest.approx(wins / (len(pos) * len(neg)))


def test_hub_concentration_counts_slots() -> None:
    order = np.array([[0, 1], [0, 2], [0, 1]])
    got = hub_concentration(order, ["x", "y", "z"], k=2, n=1)
    assert got == {"top_share": pytest.approx(3 / 6), "listed": 3, "candidates": 3}


def _hub_graph(rng: np.random.Generator, proteins: int, edges: int) -> list[Pair]:
    """A sparse graph whose degrees are heavy-tailed (ends drawn with Zipf-like weights)."""
    weight = 1.0 / np.arange(1, proteins + 1) ** 0.7
    weight /= weight.sum()
    pairs = set()
    while len(pairs) < edges:
        a, b = rng.choice(proteins, size=2, p=weight)
        if a != b:
            pairs.add((f"p{min(a, b)}", f"p{max(a, b)}"))
    return [Pair(a, b, 1.0) for a, b in sorted(pairs)]


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000))
def test_degree_sampler_keeps_expected_degrees_and_no_known_positive(seed) -> None:
    rng = np.random.default_rng(seed)
    pos = _hub_graph(rng, 500, 800)
    known = {frozenset((p.a, p.b)) for p in pos}
    neg = degree_negatives(pos, 2 * len(pos), seed=seed, known=known)
    keys = [frozenset((p.a, p.b)) for p in neg]
    assert not set(keys) & known
    assert len(set(keys)) == len(keys) and all(p.a != p.b and p.label == 0 for p in neg)
    # each end is drawn from the positive multiset: a protein's negative degree is, in
    # expectation, 2x its positive degree (rejected known / repeated pairs bend this slightly;
    # draws at random: r was 0.92-0.94 over five seeds)
    pos_deg, neg_deg = degrees(known), Counter(x for k in keys for x in k)
    ids = sorted(pos_deg)
    x = np.array([pos_deg[i] for i in ids], float)
    y = np.array([neg_deg[i] for i in ids], float)
    assert np.corrcoef(x, y)[0, 1] > 0.85
    top = np.argsort(-x)[:10]  # the hubs keep their share of all ends
    assert abs(y[top].sum() / y.sum() - x[top].sum() / x.sum()) < 0.1
    assert set(neg_deg) <= set(pos_deg)


def test_degree_negatives_in_a_split_keep_sizes_and_leave_test_alone() -> None:
    rng = np.random.default_rng(0)
    pos = _hub_graph(rng, 60, 90)
    neg_given = [Pair(f"l{i}", f"l{i + 1}", 0.0) for i in range(10)]
    split = {"train": pos[:50] + neg_given, "val": pos[50:] + neg_given[:3], "test": neg_given}
    known = {frozenset((p.a, p.b)) for p in pos}
    out = with_degree_negatives(split, known, seed=1)
    assert out["test"] is split["test"]
    for name in ("train", "val"):
        assert len(out[name]) == len(split[name])
        assert sum(p.label == 1 for p in out[name]) == sum(p.label == 1 for p in split[name])
    assert out == with_degree_negatives(split, known, seed=1)  # seeded


def test_sampler_refuses_an_impossible_request() -> None:
    pos = [Pair("a", "b", 1.0)]
    with pytest.raises(ConfigError, match="degree-matched"):
        degree_negatives(pos, 5, seed=0, known={frozenset(("a", "b"))})


def test_evaluate_ranking_cli_equals_ranking_by_predicted_probabilities(tmp_path) -> None:
    import json
    import random

    import torch
    from typer.testing import CliRunner

    import protdistill
    from protdistill.cli.main import app
    from protdistill.distill.checkpoint import save_model
    from protdistill.io.fasta import write_fasta
    from protdistill.students import build_student

    rng = random.Random(0)
    seqs = {f"P{i}": "".join(rng.choices("ACDEFGHIKLMNPQRSTVWY", k=rng.randint(8, 40)))
            for i in range(14)}  # fmt: skip
    write_fasta(tmp_path / "p.fasta", seqs)
    ids = sorted(seqs)
    pairs = [(ids[i], ids[(i * 5 + 3) % 14], int(i % 3 != 0)) for i in range(14)]
    pairs = [(a, b, y) for a, b, y in pairs if a != b]
    (tmp_path / "pairs.tsv").write_text("".join(f"{a}\t{b}\t{y}\n" for a, b, y in pairs))
    student = {"kind": "resnet1d", "embed_dim": 8, "channels": [8, 12], "head": "factorised"}
    torch.manual_seed(0)
    save_model(tmp_path / "student.safetensors", build_student(student).eval(),
               {"student": student, "ppi": {"max_residues": 64}})  # fmt: skip
    out = tmp_path / "eval"
    args = ["ppi", "evaluate", "--model", str(tmp_path / "student.safetensors"), "--pairs",
            str(tmp_path / "pairs.tsv"), "--fasta", str(tmp_path / "p.fasta"), "--out", str(out),
            "--ranking"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    table = json.loads((out / "ranking.json").read_text())
    assert set(table) == {"probability", "specificity", "mean_score_per_candidate", "random"}
    # the same figures from probabilities of `predict` over every pair of the file
    model = protdistill.load(tmp_path / "student.safetensors")
    grid = [(a, b) for a in ids for b in ids]
    prob = np.asarray(model.predict(grid, seqs), dtype=float).reshape(len(ids), len(ids))
    pos = pair_set((a, b) for a, b, y in pairs if y == 1)
    neg = pair_set((a, b) for a, b, y in pairs if y == 0)
    queries = sorted({p for pair in pos for p in pair})
    rows = [ids.index(q) for q in queries]
    expected = partner_ranking(prob[rows], queries, ids, pos, neg)
    for key in ("recall@10", "rr", "top20_share", "query_auroc"):
        assert table["probability"][key] == pytest.approx(expected[key], abs=1e-6)


def test_a_run_made_before_the_negatives_option_resumes(tmp_path) -> None:
    import yaml

    from protdistill.tasks.ppi.common.config import PpiConfig
    from protdistill.tasks.ppi.run.prepare import _check_resume

    cfg = PpiConfig(pairs="p.tsv", fasta="f.fasta")
    old = cfg.model_dump()
    del old["negatives"]  # written by an earlier protdistill
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    _check_resume(cfg, tmp_path)  # the default it ran with: no refusal
    with pytest.raises(ConfigError, match="negatives"):
        _check_resume(cfg.model_copy(update={"negatives": "degree"}), tmp_path)


def test_blended_rankings_run_from_specificity_to_the_propensity_list() -> None:
    rng = np.random.default_rng(3)
    ids = [f"P{i}" for i in range(12)]
    logits = rng.normal(size=(12, 12))
    logits = logits + logits.T + np.linspace(-3, 3, 12)[None, :] + np.linspace(-3, 3, 12)[:, None]
    pos = {frozenset((ids[i], ids[(i + 3) % 12])) for i in range(12)}
    table = ranking_table(logits, ids[:6], ids, pos, set(), degrees(pos), blends=(0.0, 1e6))
    assert table["specificity+0.0*propensity"] == table["specificity"]
    # an overwhelming weight leaves one list for every query: the candidates' mean pool logits
    pool_mean = column_mean(logits, np.eye(12, dtype=bool))
    by_mean = partner_ranking(candidate_scores(pool_mean, 6), ids[:6], ids, pos, set(),
                              degree=degrees(pos))  # fmt: skip
    assert table["specificity+1000000.0*propensity"] == by_mean
    assert table["specificity+1000000.0*propensity"] != table["specificity"]
