"""Packaged benchmarks: present, readable, licensed, and identical to ../shared where it exists."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from protdistill.datasets import dataset_files
from protdistill.errors import ConfigError
from protdistill.io.fasta import read_fasta
from protdistill.io.pairs import read_pairs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ppi" / "guo_yeast"


def test_guo_yeast_ships_with_its_licence_and_reads_back() -> None:
    pairs, fasta = dataset_files("guo-yeast")
    assert (pairs.parent / "LICENSE").read_text().startswith(" " * 33 + "Apache License")
    assert "doi:10.1093/nar/gkn159" in (pairs.parent / "README.md").read_text()
    seqs = read_fasta(fasta)
    rows, report = read_pairs(pairs, proteins=seqs)
    assert len(seqs) == 2497 and report.n_read == 11188
    assert report.duplicates_dropped == 24 and len(rows) == 11188 - 24


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/ppi/guo_yeast is not here")
def test_packaged_guo_yeast_is_the_shared_benchmark_unchanged() -> None:
    pairs, fasta = dataset_files("guo-yeast")
    assert gzip.decompress(pairs.read_bytes()) == (SHARED / "pairs.tsv").read_bytes()
    assert gzip.decompress(fasta.read_bytes()) == (SHARED / "sequences.fasta").read_bytes()


def test_unknown_dataset_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="guo-yeast"):
        dataset_files("guo")
