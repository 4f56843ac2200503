"""The notebook API: discoverable names, typed errors, numpy / pandas in and out, and the
quick-start example run end to end."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import protdistill
from protdistill.distill.checkpoint import save_model
from protdistill.errors import ConfigError, InputError
from protdistill.io.fasta import write_fasta
from protdistill.students import build_student

STUDENT = {"kind": "resnet1d", "embed_dim": 8, "channels": [8, 12], "hidden": 16}
SEQS = {"P1": "MKTAYIAKQR", "P2": "GSHMLEDPVA", "P3": "WWCCWWKLMN", "P4": "ACDEFGHIKL"}
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "quickstart.py"


@pytest.fixture
def model_path(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "student.safetensors"
    meta = {"student": STUDENT, "ppi": {"max_residues": 40}}
    save_model(path, build_student(STUDENT).eval(), meta)
    return path


@pytest.fixture
def fasta(tmp_path):
    path = tmp_path / "proteins.fasta"
    write_fasta(path, SEQS)
    return path


def test_dir_lists_the_public_names_and_import_stays_light() -> None:
    names = [n for n in dir(protdistill) if not n.startswith("_")]
    assert {"load", "PairModel", "run_ppi", "compress_model", "InputError"} <= set(names)
    assert set(names) == set(protdistill.__all__) - {"__version__"}
    for name in protdistill.__all__:
        assert getattr(protdistill, name) is not None
    code = "import sys, protdistill; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        protdistill.nope  # noqa: B018


def test_predict_tuples_give_numpy_in_order(model_path, fasta) -> None:
    model = protdistill.load(model_path)
    pairs = [("P1", "P2"), ("P3", "P4"), ("P2", "P1")]
    probs = model.predict(pairs, fasta)
    assert isinstance(probs, np.ndarray) and probs.shape == (3,) and probs.dtype == np.float32
    assert ((probs > 0) & (probs < 1)).all()
    one = [model.predict([p], SEQS)[0] for p in pairs]  # mapping or FASTA: same numbers
    np.testing.assert_allclose(probs, one, atol=1e-6)


def test_predict_frame_gives_a_series_on_its_index(model_path, fasta) -> None:
    model = protdistill.load(model_path)
    frame = pd.DataFrame(
        {"label": [1, 0, 1], "protein_b": ["P2", "P4", "P1"], "protein_a": ["P1", "P3", "P2"]},
        index=["x", "y", "z"],
    )
    series = model.predict(frame, fasta)
    assert isinstance(series, pd.Series) and list(series.index) == ["x", "y", "z"]
    assert series.name == "probability"
    expected = model.predict([("P1", "P2"), ("P3", "P4"), ("P2", "P1")], fasta)
    np.testing.assert_allclose(series.to_numpy(), expected, atol=1e-6)
    untitled = pd.DataFrame([["P3", "P4", 9]], index=[7])  # no names: the first two columns
    assert model.predict(untitled, SEQS).loc[7] == pytest.approx(expected[1], abs=1e-6)


def test_unknown_id_is_a_typed_error_naming_it(model_path, fasta) -> None:
    model = protdistill.load(model_path)
    with pytest.raises(InputError) as err:
        model.predict([("P1", "P2"), ("P1", "zz")], fasta)
    text = str(err.value)
    assert "'zz'" in text and str(fasta) in text and "pair 2" in text and "fix:" in text
    with pytest.raises(InputError, match="'zz' is not in the sequences given"):
        model.predict(pd.DataFrame({"protein_a": ["zz"], "protein_b": ["P1"]}), SEQS)


@pytest.mark.parametrize(
    ("pairs", "match"),
    [("P1P2", "not str"), ([("P1", "P2", "P3")], "pair 1"), ([42], "not a pair"),
     (pd.DataFrame({"only": ["P1"]}), "two id columns")],
)  # fmt: skip
def test_malformed_pairs_are_input_errors(model_path, pairs, match) -> None:
    with pytest.raises(InputError, match=match):
        protdistill.load(model_path).predict(pairs, SEQS)


def test_screen_summary_or_frame(model_path, fasta, tmp_path) -> None:
    model = protdistill.load(model_path)
    summary = model.screen(fasta, tmp_path / "a.tsv.gz", top_k=2)
    assert isinstance(summary, dict) and summary["pairs_total"] == 6
    hits = model.screen(fasta, tmp_path / "b.parquet", top_k=0, threshold=0.0, as_frame=True)
    assert isinstance(hits, pd.DataFrame) and len(hits) == 6
    expected = model.predict(list(zip(hits.protein_a, hits.protein_b, strict=True)), SEQS)
    np.testing.assert_allclose(hits.probability.to_numpy(), expected, atol=1e-5)
    with pytest.raises(ConfigError, match="top_kk"):
        model.screen(fasta, tmp_path / "c.tsv.gz", top_kk=3)
    model.screen(fasta, tmp_path / "d.tsv.gz", top_k=0, threshold=0.0)
    for name in ("b.parquet", "d.tsv.gz"):  # in pieces, for proteomes too big for memory
        pieces = list(protdistill.iter_hits(tmp_path / name, rows=4))
        assert [len(p) for p in pieces] == [4, 2]
        whole = pd.concat(pieces, ignore_index=True)  # the TSV rounds to 4-6 digits
        pd.testing.assert_frame_equal(whole, hits, check_exact=False, atol=1e-4)


def test_run_ppi_refuses_an_unknown_option(tmp_path) -> None:
    with pytest.raises(ConfigError, match="epochz"):
        protdistill.run_ppi(tmp_path / "run", epochz=2)


def test_quickstart_example_trains_predicts_screens_and_plots(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = example.main(tmp_path)
    assert 0.0 <= out["metrics"]["student"]["auroc"] <= 1.0
    table = out["table"]
    assert table["probability"].between(0, 1).all() and len(table) == 60
    assert len(out["hits"]) > 0 and set(out["hits"].protein_a) <= {f"P{i}" for i in range(24)}
    assert out["figure"].stat().st_size > 1000 and (tmp_path / "run" / "metrics.json").exists()
