"""Typed peptide sets: CSV (``type`` + ``sequence`` columns) or FASTA (``>id type=amp``)."""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from protdistill.errors import InputError
from protdistill.io.atomic import write_text
from protdistill.io.fasta import clean_sequence
from protdistill.io.text import open_text


@dataclass(frozen=True)
class Peptide:
    """One typed peptide; ``source`` says where it was read (``file:line``)."""

    sequence: str
    type: str
    id: str = ""
    source: str = ""


@dataclass
class PeptideReport:
    """What reading changed: rows read, duplicates and over-long peptides dropped."""

    n_read: int = 0
    duplicates_dropped: int = 0
    too_long_dropped: int = 0
    other_types_dropped: int = 0
    notes: list[str] = field(default_factory=list)


def _fasta_type(header: str) -> str | None:
    """``>id type=amp ...`` or ``>id|amp``: the type, or None."""
    words = header.split()
    if not words:  # a bare '>' line
        return None
    for w in words[1:]:
        if w.lower().startswith("type="):
            return w.split("=", 1)[1]
    if "|" in words[0]:
        return words[0].rsplit("|", 1)[1]
    return None


def _read_fasta_rows(path: Path) -> list[tuple[str, str, str, int]]:
    rows: list[tuple[str, str, str, int]] = []
    header, chunks, start = None, [], 0
    with open_text(path, "peptide file") as handle:
        lines = list(enumerate(handle, 1))
    for lineno, raw in [*lines, (len(lines) + 1, ">")]:
        line = raw.strip()
        if not line:
            continue
        if line.startswith(">"):
            if header is not None:
                kind = _fasta_type(header)
                if kind is None:
                    raise InputError(
                        "FASTA header has no peptide type",
                        path=path,
                        record=f"{(header.split() or ['(empty header)'])[0]} (line {start})",
                        fix="write headers as '>ID type=amp' or '>ID|amp'",
                    )
                rows.append((header.split()[0].split("|")[0], kind, "".join(chunks), start))
            header, chunks, start = line[1:], [], lineno
        elif header is None:
            raise InputError(
                "sequence data before the first '>' header",
                path=path,
                record=f"line {lineno}",
                fix="the file must be FASTA: '>ID type=amp' lines followed by residues",
            )
        else:
            chunks.append(line)
    return rows


def _read_csv_rows(
    path: Path, type_column: str, sequence_column: str
) -> list[tuple[str, str, str, int]]:
    with open_text(path, "peptide file") as handle:
        lines = iter(handle)
        first = next(lines, "")
        delimiter = "\t" if "\t" in first else ","
        reader = csv.DictReader(itertools.chain([first], lines), delimiter=delimiter)
        try:
            columns = reader.fieldnames or []
            for needed in (type_column, sequence_column):
                if needed not in columns:
                    raise InputError(
                        f"column {needed!r} not found (columns: {', '.join(columns)})"[:300],
                        path=path,
                        record="line 1 (header)",
                        fix="set type_column / sequence_column in the config to the file's names",
                    )
            return [
                (row.get("id") or f"row{i}", row[type_column] or "", row[sequence_column] or "",
                 reader.line_num)
                for i, row in enumerate(reader, 1)
            ]  # fmt: skip
        except csv.Error as exc:
            raise InputError(
                f"not a readable CSV ({exc})", path=path, record=f"line {reader.line_num}",
                fix="write one peptide per row with the type and sequence columns",
            ) from exc  # fmt: skip


def read_peptides(
    path: str | Path,
    *,
    types: list[str] | None = None,
    max_length: int | None = 50,
    type_column: str = "type",
    sequence_column: str = "sequence",
    deduplicate: bool = True,
) -> tuple[list[Peptide], PeptideReport]:
    """Read typed peptides from CSV/TSV or FASTA, de-duplicated on ``(type, sequence)``.

    ``deduplicate=False`` keeps repeats (generated samples). Peptides longer than
    ``max_length`` are dropped (counted in the report), as are types not in ``types``
    (None keeps all). Invalid residues raise :class:`InputError` naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("peptide file not found", path=path, fix="check the --data path")
    with open_text(path, "peptide file") as handle:
        is_fasta = next((line for line in handle if line.strip()), "").lstrip().startswith(">")
    rows = (
        _read_fasta_rows(path) if is_fasta else _read_csv_rows(path, type_column, sequence_column)
    )
    report = PeptideReport(n_read=len(rows))
    wanted = None if types is None else {t.lower() for t in types}
    seen: set[tuple[str, str]] = set()
    out: list[Peptide] = []
    for pid, kind, raw_seq, line in rows:
        record = f"{pid} (line {line})"
        kind = kind.strip().lower()
        if not kind:
            raise InputError("empty peptide type", path=path, record=record, fix="fill the type")
        if wanted is not None and kind not in wanted:
            report.other_types_dropped += 1
            continue
        seq = clean_sequence(raw_seq, path=path, record=record)
        if max_length is not None and len(seq) > max_length:
            report.too_long_dropped += 1
            continue
        if deduplicate and (kind, seq) in seen:
            report.duplicates_dropped += 1
            continue
        seen.add((kind, seq))
        out.append(Peptide(seq, kind, pid, f"{path.name}:{line}"))
    if not out:
        raise InputError(
            "no peptides left after filtering",
            path=path,
            fix=f"check types={types} and max_length={max_length}",
        )
    if wanted is not None and (absent := wanted - {p.type for p in out}):
        report.notes.append(f"types not found: {', '.join(sorted(absent))}")
    return out, report


def write_peptide_fasta(path: str | Path, peptides: list[Peptide]) -> Path:
    """Write peptides as FASTA with ``>id type=T`` headers (atomic)."""
    lines = [f">{p.id or f'pep{i}'} type={p.type}\n{p.sequence}" for i, p in enumerate(peptides)]
    return write_text(path, "\n".join(lines) + "\n")
