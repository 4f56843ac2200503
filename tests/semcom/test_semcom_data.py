"""Europarl reading, vocabulary, split and batching."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from protdistill.errors import InputError
from protdistill.io.europarl import normalize_sentence, read_europarl, split_sentences
from protdistill.tasks.semcom.data import (
    END,
    PAD,
    START,
    UNK,
    BucketBatchSampler,
    Vocab,
    collate,
    split_corpus,
)


def test_normalize_lowercases_splits_punctuation_and_drops_symbols() -> None:
    assert normalize_sentence("Madam President, it's 17 December!") == (
        "madam president it s december !"
    )


def test_split_sentences_on_terminal_punctuation_before_capitals() -> None:
    text = "I agree. It is late! Is it? yes. 3 members voted."
    assert split_sentences(text) == ["I agree.", "It is late!", "Is it? yes.", "3 members voted."]


def test_read_europarl_strips_markup_filters_length_and_dedupes(tmp_path: Path) -> None:
    (tmp_path / "ep-00-01-01.txt").write_text(
        '<CHAPTER ID=1>\nShort one.\n<SPEAKER ID=2 NAME="X">\n'
        "This sentence has exactly six tokens. This sentence has exactly six tokens.\n"
        "<P>\nA much longer sentence that keeps going and going well past the limit we set.\n",
        encoding="utf-8",
    )
    sents = read_europarl(tmp_path, min_words=4, max_words=8)
    assert sents == ["this sentence has exactly six tokens ."]
    assert all("<" not in s for s in sents)


def test_empty_or_missing_corpus_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_europarl(tmp_path / "nope")
    with pytest.raises(InputError, match="no .txt files"):
        read_europarl(tmp_path)
    (tmp_path / "a.txt").write_text("<CHAPTER ID=1>\nHi.\n", encoding="utf-8")
    with pytest.raises(InputError, match="no sentences of 4-30 words") as err:
        read_europarl(tmp_path)
    assert str(tmp_path) in str(err.value) and "fix:" in str(err.value)


def test_vocab_round_trip_unknowns_and_cap() -> None:
    vocab = Vocab.build(["a b c a", "a b d"], max_size=6)
    assert len(vocab) == 6 and vocab.words[4:] == ["a", "b"]
    ids = vocab.encode("a b zz")
    assert ids == [START, 4, 5, UNK, END]
    assert vocab.decode(ids + [PAD, 7]) == "a b <unk>"


def test_split_is_seeded_disjoint_and_sized() -> None:
    sents = [f"s {i}" for i in range(100)]
    train, test = split_corpus(sents, test_fraction=0.1, seed=3, max_sentences=50)
    assert (len(train), len(test)) == (45, 5)
    assert not set(train) & set(test)
    assert split_corpus(sents, seed=3, max_sentences=50) == (train, test)
    assert split_corpus(sents, seed=4, max_sentences=50) != (train, test)
    with pytest.raises(InputError, match="empty corpus"):
        split_corpus([])


@given(st.lists(st.integers(3, 32), min_size=1, max_size=80), st.integers(1, 9))
def test_bucket_sampler_yields_every_index_once(lengths: list[int], batch: int) -> None:
    sampler = BucketBatchSampler(lengths, batch, torch.Generator().manual_seed(0), pool=2)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch for b in batches)


def test_collate_pads_and_masks() -> None:
    out = collate([torch.tensor([1, 5, 2]), torch.tensor([1, 2])])
    assert out["tokens"].tolist() == [[1, 5, 2], [1, 2, PAD]]
    assert out["mask"].tolist() == [[True, True, True], [True, True, False]]
