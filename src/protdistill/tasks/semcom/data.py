"""Vocabulary, seeded train/test split and padded batches for semantic-communication models."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from protdistill.errors import InputError
from protdistill.io.europarl import read_europarl

PAD, START, END, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")


class Vocab:
    """Word <-> id table; ids 0-3 are ``<pad> <start> <end> <unk>``."""

    def __init__(self, words: list[str]) -> None:
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise InputError(
                "vocabulary must start with the special tokens " + " ".join(SPECIALS),
                fix="build it with Vocab.build(...)",
            )
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, sentences: list[str], max_size: int = 8000, min_freq: int = 1) -> Vocab:
        """Most frequent words first (ties broken alphabetically), at most ``max_size`` in all."""
        counts = Counter(w for s in sentences for w in s.split())
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w)
        )
        return cls(list(SPECIALS) + ranked[: max(0, max_size - len(SPECIALS))])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, sentence: str) -> list[int]:
        """``[<start>, w1, ..., wn, <end>]`` ids; unknown words become ``<unk>``."""
        return [START] + [self.index.get(w, UNK) for w in sentence.split()] + [END]

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        """Words up to the first ``<end>``; ``<pad>``/``<start>`` dropped, ``<unk>`` kept."""
        words = []
        for i in ids.tolist() if isinstance(ids, torch.Tensor) else ids:
            if i == END:
                break
            if i in (PAD, START):
                continue
            words.append(self.words[i] if 0 <= i < len(self.words) else SPECIALS[UNK])
        return " ".join(words)


def split_corpus(
    sentences: list[str],
    *,
    test_fraction: float = 0.1,
    seed: int = 0,
    max_sentences: int | None = None,
) -> tuple[list[str], list[str]]:
    """Seeded shuffle, optional subset of ``max_sentences``, then a train/test split."""
    if not sentences:
        raise InputError("empty corpus: no sentences to split", fix="check the corpus folder")
    order = list(sentences)
    random.Random(seed).shuffle(order)
    if max_sentences:
        order = order[:max_sentences]
    n_test = max(1, round(len(order) * test_fraction)) if len(order) > 1 else 0
    return order[n_test:], order[:n_test]


class SentenceDataset(Dataset):
    """Encoded sentences, each ``(L,)`` long ids including ``<start>`` and ``<end>``."""

    def __init__(self, sentences: list[str], vocab: Vocab) -> None:
        self.sentences = sentences
        self.items = [torch.tensor(vocab.encode(s), dtype=torch.long) for s in sentences]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.items[i]


def collate(items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Right-pad id tensors: ``{"tokens": (B, L), "mask": (B, L)}`` (mask True = real token)."""
    tokens = torch.nn.utils.rnn.pad_sequence(items, batch_first=True, padding_value=PAD)
    return {"tokens": tokens, "mask": tokens != PAD}


class BucketBatchSampler(Sampler[list[int]]):
    """Shuffled batches of similar length (less padding): a seeded random order is cut into
    pools of ``pool`` batches, each pool is sorted by length, cut into batches, and the batches
    are shuffled. ``self.sampler`` holds the generator (saved on resume by the trainer)."""

    def __init__(
        self, lengths: list[int], batch_size: int, generator: torch.Generator, pool: int = 50
    ) -> None:
        self.lengths = lengths
        self.batch_size = batch_size
        self.pool = pool
        self.generator = generator
        self.sampler = RandomSampler(range(len(lengths)), generator=generator)

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(self.sampler)
        size = self.batch_size * self.pool
        batches = []
        for i in range(0, len(order), size):
            chunk = sorted(order[i : i + size], key=lambda j: self.lengths[j])
            batches += [
                chunk[k : k + self.batch_size] for k in range(0, len(chunk), self.batch_size)
            ]
        perm = torch.randperm(len(batches), generator=self.generator).tolist()
        return iter([batches[p] for p in perm])


def make_loader(
    sentences: list[str],
    vocab: Vocab,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    bucket: bool = True,
) -> DataLoader:
    """Batches of ``{"tokens", "mask"}``; shuffled ones are seeded and (``bucket``)
    length-bucketed."""
    data = SentenceDataset(sentences, vocab)
    if not shuffle:
        return DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate)
    gen = torch.Generator().manual_seed(seed)
    if not bucket:
        return DataLoader(data, batch_size, shuffle=True, collate_fn=collate, generator=gen)
    lengths = [len(t) for t in data.items]
    sampler = BucketBatchSampler(lengths, batch_size, gen)
    return DataLoader(data, batch_sampler=sampler, collate_fn=collate)


def load_split(
    corpus: str | Path,
    *,
    min_words: int = 4,
    max_words: int = 30,
    max_sentences: int | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[list[str], list[str]]:
    """Read a Europarl folder and return its seeded ``(train, test)`` sentences."""
    sents = read_europarl(corpus, min_words=min_words, max_words=max_words)
    return split_corpus(sents, test_fraction=test_fraction, seed=seed, max_sentences=max_sentences)
