"""`protdistill --quiet` silences progress messages, `--verbose` adds library logs and a traceback
to the one-line error; both at once is a usage error."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from protdistill.cli.main import app
from protdistill.cli.options import echo
from protdistill.progress import set_verbosity, verbosity


def test_echo_follows_the_verbosity(capsys) -> None:
    try:
        for level, shown in ((0, False), (1, True), (2, True)):
            set_verbosity(level)
            echo("step 1/3")
            assert ("step 1/3" in capsys.readouterr().err) is shown
    finally:
        set_verbosity(1)


def test_root_flags_set_the_level_and_refuse_both() -> None:
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["--quiet", "ppi", "--help"]).exit_code == 0
        assert verbosity() == 0
        assert runner.invoke(app, ["-v", "ppi", "--help"]).exit_code == 0
        assert verbosity() == 2
        both = runner.invoke(app, ["--verbose", "--quiet", "ppi", "--help"])
        assert both.exit_code != 0 and "not both" in both.output
    finally:
        set_verbosity(1)


def test_threads_flag_sets_torch_threads_and_refuses_zero() -> None:
    import torch

    runner = CliRunner()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert runner.invoke(app, ["--threads", "1", "ppi", "--help"]).exit_code == 0
        assert torch.get_num_threads() == 1
        assert runner.invoke(app, ["--threads", "0", "ppi", "--help"]).exit_code == 2
    finally:
        torch.set_num_threads(before)


def _run(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "protdistill", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_verbose_error_carries_a_traceback_plain_error_one_line(tmp_path) -> None:
    args = ["ppi", "predict", "--pairs", "p.tsv", "--fasta", "f.fa", "--out", str(tmp_path / "o")]
    plain = _run(*args)
    assert plain.returncode == 2
    assert plain.stderr.strip().count("\n") == 0 and "give the student once" in plain.stderr
    verbose = _run("--verbose", *args)
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == plain.stderr.strip()
