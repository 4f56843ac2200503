"""PPI inputs: FASTA / pairs validation, subsampling and splits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.errors import InputError
from protdistill.io.fasta import clean_sequence, read_fasta
from protdistill.io.pairs import Pair, read_pairs
from protdistill.tasks.ppi.common.data import make_split, stratified_subsample


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_fasta_reads_multiline_and_maps_rare_letters(tmp_path) -> None:
    path = _write(tmp_path, "s.fasta", ">P1 desc\nMKV\nuob*\n>P2\nACDX\n")
    assert read_fasta(path) == {"P1": "MKVXXX", "P2": "ACDX"}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (">P1\nMK1V\n>P2\nAA\n", r"P1 \(line 2\).*'1'"),
        (">P1 x\nMKV\nMK\nM?K\n", r"P1 \(line 4\).*'\?' \(first at position 7\)"),
        (">P1\nMKV\n>P2\n\n>P3\nAA\n", r"P2 \(line 3\).*empty"),
        (">P1\nMKV\n>P1\nMKA\n", r"P1 \(line 3\).*different sequences"),
        ("MKV\n>P1\nAA\n", r"line 1.*before the first"),
        ("", "no FASTA records"),
    ],
)
def test_fasta_errors_name_record_and_line(tmp_path, text: str, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        read_fasta(_write(tmp_path, "s.fasta", text))
    assert "s.fasta" in str(info.value) and "fix:" in str(info.value)


def test_fasta_over_long_sequence_is_rejected(tmp_path) -> None:
    with pytest.raises(InputError, match="exceeds the limit of 3"):
        read_fasta(_write(tmp_path, "s.fasta", ">P1\nMKVA\n"), max_length=3)


@given(st.text(min_size=1, max_size=20))
def test_clean_sequence_accepts_only_amino_acids(text: str) -> None:
    letters = "".join(text.split()).upper().rstrip("*")
    valid = bool(letters) and all(c in "ACDEFGHIKLMNPQRSTVWYUOBZJX" for c in letters)
    if valid:
        out = clean_sequence(text)
        assert len(out) == len(letters) and set(out) <= set("ACDEFGHIKLMNPQRSTVWYX")
    else:
        with pytest.raises(InputError):
            clean_sequence(text, record="r")


PROTEINS = {"A": "MKV", "B": "MKA", "C": "MKC"}


def test_pairs_header_label_spellings_and_duplicates(tmp_path) -> None:
    text = "protein_a\tprotein_b\tlabel\nA\tB\t1\nB\tA\t1.0\nA\tC\tfalse\nC\tC\ttrue\n"
    pairs, report = read_pairs(_write(tmp_path, "p.tsv", text), proteins=PROTEINS)
    assert pairs == [Pair("A", "B", 1.0), Pair("A", "C", 0.0), Pair("C", "C", 1.0)]
    assert (report.duplicates_dropped, report.self_pairs) == (1, 1)
    dropped, _ = read_pairs(_write(tmp_path, "q.tsv", text), proteins=PROTEINS, self_pairs="drop")
    assert Pair("C", "C", 1.0) not in dropped


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("A\tZ\t1\n", r"line 1.*'Z' is not in the FASTA"),
        ("A\tB\t1\nB\tA\t0\n", r"line 2.*label 0.0 here but 1.0 at line 1"),
        ("A\tB\tmaybe\n", r"line 1.*label 'maybe'"),
        ("A\tB\t1\t7\n", r"line 1.*expected 2 or 3 columns"),
        ("A\tB\n", r"line 1.*missing label"),
    ],
)
def test_pairs_errors_name_the_line(tmp_path, text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        read_pairs(_write(tmp_path, "p.tsv", text), proteins=PROTEINS)


def test_self_pair_error_policy(tmp_path) -> None:
    with pytest.raises(InputError, match="self-pair"):
        read_pairs(_write(tmp_path, "p.tsv", "A\tA\t1\n"), proteins=PROTEINS, self_pairs="error")


def _pairs(n_proteins: int, n_pairs: int, seed: int) -> list[Pair]:
    import random

    rng = random.Random(seed)
    seen, out = set(), []
    while len(out) < n_pairs:
        a, b = rng.randrange(n_proteins), rng.randrange(n_proteins)
        if a == b or frozenset((a, b)) in seen:
            continue
        seen.add(frozenset((a, b)))
        out.append(Pair(f"P{a}", f"P{b}", float(len(out) % 2)))
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1000), st.sampled_from(["protein", "random"]))
def test_splits_partition_pairs_and_protein_split_is_disjoint(seed: int, mode: str) -> None:
    pairs = _pairs(60, 400, seed)
    split = make_split(pairs, mode=mode, seed=seed)
    ids = [i for part in split.values() for i in part]
    assert len(ids) == len(set(ids))
    if mode == "random":
        assert sorted(ids) == list(range(len(pairs)))
    else:
        test_proteins = {p for i in split["test"] for p in (pairs[i].a, pairs[i].b)}
        train_proteins = {
            p for i in split["train"] + split["val"] for p in (pairs[i].a, pairs[i].b)
        }
        assert not test_proteins & train_proteins
        # every validation pair has a protein that no training pair contains
        fit_proteins = {p for i in split["train"] for p in (pairs[i].a, pairs[i].b)}
        assert all({pairs[i].a, pairs[i].b} - fit_proteins for i in split["val"])
        assert len(split["val"]) >= 0.1 * (len(split["train"]) + len(split["val"])) - 1


@pytest.mark.parametrize("mode", ["protein", "random"])
def test_kfold_test_parts_are_disjoint(mode: str) -> None:
    pairs = _pairs(50, 300, 1)
    tests = [set(make_split(pairs, mode=mode, folds=5, fold=k)["test"]) for k in range(5)]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not tests[i] & tests[j]
    if mode == "random":
        assert set().union(*tests) == set(range(len(pairs)))


def test_split_is_seeded() -> None:
    pairs = _pairs(40, 200, 2)
    assert make_split(pairs, seed=3) == make_split(pairs, seed=3)
    assert make_split(pairs, seed=3) != make_split(pairs, seed=4)


def test_stratified_subsample_keeps_balance_and_order() -> None:
    pairs = _pairs(80, 600, 3)
    sub = stratified_subsample(pairs, 100, seed=0)
    assert len(sub) == 100 and sum(p.label for p in sub) == 50
    assert [pairs.index(p) for p in sub] == sorted(pairs.index(p) for p in sub)
