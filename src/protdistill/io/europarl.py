"""Europarl reader: markup stripped, sentences split, DeepSC-style normalisation and length filter.

Europarl proceedings files (``ep-YY-MM-DD.txt``) hold one paragraph per line between markup
lines such as ``<CHAPTER ID=1>``, ``<SPEAKER ID=2 NAME="...">`` and ``<P>``. Sentences are
normalised as the DeepSC preprocessing does: lower-case, ASCII letters only, ``. ! ?`` kept as
separate tokens.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from protdistill.errors import InputError

_TAG = re.compile(r"<[^>]*>")
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_PUNCT = re.compile(r"([.!?])")
_NON_WORD = re.compile(r"[^a-z.!?]+")


def normalize_sentence(text: str) -> str:
    """Lower-case ASCII words with ``. ! ?`` split off; everything else becomes a space."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = _PUNCT.sub(r" \1 ", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph after ``. ! ?`` followed by a capital letter or digit."""
    return [s.strip() for s in _SENT_END.split(paragraph.strip()) if s.strip()]


def corpus_files(root: str | Path) -> list[Path]:
    """The ``*.txt`` files of a Europarl folder (or the single file given), sorted by name."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputError(
            "Europarl corpus not found", path=root, fix="pass a folder of Europarl .txt files"
        )
    files = sorted(p for p in root.rglob("*.txt") if p.is_file())
    if not files:
        raise InputError(
            "no .txt files in the corpus folder",
            path=root,
            fix="pass a folder holding Europarl files such as ep-00-01-17.txt",
        )
    return files


def iter_sentences(path: Path) -> Iterator[str]:
    """Raw sentences of one Europarl file, markup lines and inline tags removed."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("<"):
                continue
            yield from split_sentences(_TAG.sub(" ", line))


def read_europarl(
    root: str | Path,
    *,
    min_words: int = 4,
    max_words: int = 30,
    dedupe: bool = True,
) -> list[str]:
    """Normalised sentences with ``min_words``–``max_words`` tokens, in corpus order.

    Tokens are counted after normalisation (``.``, ``!`` and ``?`` count as tokens, as in DeepSC).
    Duplicates are dropped when ``dedupe`` so a train/test split cannot share a sentence.
    Raises :class:`InputError` when the folder is missing or no sentence survives the filter.
    """
    if min_words < 1 or max_words < min_words:
        raise InputError(
            f"bad sentence length range {min_words}-{max_words}",
            path=root,
            fix="use 1 <= min_words <= max_words",
        )
    files = corpus_files(root)
    seen: set[str] = set()
    out: list[str] = []
    for path in files:
        for raw in iter_sentences(path):
            sent = normalize_sentence(raw)
            n = sent.count(" ") + 1 if sent else 0
            if not min_words <= n <= max_words or (dedupe and sent in seen):
                continue
            seen.add(sent)
            out.append(sent)
    if not out:
        raise InputError(
            f"no sentences of {min_words}-{max_words} words found in {len(files)} file(s)",
            path=root,
            fix="check that the files are Europarl text (one paragraph per line)",
        )
    return out
