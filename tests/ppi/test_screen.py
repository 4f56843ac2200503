"""`ppi screen`: same numbers as `ppi predict`, exact top-K, bipartite = all-vs-all on shared pairs,
resume after a kill gives the same output, TSV.gz / Parquet readable, API = CLI."""

from __future__ import annotations

import gzip
import json
import math
import random
import socket
import subprocess
import sys

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import protdistill
from protdistill.cli.main import app
from protdistill.distill.checkpoint import save_model
from protdistill.errors import ConfigError, InputError, ModelError
from protdistill.io.fasta import write_fasta
from protdistill.students import build_student
from protdistill.tasks.ppi.screen import screening as screen_mod
from protdistill.tasks.ppi.screen.blocks import TopK
from protdistill.tasks.ppi.screen.output import COLUMNS
from protdistill.tasks.ppi.screen.screening import ScreenConfig, screen

AA = "ACDEFGHIKLMNPQRSTVWY"
STUDENT = {"kind": "resnet1d", "embed_dim": 8, "channels": [8, 12], "hidden": 16}


@pytest.fixture(params=["mlp", "factorised"])
def model_path(tmp_path, request):
    torch.manual_seed(0)
    student = {**STUDENT, "head": request.param, "head_width": 6}
    model = build_student(student).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "student.safetensors"
    save_model(path, model, {"student": student, "ppi": {"max_residues": 60}})
    return path


@pytest.fixture
def proteome(tmp_path):
    rng = random.Random(1)
    seqs = {f"P{i:02d}": "".join(rng.choices(AA, k=rng.randint(5, 90))) for i in range(37)}
    path = tmp_path / "proteome.fasta"
    write_fasta(path, seqs)
    return path, seqs


def _read(path):
    if str(path).endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t")


def _all_pairs(model_path, seqs):
    ids = list(seqs)
    pairs = [(ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids))]
    probs = protdistill.load(model_path).predict(pairs, seqs)
    return dict(zip(pairs, probs.tolist(), strict=True))


def _run(model_path, fasta, out, **kw):
    kw.setdefault("progress", False)
    return screen(ScreenConfig(model=str(model_path), fasta=str(fasta), out=str(out), **kw))


def test_screen_equals_predict_on_every_pair(model_path, proteome, tmp_path) -> None:
    fasta, seqs = proteome
    summary = _run(model_path, fasta, tmp_path / "all.parquet", top_k=0, threshold=0.0, block=10)
    table = _read(tmp_path / "all.parquet")
    expected = _all_pairs(model_path, seqs)
    assert summary["pairs_total"] == len(expected) == len(table) == 37 * 36 // 2
    rows = zip(table.protein_a, table.protein_b, table.probability, strict=True)
    got = {(a, b): p for a, b, p in rows}
    assert set(got) == set(expected)  # each unordered pair once, i < j in FASTA order
    assert max(abs(got[k] - expected[k]) for k in expected) < 1e-5
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert table.probability.is_monotonic_decreasing


def test_top_k_equals_a_brute_force_sort(model_path, proteome, tmp_path) -> None:
    fasta, seqs = proteome
    _run(model_path, fasta, tmp_path / "top.tsv.gz", top_k=4, block=7, rank_by="probability")
    table = _read(tmp_path / "top.tsv.gz")
    scores = _all_pairs(model_path, seqs)
    for pid in seqs:
        partners = {(b if a == pid else a): p for (a, b), p in scores.items() if pid in (a, b)}
        best = sorted(partners, key=lambda q: -partners[q])[:4]
        rows = table[table.protein_a == pid]
        assert list(rows.protein_b) == best
        assert list(rows["rank"]) == [1, 2, 3, 4]


def test_specificity_ranking_equals_a_brute_force_z(model_path, proteome, tmp_path) -> None:
    fasta, seqs = proteome
    _run(model_path, fasta, tmp_path / "s.tsv.gz", top_k=4, block=7, rank_by="specificity")
    table = _read(tmp_path / "s.tsv.gz")
    prob = _all_pairs(model_path, seqs)
    logit = {k: math.log(p / (1 - p)) for k, p in prob.items()}
    ids = list(seqs)

    def score(a, b):
        return logit[(a, b)] if (a, b) in logit else logit[(b, a)]

    stats = {}
    for b in ids:  # each protein's logits with every other protein (the whole proteome fits)
        values = [score(a, b) for a in ids if a != b]
        m = sum(values) / len(values)
        stats[b] = (m, (sum((v - m) ** 2 for v in values) / len(values)) ** 0.5)
    for pid in ids:
        z = {b: (score(pid, b) - stats[b][0]) / stats[b][1] for b in ids if b != pid}
        rows = table[table.protein_a == pid]
        assert list(rows.protein_b) == sorted(z, key=lambda b: -z[b])[:4]
        assert rows.specificity.tolist() == pytest.approx([z[b] for b in rows.protein_b], abs=1e-3)


def test_prior_moves_probabilities_not_the_order(model_path, proteome, tmp_path) -> None:
    fasta, _ = proteome
    _run(model_path, fasta, tmp_path / "p.tsv.gz", top_k=3)
    _run(model_path, fasta, tmp_path / "q.tsv.gz", top_k=3, prior=0.01)
    p, q = _read(tmp_path / "p.tsv.gz"), _read(tmp_path / "q.tsv.gz")
    assert list(p.protein_b) == list(q.protein_b)
    assert (q.probability < p.probability).all()  # trained at 0.5, stated at 0.01


def test_threshold_and_top_k_together(model_path, proteome, tmp_path) -> None:
    fasta, seqs = proteome
    scores = _all_pairs(model_path, seqs)
    cut = sorted(scores.values())[len(scores) // 2]
    _run(model_path, fasta, tmp_path / "both.tsv.gz", top_k=3, threshold=cut)
    table = _read(tmp_path / "both.tsv.gz")
    assert (table.probability >= cut - 1e-6).all()
    assert table.groupby("protein_a").size().max() <= 3
    assert list(table.columns) == list(COLUMNS)


def test_bipartite_agrees_with_all_vs_all(model_path, proteome, tmp_path) -> None:
    fasta, seqs = proteome
    query = tmp_path / "query.fasta"
    write_fasta(query, {k: seqs[k] for k in ("P03", "P10")} | {"Q1": "MKTAYIAKQR"})
    out = tmp_path / "q.tsv.gz"
    summary = _run(model_path, fasta, out, query=str(query), top_k=0, threshold=0.0)
    table = _read(out)
    assert len(table) == summary["pairs_total"] == 3 * 37 - 2  # P03, P10 not paired with self
    assert set(table.protein_a) == {"P03", "P10", "Q1"}
    expected = _all_pairs(model_path, seqs)
    for a, b, p in zip(table.protein_a, table.protein_b, table.probability, strict=True):
        if a != "Q1":
            key = (a, b) if (a, b) in expected else (b, a)
            assert abs(expected[key] - p) < 1e-5


def test_killed_screen_resumes_to_identical_output(model_path, proteome, tmp_path, monkeypatch):
    fasta, _ = proteome
    _run(model_path, fasta, tmp_path / "once.tsv.gz", top_k=5, threshold=0.5, block=8)
    real = screen_mod._save_rows
    calls = []

    def dying(parts, b, *rest):
        real(parts, b, *rest)
        calls.append(b)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after two row blocks were committed

    monkeypatch.setattr(screen_mod, "_save_rows", dying)
    with pytest.raises(KeyboardInterrupt):
        _run(model_path, fasta, tmp_path / "twice.tsv.gz", top_k=5, threshold=0.5, block=8)
    monkeypatch.setattr(screen_mod, "_save_rows", real)
    summary = _run(model_path, fasta, tmp_path / "twice.tsv.gz", top_k=5, threshold=0.5, block=8)
    assert summary["pairs_scored_this_run"] < summary["pairs_total"]  # it did not start over
    with (
        gzip.open(tmp_path / "once.tsv.gz", "rt") as a,
        gzip.open(tmp_path / "twice.tsv.gz", "rt") as b,
    ):
        assert a.read() == b.read()
    assert not (tmp_path / "twice.parts").exists()


def test_resume_with_other_settings_is_refused(model_path, proteome, tmp_path, monkeypatch):
    fasta, _ = proteome

    def dying(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(screen_mod, "_save_rows", dying)
    with pytest.raises(KeyboardInterrupt):
        _run(model_path, fasta, tmp_path / "h.tsv.gz", top_k=5, block=8)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="other settings"):
        _run(model_path, fasta, tmp_path / "h.tsv.gz", top_k=6, block=8)


def test_a_second_screen_into_a_running_screens_output_stops(model_path, proteome, tmp_path):
    fasta, _ = proteome
    out = tmp_path / "h.tsv.gz"
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a live process holds the output's lock, as a running screen would
        lock = tmp_path / ".h.tsv.gz.lock"
        lock.write_text(json.dumps({"pid": first.pid, "host": socket.gethostname()}))
        with pytest.raises(InputError, match=f"pid {first.pid}") as err:
            _run(model_path, fasta, out, top_k=5)
        assert "\n" not in str(err.value) and not out.exists() and lock.exists()
    finally:
        first.kill()
        first.wait()
    _run(model_path, fasta, out, top_k=5)  # that writer is gone: its stale lock is taken over
    assert out.exists() and not lock.exists()


def test_bad_requests_are_one_line_errors(model_path, proteome, tmp_path) -> None:
    fasta, _ = proteome
    with pytest.raises(ConfigError, match="nothing to keep"):
        _run(model_path, fasta, tmp_path / "x.tsv.gz", top_k=0)
    with pytest.raises(ConfigError, match="HITS.tsv.gz or HITS.parquet"):
        _run(model_path, fasta, tmp_path / "x.csv")
    (tmp_path / "taken.tsv.gz").write_text("keep me")
    with pytest.raises(InputError, match="output exists"):
        _run(model_path, fasta, tmp_path / "taken.tsv.gz")
    assert (tmp_path / "taken.tsv.gz").read_text() == "keep me"


def test_api_and_cli_give_the_same_numbers(model_path, proteome, tmp_path) -> None:
    fasta, _ = proteome
    result = CliRunner().invoke(
        app,
        ["ppi", "screen", "--model", str(model_path), "--fasta", str(fasta), "--out",
         str(tmp_path / "cli.tsv.gz"), "--top-k", "3", "--block", "7", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "cli.summary.json").read_text())
    assert summary["block_side"] == 7  # --block reached the config (the API used its own)
    protdistill.load(model_path).screen(fasta, tmp_path / "api.tsv.gz", top_k=3)
    pd.testing.assert_frame_equal(_read(tmp_path / "cli.tsv.gz"), _read(tmp_path / "api.tsv.gz"))


def test_embed_matches_the_pair_features(model_path, proteome) -> None:
    _, seqs = proteome
    model = protdistill.load(model_path)
    emb = model.embed(seqs)
    a, b = emb["P01"][None], emb["P02"][None]
    with torch.no_grad():
        prob = model.network.head.logits(a, b).softmax(-1)[0, 1]
    assert abs(float(prob) - float(model.predict([("P01", "P02")], seqs)[0])) < 1e-5


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0, 1, allow_nan=False, width=32), min_size=1, max_size=40),
    st.integers(1, 6),
    st.integers(1, 9),
)
def test_top_k_merge_is_independent_of_block_cuts(values, k, cut) -> None:
    probs = torch.tensor(values)[None]
    partners = torch.arange(len(values))
    whole, pieces = TopK.empty(1, k), TopK.empty(1, k)
    whole.merge(torch.tensor([0]), probs, partners)
    for start in range(0, len(values), cut):
        pieces.merge(
            torch.tensor([0]), probs[:, start : start + cut], partners[start : start + cut]
        )
    assert torch.equal(whole.values, pieces.values) and torch.equal(whole.index, pieces.index)
    top = sorted(values, reverse=True)[:k]
    assert whole.values[0, : len(top)].tolist() == pytest.approx(top)


def test_interaction_student_screens_like_predict(proteome, tmp_path) -> None:
    fasta, seqs = proteome
    torch.manual_seed(0)
    spec = {"kind": "interaction", "embed_dim": 8, "channels": 12, "layers": 2, "map_dim": 8}
    path = tmp_path / "interaction.safetensors"
    save_model(path, build_student(spec).eval(), {"student": spec, "ppi": {"max_residues": 60}})
    summary = _run(path, fasta, tmp_path / "i.tsv.gz", top_k=0, threshold=0.0, memory_mb=16)
    table = _read(tmp_path / "i.tsv.gz")
    expected = _all_pairs(path, seqs)
    assert summary["pairs_total"] == len(table) == len(expected)
    for a, b, p in zip(table.protein_a, table.protein_b, table.probability, strict=True):
        assert abs(expected[(a, b)] - p) < 1e-5
    with pytest.raises(ModelError, match="per-protein embeddings"):
        protdistill.load(path).embed(seqs)


def test_a_protein_that_fails_is_skipped_and_listed(model_path, proteome, tmp_path, monkeypatch):
    fasta, seqs = proteome
    bad = len(seqs["P05"])
    real = type(build_student(STUDENT)).embed

    def fragile(self, tokens, mask):
        if (mask.sum(1) == min(bad, 60)).any():
            raise RuntimeError("out of memory")
        return real(self, tokens, mask)

    monkeypatch.setattr(type(build_student(STUDENT)), "embed", fragile)
    logged = []
    cfg = ScreenConfig(model=str(model_path), fasta=str(fasta), out=str(tmp_path / "s.tsv.gz"),
                       top_k=2, progress=False)  # fmt: skip
    summary = screen(cfg, log=logged.append)
    skipped = [p for p, s in seqs.items() if min(len(s), 60) == min(bad, 60)]
    assert summary["skipped_proteins"] == skipped and "P05" in skipped
    assert any("skipped a protein" in line for line in logged)
    table = _read(tmp_path / "s.tsv.gz")
    assert not set(skipped) & (set(table.protein_a) | set(table.protein_b))
    assert set(table.protein_a) == set(seqs) - set(skipped)
