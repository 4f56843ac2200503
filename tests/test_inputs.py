"""The inputs people actually have: compressed files, UniProt headers, quoted CSV; `ppi predict`
keeps one row per input row; outputs a user already has are never replaced."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from protdistill.cli.main import app
from protdistill.distill.checkpoint import save_model
from protdistill.errors import InputError
from protdistill.io.fasta import read_fasta
from protdistill.io.pairs import read_pairs
from protdistill.students import build_student

FASTA = (
    ">sp|P12345|AAA_HUMAN first protein\nMKTAYIAKQR\n>tr|Q99999|BBB_HUMAN\nACDEFGHIKL\n"
    ">P3\nMMMMKK\n"
)
OPENERS = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_compressed_fasta_and_pairs_read_as_plain(tmp_path, kind) -> None:
    fasta = tmp_path / f"p.fasta.{kind}"
    with OPENERS[kind](fasta, "wt") as fh:
        fh.write(FASTA)
    pairs = tmp_path / "pairs.bin"  # named without a suffix: detected by content
    with OPENERS[kind](pairs, "wt") as fh:
        fh.write("P12345\tQ99999\t1\nP3\tP12345\t0\n")
    records = read_fasta(fasta)
    assert dict(records) == {"P12345": "MKTAYIAKQR", "Q99999": "ACDEFGHIKL", "P3": "MMMMKK"}
    got, _ = read_pairs(pairs, proteins=records)
    assert [(p.a, p.b, p.label) for p in got] == [("P12345", "Q99999", 1.0), ("P3", "P12345", 0.0)]


def test_uniprot_token_and_accession_both_name_the_record(tmp_path) -> None:
    fasta = tmp_path / "u.fasta"
    fasta.write_text(FASTA)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("sp|P12345|AAA_HUMAN\tQ99999\t1\nP12345\ttr|Q99999|BBB_HUMAN\t1\n")
    records = read_fasta(fasta)
    assert list(records) == ["P12345", "Q99999", "P3"]  # iteration: one id per record
    got, report = read_pairs(pairs, proteins=records)
    assert [(p.a, p.b) for p in got] == [("P12345", "Q99999")]  # the same pair, listed twice
    assert report.duplicates_dropped == 1
    with pytest.raises(InputError, match="'sp\\|P99|X' is not in the FASTA"):
        pairs.write_text("sp|P99|X\tP3\t1\n")
        read_pairs(pairs, proteins=records)


def test_a_token_naming_two_records_is_an_error(tmp_path) -> None:
    fasta = tmp_path / "amb.fasta"
    fasta.write_text(">sp|P1|SAME\nMKT\n>sp|P1|SAME\nMKA\n")
    with pytest.raises(InputError, match="different sequences"):
        read_fasta(fasta)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="ABCXYZ019_-. ,", min_size=1, max_size=8).filter(str.strip),
            st.text(alphabet="ABCXYZ019_-. ,", min_size=1, max_size=8).filter(str.strip),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_quoted_csv_fields_are_read_back_exactly(rows) -> None:
    rows = [(a.strip(), b.strip()) for a, b in rows]
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerows((a, b, 1) for a, b in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "quoted.csv"
        path.write_text(buffer.getvalue())
        got, _ = read_pairs(path, keep_duplicates=True)
    assert [(p.a, p.b) for p in got] == rows


@pytest.fixture
def student(tmp_path):
    torch.manual_seed(0)
    spec = {"kind": "resnet1d", "embed_dim": 8, "channels": [8], "hidden": 8}
    path = tmp_path / "student.safetensors"
    save_model(path, build_student(spec).eval(), {"student": spec, "ppi": {"max_residues": 50}})
    return path


def _predict(student, pairs, fasta, out, *extra):
    args = ["ppi", "predict", "--model", str(student), "--pairs", str(pairs)]
    return CliRunner().invoke(app, [*args, "--fasta", str(fasta), "--out", str(out), *extra])


def test_predict_keeps_every_input_row_in_order(student, tmp_path) -> None:
    fasta = tmp_path / "u.fasta"
    fasta.write_text(FASTA)
    pairs = tmp_path / "in.tsv"
    pairs.write_text("P12345\tQ99999\nP3\tP12345\nQ99999\tP12345\nP12345\tQ99999\n")
    result = _predict(student, pairs, fasta, tmp_path / "out.tsv")
    assert result.exit_code == 0, result.output
    rows = [r.split("\t") for r in (tmp_path / "out.tsv").read_text().splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [
        ("P12345", "Q99999"), ("P3", "P12345"), ("Q99999", "P12345"), ("P12345", "Q99999")
    ]  # fmt: skip
    assert [r[3] for r in rows] == ["", "", "same pair as row 1", "same pair as row 1"]
    assert rows[0][2] == rows[2][2] == rows[3][2]  # the students are symmetric


def test_outputs_a_user_has_are_never_replaced(student, tmp_path) -> None:
    fasta = tmp_path / "u.fasta"
    fasta.write_text(FASTA)
    pairs = tmp_path / "in.tsv"
    pairs.write_text("P12345\tQ99999\n")
    taken = tmp_path / "taken.tsv"
    taken.write_text("precious\n")
    result = _predict(student, pairs, fasta, taken)
    assert result.exit_code != 0 and "output exists" in str(result.exception or result.output)
    assert taken.read_text() == "precious\n"
    assert _predict(student, pairs, fasta, taken, "--overwrite").exit_code == 0
    assert taken.read_text() != "precious\n"
    folder = tmp_path / "folder"
    folder.mkdir()
    result = _predict(student, pairs, fasta, folder)
    assert "output is a directory" in str(result.exception or result.output)


def test_run_directories_that_are_not_ours_are_one_line_errors(tmp_path) -> None:
    from protdistill.config import resolve
    from protdistill.errors import ConfigError
    from protdistill.tasks.ppi.common.config import PpiConfig
    from protdistill.tasks.ppi.run.prepare import prepare

    fasta, pairs = tmp_path / "u.fasta", tmp_path / "p.tsv"
    fasta.write_text(FASTA)
    pairs.write_text("".join(f"P12345\tQ99999\t{i % 2}\n" for i in range(1)))
    cfg = resolve(PpiConfig, pairs=str(pairs), fasta=str(fasta))
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    with pytest.raises(ConfigError, match="names a file"):
        prepare(cfg, a_file)
    assert a_file.read_text() == "mine"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "split.json").write_text('{"something": "else"}')
    with pytest.raises(InputError, match="not a protdistill run"):
        prepare(cfg, foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["split.json"]  # nothing written
    (foreign / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump()))
    with pytest.raises(InputError, match="not a protdistill split file"):
        prepare(cfg, foreign)


def test_json_outputs_never_hold_nan(tmp_path) -> None:
    import json

    from protdistill.io.atomic import write_json

    write_json(tmp_path / "m.json", {"auroc": float("nan"), "n": [1.0, float("inf")]})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"auroc": None, "n": [1.0, None]}


def test_ctrl_c_says_work_is_kept_and_exits_130(tmp_path, monkeypatch, capfd) -> None:
    import protdistill.tasks.ppi.run.pipeline as pipeline
    from protdistill.cli.main import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run", interrupted)
    monkeypatch.setattr(
        "sys.argv",
        ["protdistill", "ppi", "run", "--pairs", "p", "--fasta", "f", "--out", str(tmp_path)],
    )
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 130
    assert "re-run the same command to resume" in capfd.readouterr().err


def test_unknown_option_is_a_usage_error_not_a_traceback(monkeypatch, capfd) -> None:
    from protdistill.cli.main import main

    monkeypatch.setattr("sys.argv", ["protdistill", "ppi", "run", "--bogus"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capfd.readouterr().err
    assert exit_info.value.code == 2 and "No such option" in err and "Traceback" not in err


def test_every_ppi_config_field_is_a_command_line_option() -> None:
    import typer

    from protdistill.tasks.ppi.common.config import PpiConfig

    group = typer.main.get_command(app).commands["ppi"]
    for name in ("run", "train"):
        flags = {o for p in group.commands[name].params for o in p.opts}
        missing = {f"--{f.replace('_', '-')}" for f in PpiConfig.model_fields} - flags
        assert not missing, (name, missing)


def test_json_and_list_options_reach_the_config(tmp_path, monkeypatch) -> None:
    import protdistill.tasks.ppi.run.pipeline as pipeline

    seen = {}
    monkeypatch.setattr(pipeline, "run", lambda cfg, out, log: seen.setdefault("cfg", cfg) and {})
    args = ["ppi", "run", "--pairs", "p.tsv", "--fasta", "f.fa", "--out", str(tmp_path),
            "--student-config", '{"channels": [8, 16]}', "--transfer-fasta", "a.fa",
            "--transfer-fasta", "b.fa", "--random-crops", "--residue-stages", "2"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert cfg.student_config == {"channels": [8, 16]} and cfg.transfer_fasta == ["a.fa", "b.fa"]
    assert cfg.random_crops is True and cfg.residue_stages == [2]
    bad = CliRunner().invoke(app, [*args[:8], "--student-config", "{oops"])
    assert bad.exit_code == 2 and "not JSON" in bad.output


def test_run_log_keeps_messages_and_quiet_silences_them(tmp_path, capfd) -> None:
    from protdistill.cli.options import run_log

    run_log(tmp_path / "missing", quiet=True)("before the directory exists")  # no file, no crash
    assert not (tmp_path / "missing").exists()
    log = run_log(tmp_path, quiet=True)
    log("teacher embeddings: 3 proteins")
    assert capfd.readouterr().err == ""
    run_log(tmp_path)("training")
    assert "training" in capfd.readouterr().err
    lines = (tmp_path / "run.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "teacher embeddings: 3 proteins",
        "training",
    ]


def test_analyze_is_in_the_semcom_group_and_top_level() -> None:
    for args in (["semcom", "analyze", "--help"], ["analyze", "--help"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "snr" in result.output.lower()
