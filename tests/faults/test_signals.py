"""SIGINT / SIGTERM arriving right after each file a command commits (every rename along a
small `compress`, `ppi embed` and `ppi screen`) or mid-way through `peptide sample`: one line
saying what was kept and how to resume, exit code 130 / 143, no traceback, and the re-run
finishes with what an undisturbed run gives."""

from __future__ import annotations

import os
import signal

import pytest
import test_io_faults as base


@pytest.fixture()
def restore_sigterm():
    """``main`` installs its SIGTERM handler for the life of the process; pytest's is put back.
    SIGINT gets Python's own handler for the test: a process started in the background by a
    non-interactive shell (`cmd &`) inherits SIGINT ignored, and then no KeyboardInterrupt
    would ever arrive."""
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGTERM, previous[0])
    signal.signal(signal.SIGINT, previous[1])


@pytest.mark.parametrize("command", ["compress", "ppi-embed", "ppi-screen"])
def test_a_signal_after_each_committed_file_stops_cleanly_and_resumes(
    tmp_path, monkeypatch, capfd, restore_sigterm, command
) -> None:
    inputs = base._inputs(tmp_path)

    def args(out) -> list[str]:  # noqa: ANN001
        return [a.format(out=out, **inputs) for a in base.COMMANDS[command]]

    real_replace, real_link = os.replace, os.link
    plan = {"at": 0, "seen": 0, "signal": signal.SIGTERM}

    def then_signal(real):  # noqa: ANN001, ANN202
        def renamed(src, dst, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
            out = real(src, dst, *a, **k)
            if str(dst).startswith(str(tmp_path)):
                plan["seen"] += 1
                if plan["seen"] == plan["at"]:
                    os.kill(os.getpid(), plan["signal"])  # handled at the next bytecode
            return out

        return renamed

    monkeypatch.setattr(os, "replace", then_signal(real_replace))
    monkeypatch.setattr(os, "link", then_signal(real_link))
    code, lines = base._run(args(tmp_path / "clean"), capfd)
    assert code == 0, lines
    expected, renames = base._files(tmp_path / "clean"), plan["seen"]
    assert renames >= 2
    for n in range(1, renames + 1):
        out = tmp_path / f"s{n}"
        sig = signal.SIGTERM if n % 2 else signal.SIGINT
        plan.update(at=n, seen=0, signal=sig)
        code, lines = base._run(args(out), capfd)
        where = f"{command}: {sig.name} after commit #{n}"
        if n < renames or code != 0:  # the last commit may be the command's very end
            assert code == (143 if sig == signal.SIGTERM else 130), (where, lines)
            assert "completed work is saved; re-run the same command to resume" in lines[-1], (
                where, lines,
            )  # fmt: skip
            assert not any("Traceback" in line for line in lines), (where, lines)
        assert not list(out.rglob("*.tmp")), where
        plan.update(at=0, seen=0)
        code, lines = base._run(args(out), capfd)
        assert code == 0, (where, "re-run", lines)
        assert base._files(out) == expected, (where, "re-run differs")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_sampling_peptides_leaves_no_file_and_reruns_identically(
    tmp_path, monkeypatch, capfd, restore_sigterm, sig
) -> None:
    from protdistill.tasks.peptide import sample as sampling

    inputs = base._inputs(tmp_path)
    args = [a.format(out=tmp_path / "out", **inputs) for a in base.COMMANDS["peptide-sample"]]
    code, _ = base._run(args, capfd)
    expected = (tmp_path / "out" / "s.fasta").read_bytes()
    (tmp_path / "out" / "s.fasta").unlink()
    real = sampling.sample_peptides

    def signalled(*a, progress, **k):  # noqa: ANN002, ANN003, ANN202
        def advance(n: int) -> None:
            progress(n)
            os.kill(os.getpid(), sig)  # after the first batch of peptides

        return real(*a, progress=advance, **k)

    monkeypatch.setattr(sampling, "sample_peptides", signalled)
    code, lines = base._run(args, capfd)
    assert code == (143 if sig == signal.SIGTERM else 130), lines
    assert "re-run the same command" in lines[-1] and not any("Traceback" in x for x in lines)
    assert not list((tmp_path / "out").rglob("*")), "nothing half-written"
    monkeypatch.setattr(sampling, "sample_peptides", real)
    code, lines = base._run(args, capfd)
    assert code == 0 and (tmp_path / "out" / "s.fasta").read_bytes() == expected, lines
