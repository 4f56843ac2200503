"""`protdistill distill` on a tiny DeepSC teacher: the three parts, the hybrid, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from protdistill.api.distill import run_distill
from protdistill.distill.config import DistillConfig
from protdistill.distill.partial import identical
from protdistill.errors import ConfigError
from protdistill.tasks.semcom.data import START
from protdistill.tasks.semcom.distill import make_student
from protdistill.tasks.semcom.model import load_deepsc


def _cfg(teacher: Path, out: Path, part: str, **kw) -> DistillConfig:
    return DistillConfig(
        teacher_checkpoint=str(teacher),
        output_path=str(out),
        distill_part=part,
        student_layers=1,
        epochs=1,
        batch_size=16,
        val_sentences=8,
        progress=False,
        **kw,
    )


def test_make_student_copies_evenly_spaced_layers_and_freezes_the_other_part(tiny_teacher) -> None:
    teacher = load_deepsc(tiny_teacher).model
    student, layer_map = make_student(teacher, "decoder", 1)
    assert layer_map == {"encoder": [0, 1], "decoder": [1]}
    assert identical(student.transmitter, teacher.transmitter)
    assert not any(p.requires_grad for p in student.transmitter.parameters())
    assert all(p.requires_grad for p in student.receiver.parameters())
    s_layer, t_layer = (
        student.receiver.layers[0].state_dict(),
        teacher.receiver.layers[1].state_dict(),
    )
    assert all(torch.equal(s_layer[k], t_layer[k]) for k in s_layer)
    with pytest.raises(ConfigError, match="student_layers=3"):
        make_student(teacher, "full", 3)


def test_init_layers_choose_the_teacher_layer_a_student_layer_starts_from(tiny_teacher) -> None:
    teacher = load_deepsc(tiny_teacher).model
    student, layer_map = make_student(teacher, "decoder", 1, init_layers=[0])
    assert layer_map == {"encoder": [0, 1], "decoder": [0]}  # the frozen part is whole
    s_layer, t_layer = (
        student.receiver.layers[0].state_dict(),
        teacher.receiver.layers[0].state_dict(),
    )
    assert all(torch.equal(s_layer[k], t_layer[k]) for k in s_layer)
    full, full_map = make_student(teacher, "full", 1, init_layers=[0])
    assert full_map == {"encoder": [0], "decoder": [0]}
    with pytest.raises(ConfigError, match="outside the teacher's 2 layers"):
        make_student(teacher, "decoder", 1, init_layers=[2])
    with pytest.raises(ConfigError, match="2 teacher layer"):
        make_student(teacher, "decoder", 1, init_layers=[0, 1])


@pytest.mark.parametrize(
    ("text", "expected"), [("0", [0]), ("0,3", [0, 3]), (1, [1]), (None, None)]
)
def test_init_layers_read_from_the_command_line(text, expected) -> None:
    assert DistillConfig(init_layers=text).init_layers == expected


@pytest.mark.parametrize(("part", "frozen", "trained"), [
    ("encoder", "receiver", "transmitter"), ("decoder", "transmitter", "receiver"),
])  # fmt: skip
def test_partial_distillation_keeps_frozen_part_bit_identical(
    tiny_teacher: Path, tmp_path: Path, part: str, frozen: str, trained: str
) -> None:
    teacher = load_deepsc(tiny_teacher).model
    report = run_distill(_cfg(tiny_teacher, tmp_path, part, create_hybrid=True))
    for name in ("final_student_model.pt", "best_student_model.pt", "student_model_epoch1.pt"):
        student = load_deepsc(tmp_path / name).model
        assert identical(getattr(student, frozen), getattr(teacher, frozen)), name
    final = load_deepsc(tmp_path / "final_student_model.pt").model
    assert len(getattr(final, trained).layers) == 1
    start, _ = make_student(teacher, part, 1)
    assert not identical(getattr(final, trained), getattr(start, trained))  # it did learn
    info = json.loads((tmp_path / "distillation_config.json").read_text())
    assert info["distill_part"] == part and info["temperature"] == 4.0
    assert info["student_parameters"] < info["teacher_parameters"] == report["teacher_parameters"]
    assert info["compression_ratio"] == pytest.approx(
        info["teacher_parameters"] / info["student_parameters"]
    )
    for key in ("best_loss", "best_epoch", "wall_time_s", "distill_weight", "hybrid_path"):
        assert key in info


def test_full_mode_hybrid_loads_and_decodes_on_its_own(tiny_teacher: Path, tmp_path: Path) -> None:
    hybrid_path = tmp_path / "elsewhere" / "hybrid.pt"
    run_distill(_cfg(tiny_teacher, tmp_path, "full", create_hybrid=True,
                     hybrid_output=str(hybrid_path), temperature=2.0))  # fmt: skip
    teacher = load_deepsc(tiny_teacher).model
    student = load_deepsc(tmp_path / "best_student_model.pt").model
    hybrid = load_deepsc(hybrid_path)  # a fresh load: no teacher or student object needed
    assert identical(hybrid.model.transmitter, teacher.transmitter)
    assert identical(hybrid.model.receiver, student.receiver)
    assert hybrid.meta["role"] == "hybrid" and hybrid.meta["temperature"] == 2.0
    tokens = torch.tensor([[START, 5, 6, 7, 2]])
    out = hybrid.model.decode(tokens, tokens != 0, 12.0, "awgn", torch.Generator().manual_seed(0))
    assert out[0, 0] == START and out.shape[1] >= 2


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the real console entry point; return its exit code."""
    from protdistill.cli.main import main

    monkeypatch.setattr("sys.argv", ["protdistill", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code)


def test_bad_inputs_give_one_line_errors(
    tiny_teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch
) -> None:
    cases = [
        (["distill", "--teacher-checkpoint", str(tmp_path / "none.pt")],
         "teacher checkpoint not found"),
        (["distill", "--teacher-checkpoint", str(tiny_teacher), "--student-layers", "5",
          "--output-path", str(tmp_path / "o")],
         f"{tiny_teacher}: student_layers=5 but the teacher's encoder/decoder has 2 layers"),
        (["distill", "--teacher-checkpoint", str(tiny_teacher), "--data", str(tmp_path / "empty"),
          "--output-path", str(tmp_path / "o2")], "Europarl corpus not found"),
        (["semcom", "train", "--corpus", str(tmp_path), "--output-path", str(tmp_path / "t")],
         "no .txt files in the corpus folder"),
    ]  # fmt: skip
    for args, message in cases:
        code = _cli(monkeypatch, *args)
        err = capsys.readouterr().err.strip()
        assert code == 2, args
        assert err.startswith("error: ") and message in err and "\n" not in err, err
        assert "fix:" in err


@pytest.mark.slow
def test_two_process_distill_trains_with_ddp_and_rank_zero_writes(
    tiny_teacher: Path, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    args = [sys.executable, "-m", "protdistill", "distill", "--teacher-checkpoint",
            str(tiny_teacher), "--distill-part", "decoder", "--epochs", "2", "--batch-size", "8",
            "--accelerator", "cpu", "--devices", "2",
            "--output-path", str(tmp_path / "two")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stderr and proc.stdout.count("student:") == 1
    report = json.loads((tmp_path / "two" / "distillation_config.json").read_text())
    per_rank = -(-report["train_sentences"] // 2)  # DistributedSampler: equal shares
    assert report["history"][0]["step"] == -(-per_rank // 8)
    assert {"train_hidden", "train_attention"} <= set(report["history"][0])
    student = load_deepsc(tmp_path / "two" / "best_student_model.pt").model
    assert student.config.dec_layers == 1
