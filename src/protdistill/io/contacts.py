"""Solved complexes with their inter-chain residue contacts (e.g. the DIPS interface set).

Three files describe a set: a FASTA with one record per chain, a pairs file naming the two chains
of each complex (``a b [label …]``), and a contacts TSV ``a b i j [min_dist]`` with 0-based residue
indices into the FASTA sequences. An optional complexes TSV (``a``, ``b``, ``pdb``, ``seq_ident``
columns) gives the PDB entry of each complex (for cross-validation over PDB ids) and the sequence
identity of its chains (homodimers are reported apart from heterodimers).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch

from protdistill.errors import InputError
from protdistill.io.fasta import read_fasta
from protdistill.io.text import open_text

#: Chains at least this identical form a homodimer (as in the DIPS set's README).
HOMODIMER_IDENTITY = 0.9


@dataclass
class Complex:
    """Two chains and their contacts: ``contacts`` is ``(K, 2)`` long, rows ``(i in a, j in b)``."""

    name: str
    a: str
    b: str
    seq_a: str
    seq_b: str
    contacts: torch.Tensor
    pdb: str
    seq_ident: float | None = None

    @property
    def homodimer(self) -> bool:
        if self.seq_ident is not None:
            return self.seq_ident >= HOMODIMER_IDENTITY
        return self.seq_a == self.seq_b

    def contact_matrix(self) -> torch.Tensor:
        """``(La, Lb)`` bool, True where the residues touch."""
        out = torch.zeros(len(self.seq_a), len(self.seq_b), dtype=torch.bool)
        out[self.contacts[:, 0], self.contacts[:, 1]] = True
        return out


def read_complexes(
    fasta: str | Path,
    pairs: str | Path,
    contacts: str | Path,
    complexes: str | Path | None = None,
) -> list[Complex]:
    """Complexes in the order of ``pairs``; every contact index is checked against its chain."""
    sequences = read_fasta(fasta)
    listed = _read_chain_pairs(pairs, sequences)
    info = _complex_info(complexes) if complexes else {}
    by_pair = _read_contacts(contacts, sequences)
    out = []
    for a, b in listed:
        found = by_pair.get((a, b))
        if not found:
            raise InputError(
                f"complex {a} / {b} has no contacts",
                path=contacts,
                fix="list every complex's residue contacts (a b i j) or drop it from the pairs",
            )
        pdb, ident = info.get((a, b), (_pdb_guess(a), None))
        out.append(
            Complex(
                name=f"{a}|{b}",
                a=a,
                b=b,
                seq_a=sequences[a],
                seq_b=sequences[b],
                contacts=torch.tensor(sorted(set(found)), dtype=torch.long),
                pdb=pdb,
                seq_ident=ident,
            )
        )
    return out


def _read_chain_pairs(path: str | Path, sequences: dict[str, str]) -> list[tuple[str, str]]:
    """``(a, b)`` from the first two columns of each line (a header ``a b …`` is skipped)."""
    out = []
    with open_text(path, "pairs file") as handle:
        for lineno, raw in enumerate(handle, 1):
            fields = raw.replace(",", " ").split()
            if (
                not fields
                or fields[0].startswith("#")
                or (lineno == 1 and fields[:2] == ["a", "b"])
            ):
                continue
            for chain in fields[:2]:
                if chain not in sequences:
                    raise InputError(
                        f"chain {chain!r} is not in the FASTA", path=path, record=f"line {lineno}",
                        fix="name both chains of a complex by their FASTA record ids",
                    )  # fmt: skip
            if len(fields) < 2:
                raise InputError(
                    "expected two chain ids", path=path, record=f"line {lineno}",
                    fix="one complex per line: chain_a chain_b",
                )  # fmt: skip
            out.append((fields[0], fields[1]))
    if not out:
        raise InputError("no complexes listed", path=path, fix="one complex per line: a b")
    return out


def _read_contacts(path: str | Path, sequences: dict[str, str]) -> dict:
    """``{(a, b): [(i, j), …]}`` from ``a b i j [min_dist]`` rows, indices range-checked."""
    by_pair: dict[tuple[str, str], list[tuple[int, int]]] = {}
    with open_text(path, "contacts file") as handle:
        for lineno, raw in enumerate(handle, 1):
            fields = raw.split()
            if (
                not fields
                or fields[0].startswith("#")
                or (lineno == 1 and fields[:2] == ["a", "b"])
            ):
                continue
            record = f"line {lineno}"
            if len(fields) < 4:
                raise InputError(
                    f"expected 'a b i j [min_dist]', found {len(fields)} columns",
                    path=path, record=record,
                    fix="one contact per line: chain ids and 0-based indices",
                )  # fmt: skip
            a, b = fields[0], fields[1]
            for chain in (a, b):
                if chain not in sequences:
                    raise InputError(
                        f"chain {chain!r} is not in the FASTA", path=path, record=record,
                        fix="use the FASTA record ids of both chains",
                    )  # fmt: skip
            i, j = (
                _index(fields[2], sequences[a], path, record),
                _index(fields[3], sequences[b], path, record),
            )
            by_pair.setdefault((a, b), []).append((i, j))
    return by_pair


def _index(text: str, seq: str, path: str | Path, record: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < len(seq):
        raise InputError(
            f"residue index {text!r} is not in 0..{len(seq) - 1}",
            path=path, record=record, fix="indices are 0-based positions in the FASTA sequence",
        )  # fmt: skip
    return value


def _complex_info(path: str | Path) -> dict[tuple[str, str], tuple[str, float | None]]:
    """``{(a, b): (pdb, seq_ident)}`` from a complexes TSV with a header."""
    with open_text(path, "complexes file") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        try:
            rows = [(reader.line_num, row) for row in reader]
        except csv.Error as exc:
            raise InputError(
                f"unreadable row ({exc})", path=path, record=f"line {reader.line_num}",
                fix="write tab-separated columns a, b, pdb, seq_ident",
            ) from exc  # fmt: skip
    if not rows or not {"a", "b"} <= set(rows[0][1]):
        raise InputError(
            "complexes file needs a header with columns a, b (and pdb, seq_ident)",
            path=path, fix="use the complexes.tsv layout of the DIPS interface set",
        )  # fmt: skip
    return dict(_complex_row(row, path, f"line {line}") for line, row in rows)


def _complex_row(row: dict, path: str | Path, record: str) -> tuple:
    """``((a, b), (pdb, seq_ident))`` of one complexes row, checked."""
    if row["a"] is None or row["b"] is None:
        raise InputError("row has fewer columns than the header", path=path, record=record,
                         fix="fill the a and b columns of every row")  # fmt: skip
    ident = row.get("seq_ident")
    try:
        value = float(ident) if ident not in (None, "") else None
    except ValueError:
        value = float("nan")
    if value is not None and not 0 <= value <= 1:
        raise InputError(
            f"seq_ident {ident!r} is not a number in 0..1", path=path, record=record,
            fix="write the chains' sequence identity as a fraction, or leave it empty",
        )  # fmt: skip
    return (row["a"], row["b"]), (row.get("pdb") or _pdb_guess(row["a"]), value)


def _pdb_guess(chain: str) -> str:
    """``dips_1a95.pdb1_3_l`` -> ``1A95``; other names are their own group."""
    stem = chain.split("_", 1)[-1] if chain.startswith("dips_") else chain
    return stem.split(".", 1)[0].upper()
