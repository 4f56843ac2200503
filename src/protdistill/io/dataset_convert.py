"""Downloaded benchmark files -> the project's layout: pair tables (``idA idB label``, labels
1/0) and ``sequences.fasta`` (one line per sequence, the proteins the pairs name, sorted by id).

Each converter reads the raw files of one dataset from ``raw`` and writes into ``out``; it
returns notes for the README (e.g. pairs dropped because the source FASTA lacks a protein)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from protdistill.errors import InputError

Row = tuple[str, str, int]
HEADER = "protein_a\tprotein_b\tlabel"
#: Bernett et al.'s split files: Intra1 = train, Intra0 = validation, Intra2 = test.
BERNETT_SPLITS = (("train", "Intra1"), ("val", "Intra0"), ("test", "Intra2"))
DSCRIPT_SPECIES = ("human", "mouse", "fly", "worm", "yeast", "ecoli")


def parse_label(text: str, *, path: str | Path = "", record: str = "") -> int:
    """A 0/1 label written as ``1``, ``0``, ``1.0``, ``0.0`` (D-SCRIPT uses both)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value not in (0.0, 1.0):
        raise InputError(
            f"label {text!r} is not 0 or 1",
            path=path or None,
            record=record or None,
            fix="the source changed: report it",
        )
    return int(value)


def label_from_filename(name: str) -> int:
    """Bernett's files carry no label column: ``*_pos_*`` holds positives, ``*_neg_*`` negatives."""
    tokens = set(re.split(r"[_.\-]", Path(name).name.lower()))
    if ("pos" in tokens) == ("neg" in tokens):
        raise InputError(
            "cannot tell positives from negatives by the file name",
            path=name,
            fix="name the file *_pos_* or *_neg_*",
        )
    return 1 if "pos" in tokens else 0


def read_pair_rows(path: Path, label: int | None = None) -> list[Row]:
    """``(a, b, label)`` per line of a tab- or space-separated file; ``label`` given for files
    without a label column (Bernett), else the third column is parsed."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != (2 if label is not None else 3):
                raise InputError(
                    f"expected {2 if label is not None else 3} columns, found {len(fields)}",
                    path=path,
                    record=f"line {lineno}",
                    fix="the source changed: report it",
                )
            lab = (
                label
                if label is not None
                else parse_label(fields[2], path=path, record=f"line {lineno}")
            )
            rows.append((fields[0], fields[1], lab))
    return rows


def _record_id(header: str) -> str:
    """The first word of a ``>`` line; of a UniProt ``sp|P12345|NAME`` token, the accession."""
    word = header[1:].split()[0] if header[1:].strip() else ""
    uniprot = re.fullmatch(r"(?:sp|tr)\|([^|]+)\|\S+", word)
    return uniprot.group(1) if uniprot else word


def read_fasta_raw(path: Path) -> dict[str, str]:
    """``{record id: sequence}`` (see :func:`_record_id`), residues unchanged (``ppi`` validates
    them when it reads the converted file)."""
    seqs: dict[str, str] = {}
    name, chunks = None, []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    seqs[name] = "".join(chunks)
                name, chunks = _record_id(line), []
            elif line and name is not None:
                chunks.append(line)
    if name is not None:
        seqs[name] = "".join(chunks)
    return seqs


def _known(rows: list[Row], seqs: dict[str, str], where: str, notes: list[str]) -> list[Row]:
    """``rows`` whose proteins both have a sequence; the others are dropped and noted."""
    kept = [r for r in rows if r[0] in seqs and r[1] in seqs]
    if len(kept) < len(rows):
        missing = sorted({p for r in rows for p in r[:2] if p not in seqs})
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        notes.append(
            f"{where}: dropped {len(rows) - len(kept)} of {len(rows)} pairs naming "
            f"{len(missing)} protein(s) absent from the source FASTA: {shown}"
        )
    return kept


def write_rows(path: Path, rows: Iterable[Row], *, header: bool = True) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER] if header else []
    lines += [f"{a}\t{b}\t{label}" for a, b, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - header


def write_sequences(path: Path, seqs: dict[str, str], rows: Iterable[Row]) -> int:
    """``sequences.fasta`` with the proteins ``rows`` name, sorted by id, one line each."""
    ids = sorted({p for r in rows for p in r[:2]})
    path.write_text("".join(f">{i}\n{seqs[i]}\n" for i in ids), encoding="utf-8")
    return len(ids)


def convert_bernett(raw: Path, out: Path) -> list[str]:
    """``train.tsv``, ``val.tsv``, ``test.tsv`` (positives then negatives) + ``sequences.fasta``."""
    seqs = read_fasta_raw(raw / "human_swissprot_oneliner.fasta")
    notes: list[str] = []
    kept: list[Row] = []
    for split, prefix in BERNETT_SPLITS:
        rows: list[Row] = []
        for kind in ("pos", "neg"):
            name = raw / f"{prefix}_{kind}_rr.txt"
            rows += read_pair_rows(name, label_from_filename(name.name))
        rows = _known(rows, seqs, f"{split}.tsv", notes)
        write_rows(out / f"{split}.tsv", rows)
        kept += rows
    write_sequences(out / "sequences.fasta", seqs, kept)
    return notes


def convert_dscript(raw: Path, out: Path) -> list[str]:
    """One folder per species: ``test.tsv`` (+ ``train.tsv`` for human) + ``sequences.fasta``."""
    notes: list[str] = []
    for species in DSCRIPT_SPECIES:
        seqs = read_fasta_raw(raw / f"{species}.fasta")
        kept: list[Row] = []
        for split in ("train", "test"):
            src = raw / f"{species}_{split}.tsv"
            if src.exists():
                rows = _known(read_pair_rows(src), seqs, f"{species}/{split}.tsv", notes)
                write_rows(out / species / f"{split}.tsv", rows)
                kept += rows
        write_sequences(out / species / "sequences.fasta", seqs, kept)
    return notes


def convert_guo_yeast(raw: Path, out: Path) -> list[str]:
    """``pairs.tsv`` (no header, as the source) + ``sequences.fasta`` from the id->sequence TSV."""
    seqs = {}
    with (raw / "protein.dictionary.tsv").open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            fields = line.split()
            if len(fields) not in (0, 2):
                raise InputError(
                    f"expected 2 columns (id, sequence), found {len(fields)}",
                    path=fh.name,
                    record=f"line {lineno}",
                    fix="the source changed: report it",
                )
            if fields:
                seqs[fields[0]] = fields[1]
    notes: list[str] = []
    rows = _known(read_pair_rows(raw / "protein.actions.tsv"), seqs, "pairs.tsv", notes)
    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / "pairs.tsv", rows, header=False)
    write_sequences(out / "sequences.fasta", seqs, rows)
    return notes


#: dataset name -> converter; a dataset without one is delivered as downloaded.
CONVERTERS: dict[str, Callable[[Path, Path], list[str]]] = {
    "bernett": convert_bernett,
    "dscript": convert_dscript,
    "guo-yeast": convert_guo_yeast,
}
