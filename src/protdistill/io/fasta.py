"""FASTA reading with validation: errors name the file, the record (and line) and the fix."""

from __future__ import annotations

import re
from pathlib import Path

from protdistill.alphabet import AMBIGUOUS, AMINO_ACIDS
from protdistill.errors import InputError
from protdistill.io.atomic import write_text
from protdistill.io.text import open_text

#: ``sp|P12345|NAME_HUMAN`` / ``tr|...``: the record's id is the accession, the token an alias.
_UNIPROT = re.compile(r"(?:sp|tr)\|([^|]+)\|\S+")


class FastaRecords(dict):
    """``{id: sequence}`` in file order; ``aliases`` maps other names of a record (the full
    UniProt token ``sp|P12345|NAME``) to its id. :meth:`resolve` accepts either."""

    def __init__(self) -> None:
        super().__init__()
        self.aliases: dict[str, str] = {}

    def add_alias(self, token: str, name: str, path: Path, lineno: int) -> None:
        if token == name:
            return
        if self.aliases.get(token, name) != name:
            raise InputError(
                f"{token!r} names two records", path=path, record=f"line {lineno}",
                fix="give each record its own id",
            )  # fmt: skip
        self.aliases[token] = name

    def resolve(self, name: str) -> str | None:
        """The record id ``name`` refers to (an id or an alias), or None."""
        return name if name in self else self.aliases.get(name)


_ALLOWED = set(AMINO_ACIDS)
_TO_X = set(AMBIGUOUS)


def clean_sequence(
    seq: str,
    *,
    path: str | Path | None = None,
    record: str | None = None,
    max_length: int | None = None,
) -> str:
    """Upper-case ``seq``, map U/O/B/Z/J/X to X, drop a trailing stop ``*``; reject the rest."""
    seq = "".join(seq.split()).upper().rstrip("*")
    if not seq:
        raise InputError(
            "empty sequence", path=path, record=record, fix="remove the record or add its residues"
        )
    bad = sorted({c for c in seq if c not in _ALLOWED and c not in _TO_X})
    if bad:
        pos = next(i for i, c in enumerate(seq) if c in bad) + 1
        raise InputError(
            f"unknown residue letter(s) {''.join(bad)!r} (first at position {pos})",
            path=path,
            record=record,
            fix="use the 20 standard amino acids (U, O, B, Z, J and X are read as X)",
        )
    if max_length is not None and len(seq) > max_length:
        raise InputError(
            f"sequence of {len(seq)} residues exceeds the limit of {max_length}",
            path=path,
            record=record,
            fix="raise the length limit in the config or remove the record",
        )
    return "".join("X" if c in _TO_X else c for c in seq)


def _first_bad_line(chunks: list[str], lines: list[int]) -> int | None:
    """Line number of the first sequence line holding a letter that is not a residue."""
    for chunk, lineno in zip(chunks, lines, strict=True):
        if any(c not in _ALLOWED and c not in _TO_X for c in chunk.upper().rstrip("*")):
            return lineno
    return None


def read_fasta(path: str | Path, *, max_length: int | None = None) -> FastaRecords:
    """Read ``{id: sequence}`` from a FASTA file, validating every record.

    The id is the first word of the header; for a UniProt header (``>sp|P12345|NAME_HUMAN …``) it
    is the accession, and the full token is an alias (see :class:`FastaRecords`). Gzip, bzip2
    and xz files are read as they are. A duplicated id is accepted only when the sequence is
    identical. Raises :class:`InputError` naming the file, the record and its header line.
    """
    path = Path(path)
    records = FastaRecords()
    header_line: dict[str, int] = {}
    name: str | None = None
    chunks: list[str] = []
    chunk_lines: list[int] = []
    start = 0

    def flush() -> None:
        if name is None:
            return
        where = f"{name} (line {_first_bad_line(chunks, chunk_lines) or start})"
        seq = clean_sequence("".join(chunks), path=path, record=where, max_length=max_length)
        if name in records and records[name] != seq:
            raise InputError(
                f"id appears twice with different sequences (first at line {header_line[name]})",
                path=path,
                record=where,
                fix="give each distinct sequence its own id",
            )
        records.setdefault(name, seq)
        header_line.setdefault(name, start)

    with open_text(path, "FASTA file") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line.startswith(";"):
                continue
            if line.startswith(">"):
                flush()
                name, chunks, chunk_lines, start = _header_id(line, path, lineno), [], [], lineno
                records.add_alias(line[1:].split()[0], name, path, lineno)
            elif name is None:
                raise InputError(
                    "sequence data before the first '>' header",
                    path=path,
                    record=f"line {lineno}",
                    fix="the file must be FASTA: '>ID' lines followed by residues",
                )
            else:
                chunks.append(line)
                chunk_lines.append(lineno)
    flush()
    if not records:
        raise InputError("no FASTA records found", path=path, fix="check that this is a FASTA file")
    return records


def _header_id(line: str, path: Path, lineno: int) -> str:
    """The id of a ``>ID description`` header line (its first word)."""
    words = line[1:].split()
    if not words:
        raise InputError(
            "header without an id",
            path=path,
            record=f"line {lineno}",
            fix="write '>ID description' on header lines",
        )
    uniprot = _UNIPROT.fullmatch(words[0])
    return uniprot.group(1) if uniprot else words[0]


def write_fasta(path: str | Path, records: dict[str, str], width: int = 60) -> Path:
    """Write ``{id: sequence}`` as FASTA, atomically."""
    lines = []
    for name, seq in records.items():
        lines.append(f">{name}")
        lines.extend(seq[i : i + width] for i in range(0, len(seq), width))
    return write_text(path, "\n".join(lines) + "\n")
