"""benchmarks/truncation.py on a tiny teacher: a cut at or beyond a protein's length is the whole
protein (cosine 1), a shorter cut is not, and the report says how many proteins were cut."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "truncation.py"


def test_truncation_ceiling_on_a_tiny_teacher(tmp_path, monkeypatch, tiny_teacher_dir) -> None:
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ" * 3, "GSHMLEDPV" * 4, "MSTNPKPQRKTKRNTNRRPQDVKFPGG"]
    fasta = tmp_path / "p.fasta"
    fasta.write_text("".join(f">p{i}\n{s}\n" for i, s in enumerate(seqs)))
    out = tmp_path / "trunc.json"
    main = runpy.run_path(str(BENCHMARK), run_name="truncation_benchmark")["main"]
    argv = ["truncation.py", "--teacher", tiny_teacher_dir, "--fasta", str(fasta),
            "--lengths", "10", "200", "--threads", "1", "--out", str(out)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    main()
    report = json.loads(out.read_text())
    assert report["n_proteins"] == 3
    whole, cut = report["first_n"]["200"], report["first_n"]["10"]
    assert whole["cosine_all"] == pytest.approx(1.0, abs=1e-5)
    assert whole["fraction_longer"] == 0 and whole["cosine_longer"] is None
    assert cut["fraction_longer"] == 1 and cut["cosine_all"] < 0.99
