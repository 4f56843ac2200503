"""Protein-pair tables (TSV/CSV): with or without header, labels 1/0, 1.0/0.0, true/false."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from protdistill.errors import InputError
from protdistill.io.atomic import write_text
from protdistill.io.text import open_text

_TRUE = {"1", "1.0", "true", "yes", "positive"}
_FALSE = {"0", "0.0", "false", "no", "negative"}
SelfPairPolicy = Literal["keep", "drop", "error"]


@dataclass(frozen=True)
class Pair:
    """One protein pair; ``label`` is 1.0 / 0.0, or None when unlabelled."""

    a: str
    b: str
    label: float | None = None


@dataclass
class PairReport:
    """What validation changed: counts of dropped duplicates and self-pairs."""

    n_read: int = 0
    duplicates_dropped: int = 0
    self_pairs: int = 0
    self_pairs_dropped: int = 0
    notes: list[str] = field(default_factory=list)


def _parse_label(text: str, *, path: Path, record: str) -> float:
    value = text.strip().lower()
    if value in _TRUE:
        return 1.0
    if value in _FALSE:
        return 0.0
    raise InputError(
        f"label {text!r} is not 1/0, 1.0/0.0 or true/false",
        path=path,
        record=record,
        fix="write labels as 1 (interacting) or 0 (not interacting)",
    )


def _split(line: str, path: Path, record: str) -> list[str]:
    """Fields of a tab-, comma- or space-separated line; quoted fields ("P1","P2",1) unquoted."""
    delimiter = "\t" if "\t" in line else "," if "," in line else " "
    try:
        fields = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])
    except csv.Error as exc:  # e.g. a field past the csv module's 131,072-character limit
        raise InputError(
            f"unreadable line ({exc})", path=path, record=record,
            fix="write idA idB [label] separated by tabs or commas",
        ) from exc  # fmt: skip
    return [f.strip() for f in fields if f.strip()]


def read_pairs(
    path: str | Path,
    *,
    proteins: Mapping[str, str] | None = None,
    require_labels: bool = True,
    self_pairs: SelfPairPolicy = "keep",
    keep_duplicates: bool = False,
) -> tuple[list[Pair], PairReport]:
    """Read pairs from a tab/comma/space separated file; a header line is detected and skipped.

    Validates: column count, labels, ids missing from ``proteins``, self-pairs (per ``self_pairs``:
    homodimers are real biology, so they are kept by default and counted), and pairs listed twice
    (identical label: the duplicate is dropped; conflicting labels: error; ``keep_duplicates``:
    every row kept, for predictions that must match the input row by row). A pair and its swap
    are the same pair. Ids may be any name ``proteins`` resolves (e.g. a UniProt accession or its
    full ``sp|…|…`` token); pairs carry the FASTA's record ids. Compressed files are read as is.
    """
    path = Path(path)
    report = PairReport()
    seen: dict[frozenset[str], tuple[float | None, int]] = {}
    pairs: list[Pair] = []
    with open_text(path, "pairs file") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = _split(line, path, f"line {lineno}")
            if lineno == 1 and fields and _looks_like_header(fields, proteins):
                continue
            pair = _parse_line(fields, path, f"line {lineno}", proteins, require_labels)
            report.n_read += 1
            if not _keep_self_pair(pair, self_pairs, report, path, f"line {lineno}"):
                continue
            if not keep_duplicates and _seen_before(pair, seen, lineno, path):
                report.duplicates_dropped += 1
                continue
            pairs.append(pair)
    if not pairs:
        raise InputError(
            "no pairs found", path=path, fix="the file must list idA idB [label] per line"
        )
    return pairs, report


def _parse_line(
    fields: list[str],
    path: Path,
    record: str,
    proteins: Mapping[str, str] | None,
    require_labels: bool,
) -> Pair:
    """One validated pair from the columns of a line."""
    if len(fields) < 2 or len(fields) > 3:
        raise InputError(
            f"expected 2 or 3 columns (protein_a protein_b [label]), found {len(fields)}",
            path=path,
            record=record,
            fix="use tab-separated columns: idA, idB and optionally a 1/0 label",
        )
    a, b = (_resolve(proteins, pid, path, record) for pid in fields[:2])
    label = _parse_label(fields[2], path=path, record=record) if len(fields) == 3 else None
    if label is None and require_labels:
        raise InputError(
            "missing label", path=path, record=record, fix="add a third column with 1/0 labels"
        )
    return Pair(a, b, label)


def _resolve(proteins: Mapping[str, str] | None, pid: str, path: Path, record: str) -> str:
    """The FASTA record id that ``pid`` names (itself, or through the records' aliases)."""
    if proteins is None:
        return pid
    resolve = getattr(proteins, "resolve", None)
    found = resolve(pid) if resolve else (pid if pid in proteins else None)
    if found is None:
        raise InputError(
            f"protein {pid!r} is not in the FASTA file",
            path=path,
            record=record,
            fix="add its sequence to the FASTA or remove the pair",
        )
    return found


def _keep_self_pair(
    pair: Pair, policy: SelfPairPolicy, report: PairReport, path: Path, record: str
) -> bool:
    """False when ``pair`` is a self-pair to drop; counts self-pairs; errors under ``error``."""
    if pair.a != pair.b:
        return True
    report.self_pairs += 1
    if policy == "error":
        raise InputError(
            f"self-pair {pair.a}-{pair.a}",
            path=path,
            record=record,
            fix="remove it or set self_pairs: keep",
        )
    if policy == "drop":
        report.self_pairs_dropped += 1
        return False
    return True


def _seen_before(
    pair: Pair, seen: dict[frozenset[str], tuple[float | None, int]], lineno: int, path: Path
) -> bool:
    """True for a repeat (either orientation) with the same label; a conflicting label errors."""
    key = frozenset((pair.a, pair.b))
    if key not in seen:
        seen[key] = (pair.label, lineno)
        return False
    prev_label, prev_line = seen[key]
    if prev_label != pair.label:
        raise InputError(
            f"pair {pair.a}-{pair.b} has label {pair.label} here but {prev_label} at line "
            f"{prev_line}",
            path=path,
            record=f"line {lineno}",
            fix="keep one label per pair",
        )
    return True


def _looks_like_header(fields: list[str], proteins: Mapping[str, str] | None) -> bool:
    """A first line is a header when it names no known protein and has no valid label."""
    if proteins is not None and fields[0] in proteins:
        return False
    if len(fields) == 3:
        label = fields[2].strip().lower()
        return label not in _TRUE and label not in _FALSE
    return bool({f.lower() for f in fields} & _HEADER_WORDS)


_HEADER_WORDS = {"protein_a", "protein_b", "ida", "idb", "id_a", "id_b", "protein1", "protein2"}


def write_pairs(path: str | Path, rows: list[tuple], header: tuple[str, ...]) -> Path:
    """Write rows as a TSV with ``header``, atomically."""
    lines = ["\t".join(header)] + ["\t".join(str(v) for v in row) for row in rows]
    return write_text(path, "\n".join(lines) + "\n")
