"""Inputs built to exhaust memory or time are refused within set limits, with one line saying
which limit and how to raise it: YAML alias and merge-key bombs, a 10^8-character line,
gzip / bzip2 / xz bombs."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest

from protdistill.config import Config, read_yaml, resolve
from protdistill.errors import ConfigError, InputError
from protdistill.io.fasta import read_fasta
from protdistill.io.pairs import read_pairs
from protdistill.io.peptides import read_peptides


class _Cfg(Config):
    lr: float = 0.1


def _laughs(levels: int) -> str:
    """The "billion laughs": each level a list of ten aliases of the one before."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def _merges(levels: int) -> str:
    """Merge keys that double at every level (PyYAML copies each merged mapping)."""
    lines = ["m0: &m0 {x: 1}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], y{i}: 1}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (_laughs(9), ["expands to more than 100,000 values", "aliases"]),  # 10^9 values
        (_merges(40), ["expands to more than 100,000 values"]),  # 2^40 merged keys
        ("a: &a [*a]\n", ["expands to more than"]),  # a list holding itself
        ("a: " + "[" * 20_000 + "]" * 20_000 + "\n", ["invalid YAML"]),  # nesting
        ("when: 2001-02-30\n", ["invalid YAML", "day is out of range"]),
        ("x: \xff\n", ["invalid YAML"]),
    ],
    ids=["billion-laughs", "merge-keys", "recursive", "deep", "bad-date", "not-utf8"],
)
def test_yaml_bombs_and_oddities_are_one_line_config_errors(tmp_path, text, words) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
    with pytest.raises(ConfigError) as err:
        resolve(_Cfg, path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "fix:" in message, message
    for word in words:
        assert word in message, message


def test_a_config_with_a_few_aliases_still_reads(tmp_path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {lr: 0.5}\nrun: {<<: *b, epochs: 2}\nalso: *b\n")
    assert read_yaml(path) == {"base": {"lr": 0.5}, "run": {"lr": 0.5, "epochs": 2},
                               "also": {"lr": 0.5}}  # fmt: skip


def test_an_oversized_config_file_is_refused_unread(tmp_path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:
        fh.write(b"lr: 0.1\n")
        fh.truncate(2 << 20)  # sparse: 2 MiB without writing it
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        read_yaml(path)


def _long_line(path: Path, prefix: bytes, n: int = 10**8) -> Path:
    """A file whose second line is ``n`` characters (NUL bytes of a sparse file)."""
    with path.open("wb") as fh:
        fh.write(prefix)
        fh.seek(len(prefix) + n)
        fh.write(b"\n")
    return path


@pytest.mark.parametrize(
    ("read", "prefix"),
    [
        (lambda p: read_fasta(p), b">P1\n"),
        (lambda p: read_pairs(p), b"P1\tP2\t1\n"),
        (lambda p: read_peptides(p), b"id,type,sequence\n"),
    ],
    ids=["fasta", "pairs", "peptides"],
)
def test_a_hundred_million_character_line_is_refused(tmp_path, read, prefix) -> None:
    path = _long_line(tmp_path / "long.txt", prefix)
    with pytest.raises(InputError) as err:
        read(path)
    message = str(err.value)
    assert "line 2" in message and "longer than 10,000,000" in message, message
    assert "PROTDISTILL_MAX_LINE" in message, message


def test_the_line_limit_can_be_raised(tmp_path, monkeypatch) -> None:
    path = tmp_path / "p.fasta"
    path.write_text(">P1\n" + "A" * 5000 + "\n")
    monkeypatch.setenv("PROTDISTILL_MAX_LINE", "1000")
    with pytest.raises(InputError, match="longer than 1,000 characters"):
        read_fasta(path)
    monkeypatch.setenv("PROTDISTILL_MAX_LINE", "5000")  # the newline does not count
    assert len(read_fasta(path)["P1"]) == 5000


_PACK = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}


def _bomb(kind: str, mib: int, line_mib: int = 4) -> bytes:
    """``mib`` MiB of FASTA residues in lines of ``line_mib`` MiB, compressed by ``kind``: one
    compressed line repeated (gzip, bzip2 and xz all read concatenated streams)."""
    line = _PACK[kind](b"A" * ((line_mib << 20) - 1) + b"\n")
    return _PACK[kind](b">P1\n") + line * (mib // line_mib)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
def test_a_compression_bomb_is_refused_at_the_default_cap(tmp_path, kind) -> None:
    path = tmp_path / "bomb.fasta.gz"
    path.write_bytes(_bomb(kind, 128))  # 128 MiB of residues in well under 1 MiB
    assert path.stat().st_size < 1 << 20
    with pytest.raises(InputError) as err:
        read_fasta(path)
    message = str(err.value)
    assert "decompresses to more than 64 MiB" in message, message
    assert "PROTDISTILL_MAX_DECOMPRESSED_MB" in message and str(path) in message, message


def test_the_decompressed_cap_can_be_raised(tmp_path, monkeypatch) -> None:
    path = tmp_path / "big.fasta.xz"
    path.write_bytes(_bomb("xz", 2, line_mib=1))
    monkeypatch.setenv("PROTDISTILL_MAX_DECOMPRESSED_MB", "1")
    with pytest.raises(InputError, match="more than 1 MiB"):
        read_fasta(path)
    monkeypatch.setenv("PROTDISTILL_MAX_DECOMPRESSED_MB", "3")
    assert read_fasta(path)["P1"] == "A" * 2 * ((1 << 20) - 1)
