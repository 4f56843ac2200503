"""A `ppi run` killed at any stage resumes, when re-run, to the uninterrupted run's results.

The kill is an exception raised from inside the real pipeline (after the teacher-cache shard is
written, after the teacher head is fitted, at the start of the second training epoch, before
evaluation); the re-run is the same command in a process whose global RNG was moved on.
"""

from __future__ import annotations

import json

import pytest
import torch
from lightning.pytorch import Callback
from typer.testing import CliRunner

from protdistill.cli.main import app
from protdistill.distill import callbacks
from protdistill.tasks.ppi.run import pipeline
from protdistill.teachers.cache import TeacherCache

runner = CliRunner()


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way may swallow it."""


def _kill_after_call(monkeypatch, owner, name: str) -> None:
    """``owner.name`` works once, then the process 'dies' before anything else runs."""
    real = getattr(owner, name)

    def dying(*args, **kwargs):
        real(*args, **kwargs)
        monkeypatch.setattr(owner, name, real)
        raise Killed(name)

    monkeypatch.setattr(owner, name, dying)


def _kill_at_second_epoch(monkeypatch) -> None:
    def start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            raise Killed("epoch 1")

    monkeypatch.setattr(callbacks.EpochHistory, "on_train_epoch_start", start, raising=False)


KILLS = {
    "teacher cache shard": lambda mp: _kill_after_call(mp, TeacherCache, "put_batch"),
    "teacher head": lambda mp: _kill_after_call(mp, pipeline, "fit_teacher"),
    "second epoch": _kill_at_second_epoch,
    "before evaluation": lambda mp: _kill_after_call(mp, pipeline, "train_student"),
}


def _args(out, ppi_files, teacher: str, tmp_path) -> list[str]:
    pairs, fasta = ppi_files
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "batch_size: 8\nprogress: false\nhead_epochs: 10\nhead_crossfit: 2\n"
        "tokens_per_batch: 256\nepochs: 3\nsplit: random\n"
    )
    return ["ppi", "run", "--pairs", str(pairs), "--fasta", str(fasta), "--teacher", teacher,
            "--out", str(out), "--cache", str(out.parent / f"{out.name}_cache"),
            "--config", str(cfg)]  # fmt: skip


def _results(out) -> tuple[dict, list[list[float]]]:
    metrics = json.loads((out / "metrics.json").read_text())
    rows = (out / "predictions_test.tsv").read_text().splitlines()[1:]
    scores = [[float(x) for x in row.split("\t")[2:] if x.replace(".", "", 1).isdigit()]
              for row in rows]  # fmt: skip
    return {k: metrics[k] for k in ("teacher", "student")}, scores


@pytest.mark.slow
def test_a_run_killed_at_any_stage_resumes_to_the_uninterrupted_results(
    tmp_path, ppi_files, tiny_teacher_dir, monkeypatch
) -> None:
    whole = tmp_path / "whole"
    assert runner.invoke(app, _args(whole, ppi_files, tiny_teacher_dir, tmp_path)).exit_code == 0
    expected_metrics, expected_scores = _results(whole)

    for stage, arm in KILLS.items():
        out = tmp_path / stage.replace(" ", "_")
        with monkeypatch.context() as mp, pytest.raises(Killed):
            arm(mp)
            runner.invoke(app, _args(out, ppi_files, tiny_teacher_dir, tmp_path))
        assert not (out / "metrics.json").exists(), stage
        torch.manual_seed(1234)  # a new process would not share the killed one's RNG
        resumed = runner.invoke(app, _args(out, ppi_files, tiny_teacher_dir, tmp_path))
        assert resumed.exit_code == 0, (stage, resumed.output)
        metrics, scores = _results(out)
        for model in expected_metrics:
            for key, value in expected_metrics[model].items():
                if isinstance(value, float):
                    assert metrics[model][key] == pytest.approx(value, abs=1e-6), (stage, key)
        assert len(scores) == len(expected_scores)
        for got, want in zip(scores, expected_scores, strict=True):
            assert got == pytest.approx(want, abs=1e-5), stage


def test_the_kill_points_exist() -> None:
    """The names the kills patch are the pipeline's (a rename must not make the test vacuous)."""
    assert callable(TeacherCache.put_batch) and callable(pipeline.fit_teacher)
    assert callable(pipeline.train_student) and issubclass(callbacks.EpochHistory, Callback)
