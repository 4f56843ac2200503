"""The bad inputs users actually have, through the real entry point (`protdistill.cli.main`):
each must stop with exit code 2 and one line on stderr naming the file (and record) and a fix,
and leave whatever the user already had untouched. docs/reliability.md lists the same cases."""

from __future__ import annotations

import gzip

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protdistill.cli.main import main
from protdistill.distill.checkpoint import save_model
from protdistill.students import build_student

FASTA = "".join(f">P{i}\nMKTAYIAKQRQISFVKSHF{'ACDEFGHIKL'[i]}SRQ\n" for i in range(10))
PAIRS = "".join(f"P{i}\tP{j}\t{(i + j) % 2}\n" for i in range(10) for j in range(i + 1, 10))


def _files(tmp_path):
    (tmp_path / "ok.fasta").write_text(FASTA)
    (tmp_path / "ok.tsv").write_text(PAIRS)
    spec = {"kind": "resnet1d", "embed_dim": 8, "channels": [8], "hidden": 8}
    torch.manual_seed(0)
    save_model(tmp_path / "student.safetensors", build_student(spec).eval(),
               {"student": spec, "ppi": {"max_residues": 50}})  # fmt: skip
    return tmp_path


def _setup(tmp_path, case: str) -> None:
    """Create the files one case needs, beside the good ones."""
    if case == "bad_residue":
        (tmp_path / "bad.fasta").write_text(">P1\nMKT1AYI\n")
    elif case == "unknown_protein":
        (tmp_path / "bad.tsv").write_text("P1\tP2\t1\nP1\tP99\t0\n")
    elif case == "bad_label":
        (tmp_path / "bad.tsv").write_text("P1\tP2\t1\nP2\tP3\tmaybe\n")
    elif case == "conflicting_labels":
        (tmp_path / "bad.tsv").write_text("P1\tP2\t1\nP2\tP1\t0\n")
    elif case == "truncated_gzip":
        (tmp_path / "bad.fasta.gz").write_bytes(gzip.compress(FASTA.encode())[:30])
    elif case == "empty_fasta":
        (tmp_path / "bad.fasta").write_text("")
    elif case == "out_is_a_file":
        (tmp_path / "taken").write_text("mine\n")
    elif case == "foreign_run_dir":
        (tmp_path / "foreign").mkdir()
        (tmp_path / "foreign" / "split.json").write_text('{"what": "else"}')
    elif case == "corrupt_student":
        data = bytearray((tmp_path / "student.safetensors").read_bytes())
        data[-40:-20] = bytes(20)
        (tmp_path / "corrupt.safetensors").write_bytes(bytes(data))
    elif case == "existing_predictions":
        (tmp_path / "preds.tsv").write_text("mine\n")
    elif case == "pickled_teacher":
        folder = tmp_path / "pickled"
        folder.mkdir()
        (folder / "config.json").write_text('{"model_type": "esm"}')
        torch.save({"x": torch.zeros(1)}, folder / "pytorch_model.bin")


RUN = ["ppi", "run", "--out", "{t}/run", "--teacher", "{t}/nowhere"]
PREDICT = ["ppi", "predict", "--model", "{t}/student.safetensors", "--out", "{t}/preds.tsv"]
#: (case, arguments, words the one line must contain)
CASES = [
    ("missing_fasta", [*RUN, "--pairs", "{t}/ok.tsv", "--fasta", "{t}/none.fasta"],
     ["none.fasta", "not found", "fix:"]),
    ("bad_residue", [*RUN, "--pairs", "{t}/ok.tsv", "--fasta", "{t}/bad.fasta"],
     ["bad.fasta", "P1 (line 2)", "'1'", "fix:"]),
    ("unknown_protein", [*RUN, "--pairs", "{t}/bad.tsv", "--fasta", "{t}/ok.fasta"],
     ["bad.tsv", "line 2", "P99", "fix:"]),
    ("bad_label", [*RUN, "--pairs", "{t}/bad.tsv", "--fasta", "{t}/ok.fasta"],
     ["bad.tsv", "line 2", "maybe", "fix:"]),
    ("conflicting_labels", [*RUN, "--pairs", "{t}/bad.tsv", "--fasta", "{t}/ok.fasta"],
     ["bad.tsv", "line 2", "fix:"]),
    ("truncated_gzip", [*RUN, "--pairs", "{t}/ok.tsv", "--fasta", "{t}/bad.fasta.gz"],
     ["bad.fasta.gz", "fix:"]),
    ("empty_fasta", [*RUN, "--pairs", "{t}/ok.tsv", "--fasta", "{t}/bad.fasta"],
     ["bad.fasta", "fix:"]),
    ("out_is_a_file", ["ppi", "run", "--out", "{t}/taken", "--pairs", "{t}/ok.tsv",
                       "--fasta", "{t}/ok.fasta"], ["taken", "names a file", "fix:"]),
    ("foreign_run_dir", ["ppi", "run", "--out", "{t}/foreign", "--pairs", "{t}/ok.tsv",
                         "--fasta", "{t}/ok.fasta"], ["foreign", "not a protdistill run", "fix:"]),
    ("unknown_dataset", [*RUN, "--dataset", "guo"], ["guo-yeast", "fix:"]),
    ("corrupt_student", ["ppi", "predict", "--model", "{t}/corrupt.safetensors", "--out",
                         "{t}/p.tsv", "--pairs", "{t}/ok.tsv", "--fasta", "{t}/ok.fasta"],
     ["corrupt.safetensors", "fix:"]),
    ("existing_predictions", [*PREDICT, "--pairs", "{t}/ok.tsv", "--fasta", "{t}/ok.fasta"],
     ["preds.tsv", "output exists", "--overwrite"]),
    ("predict_into_directory", [*PREDICT[:-1], "{t}", "--pairs", "{t}/ok.tsv", "--fasta",
                                "{t}/ok.fasta"], ["output is a directory", "fix:"]),
    ("pickled_teacher", ["ppi", "embed", "--out", "{t}/run", "--teacher", "{t}/pickled",
                         "--pairs", "{t}/ok.tsv", "--fasta", "{t}/ok.fasta"],
     ["pickled", "fix:"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "args", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_is_lost(
    tmp_path, monkeypatch, capfd, case, args, words
) -> None:
    root = _files(tmp_path)
    _setup(root, case)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    monkeypatch.setattr("sys.argv", ["protdistill", *[a.format(t=root) for a in args]])
    with pytest.raises(SystemExit) as exit_info:
        main()
    lines = capfd.readouterr().err.strip().splitlines()
    err = lines[-1]  # progress messages may come first; the error is one line, the last
    assert exit_info.value.code == 2, lines
    assert err.startswith("error: ") and not any("Traceback" in line for line in lines), lines
    assert sum(line.startswith("error: ") for line in lines) == 1, lines
    for word in words:
        assert word in err, (word, err)
    for path, content in before.items():  # nothing the user had was changed
        assert path.read_bytes() == content, path


#: One corruption of a good FASTA or pairs file: (file, line index, replacement line).
_BAD_FASTA_LINES = st.sampled_from(["MKT1AY", "MK?TA", ">", "ACDE FG#", "12345", "MKT*AY"])
_BAD_PAIR_LINES = st.sampled_from(
    ["P1\tP99\t1", "P1\tP2\tmaybe", "P1", "P1\tP2\t1\textra\tcols", "P3\tP2\t2", "P1,,1"]
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=st.sampled_from(["fasta", "pairs"]),
    line=st.integers(0, 19),
    fasta_bad=_BAD_FASTA_LINES,
    pair_bad=_BAD_PAIR_LINES,
)
def test_generated_bad_fasta_and_pairs_are_one_line_errors(
    tmp_path_factory, monkeypatch, capfd, which, line, fasta_bad, pair_bad
) -> None:
    root = tmp_path_factory.mktemp("gen")
    fasta, pairs = FASTA.splitlines(), PAIRS.splitlines()
    if which == "fasta":
        at = 2 * (line % 10) + 1  # a sequence line
        fasta[at] = fasta_bad
    else:
        pairs[1 + line] = pair_bad  # not line 1: a first line without a 0/1 label is a header
    (root / "in.fasta").write_text("\n".join(fasta) + "\n")
    (root / "in.tsv").write_text("\n".join(pairs) + "\n")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    args = ["ppi", "run", "--out", f"{root}/run", "--teacher", f"{root}/nowhere",
            "--pairs", f"{root}/in.tsv", "--fasta", f"{root}/in.fasta"]  # fmt: skip
    monkeypatch.setattr("sys.argv", ["protdistill", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    lines = capfd.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2, lines
    assert sum(line.startswith("error: ") for line in lines) == 1, lines
    err = lines[-1]
    assert f"in.{'fasta' if which == 'fasta' else 'tsv'}" in err and "fix:" in err, err
    assert "line" in err or "P" in err, err  # the record is named
    assert not (root / "run" / "config.yaml").exists()  # nothing written for invalid inputs
    for path, content in before.items():
        assert path.read_bytes() == content, path
