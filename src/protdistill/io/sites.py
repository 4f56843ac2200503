"""Per-residue binding-site labels in the format of ``../shared/data/ppi/interface_sites``.

A site directory holds ``sequences.fasta``, ``labels.tsv`` (``id length n_interface labels``: the
labels a 0/1 string as long as the sequence) and ``splits.tsv`` (``id subset cluster30 split``,
split ``train`` or ``val``). Every record is checked against the others: a length, count or id
that disagrees raises :class:`~protdistill.errors.InputError` naming file, line and fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from protdistill.errors import InputError
from protdistill.io.fasta import read_fasta

LABEL_COLUMNS = ("id", "length", "n_interface", "labels")
SPLIT_COLUMNS = ("id", "subset", "cluster30", "split")
SPLITS = ("train", "val")


@dataclass(frozen=True)
class SiteChain:
    """One labelled chain: ``labels[i]`` is 1 when residue i binds a protein partner."""

    id: str
    seq: str
    labels: tuple[int, ...]
    subset: str = ""
    cluster: str = ""
    split: str = "train"

    @property
    def positives(self) -> int:
        return sum(self.labels)


def parse_label_line(line: str, path: Path | str, lineno: int) -> tuple[str, tuple[int, ...]]:
    """``id length n_interface labels`` -> (id, labels); lengths and counts must agree."""
    parts = line.rstrip("\n").split("\t")
    where = f"line {lineno}"
    if len(parts) != len(LABEL_COLUMNS):
        raise InputError(
            f"{len(parts)} columns, expected {len(LABEL_COLUMNS)}",
            path=path,
            record=where,
            fix="write tab-separated id, length, n_interface, labels",
        )
    pid, length, count, flags = parts
    if not pid:
        raise InputError("empty id", path=path, record=where, fix="name every chain")
    if not (length.isdigit() and count.isdigit()):
        raise InputError(
            f"length {length!r} / n_interface {count!r} are not integers",
            path=path,
            record=f"{where} ({pid})",
            fix="write non-negative integers",
        )
    if not flags or set(flags) - {"0", "1"}:
        raise InputError(
            "labels must be a non-empty string of 0 and 1",
            path=path,
            record=f"{where} ({pid})",
            fix="one 0/1 character per residue",
        )
    if len(flags) != int(length) or flags.count("1") != int(count):
        raise InputError(
            f"labels hold {len(flags)} residues / {flags.count('1')} positives, the row says "
            f"{length} / {count}",
            path=path,
            record=f"{where} ({pid})",
            fix="make length and n_interface agree with the label string",
        )
    return pid, tuple(int(c) for c in flags)


def read_labels(path: str | Path) -> dict[str, tuple[int, ...]]:
    """``labels.tsv`` -> {id: labels}; a header row is required, duplicate ids are refused."""
    path = Path(path)
    out: dict[str, tuple[int, ...]] = {}
    with open(path, encoding="utf-8") as fh:
        _check_header(fh.readline(), LABEL_COLUMNS, path)
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            pid, labels = parse_label_line(line, path, lineno)
            if pid in out:
                raise InputError(
                    f"duplicate id {pid!r}", path=path, record=f"line {lineno}", fix="one row each"
                )
            out[pid] = labels
    return out


def read_splits(path: str | Path) -> dict[str, tuple[str, str, str]]:
    """``splits.tsv`` -> {id: (subset, cluster30, split)}; split must be train or val."""
    path = Path(path)
    out: dict[str, tuple[str, str, str]] = {}
    with open(path, encoding="utf-8") as fh:
        _check_header(fh.readline(), SPLIT_COLUMNS, path)
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(SPLIT_COLUMNS) or parts[3] not in SPLITS or not parts[0]:
                raise InputError(
                    f"bad row {line.strip()[:80]!r}",
                    path=path,
                    record=f"line {lineno}",
                    fix="write id, subset, cluster30 and split (train or val), tab-separated",
                )
            if parts[0] in out:
                raise InputError(
                    f"duplicate id {parts[0]!r}",
                    path=path,
                    record=f"line {lineno}",
                    fix="one row per chain",
                )
            out[parts[0]] = (parts[1], parts[2], parts[3])
    return out


def read_sites(folder: str | Path) -> list[SiteChain]:
    """Every chain of a site directory, in FASTA order, labels and split checked against it."""
    folder = Path(folder)
    for name in ("sequences.fasta", "labels.tsv", "splits.tsv"):
        if not (folder / name).is_file():
            raise InputError(
                f"no {name}",
                path=folder,
                fix="pass a folder with sequences.fasta, labels.tsv and splits.tsv "
                "(the format of ../shared/data/ppi/interface_sites)",
            )
    seqs = read_fasta(folder / "sequences.fasta")
    labels = read_labels(folder / "labels.tsv")
    splits = read_splits(folder / "splits.tsv")
    chains = []
    for pid, seq in seqs.items():
        if pid not in labels or pid not in splits:
            missing = "labels.tsv" if pid not in labels else "splits.tsv"
            raise InputError(
                f"chain {pid!r} has no row", path=folder / missing, fix="label every FASTA chain"
            )
        if len(labels[pid]) != len(seq):
            raise InputError(
                f"{len(labels[pid])} labels for {len(seq)} residues",
                path=folder / "labels.tsv",
                record=pid,
                fix="one label per residue of sequences.fasta",
            )
        subset, cluster, split = splits[pid]
        chains.append(SiteChain(pid, seq, labels[pid], subset, cluster, split))
    extra = sorted(set(labels) - set(seqs))
    if extra:
        raise InputError(
            f"{len(extra)} labelled ids not in sequences.fasta (first {extra[0]!r})",
            path=folder / "labels.tsv",
            fix="drop rows for chains that are not in the FASTA",
        )
    return chains


def _check_header(line: str, columns: tuple[str, ...], path: Path) -> None:
    if tuple(line.rstrip("\n").split("\t")) != columns:
        raise InputError(
            f"header {line.strip()[:80]!r}",
            path=path,
            record="line 1",
            fix=f"start with the tab-separated header {' '.join(columns)}",
        )
