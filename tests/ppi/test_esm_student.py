"""The fewer-layer ESM-2 pair student: teacher-layer initialisation, pair invariants, and a
`ppi run` with it."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from protdistill.alphabet import encode_batch
from protdistill.cli.main import app
from protdistill.errors import ConfigError
from protdistill.students import build_student, count_parameters
from protdistill.students.esm_pair import init_from_esm, init_from_small_esm
from protdistill.students.small_esm import make_small_esm, save_small_esm
from protdistill.teachers.esm import EsmTeacher
from protdistill.teachers.loading import load_esm

#: the widths of protdistill.testing.tiny_esm
TINY = {"kind": "esm", "hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64,
        "layer_norm_eps": 1e-12}  # fmt: skip
SEQS_A = ["MKVLAAGIWWKKRDEST" * 3, "ACDEFGHIKX"]
SEQS_B = ["PPGGSTQNRK" * 2, "MNQWYYFFHHKLAS" * 4]


def _student(tiny_teacher_dir: str, **cfg) -> torch.nn.Module:
    torch.manual_seed(0)
    student = build_student({**TINY, **cfg})
    init_from_esm(student, load_esm(tiny_teacher_dir)[0])
    return student.eval()


def test_all_teacher_layers_reproduce_the_teachers_embedding(tiny_teacher_dir) -> None:
    student = _student(tiny_teacher_dir, num_layers=2)
    tokens, mask = encode_batch(SEQS_A)
    with torch.no_grad():
        ours = student.embed(tokens, mask)
    teacher = EsmTeacher(tiny_teacher_dir)
    theirs = torch.stack([e.pooled for e in teacher.embed(SEQS_A)])
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_one_layer_student_copies_the_chosen_teacher_layer(tiny_teacher_dir) -> None:
    teacher = load_esm(tiny_teacher_dir)[0]
    student = _student(tiny_teacher_dir, num_layers=1, teacher_layers=[1])
    ours = student.esm.encoder.layer[0].state_dict()
    theirs = teacher.encoder.layer[1].state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert count_parameters(student) < count_parameters(teacher) + 20_000


def test_symmetric_padding_invariant_and_trainable(tiny_teacher_dir) -> None:
    student = _student(tiny_teacher_dir, num_layers=1)
    ta, ma = encode_batch(SEQS_A)
    tb, mb = encode_batch(SEQS_B)
    ab, ba = student(ta, ma, tb, mb), student(tb, mb, ta, ma)
    torch.testing.assert_close(ab.logits, ba.logits, atol=1e-5, rtol=0)
    padded = student(torch.nn.functional.pad(ta, (0, 9)), torch.nn.functional.pad(ma, (0, 9)),
                     tb, mb)  # fmt: skip
    torch.testing.assert_close(ab.logits, padded.logits, atol=1e-5, rtol=0)
    student.train()
    student(ta, ma, tb, mb).logits.sum().backward()
    grads = [p.grad for n, p in student.named_parameters() if "contact_head" not in n]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_teacher_of_another_width_is_refused(tiny_teacher_dir) -> None:
    student = build_student({"kind": "esm"})  # ESM-2 8M widths, the tiny teacher is 32 wide
    with pytest.raises(ConfigError, match="hidden_size: student 320 vs teacher 32") as info:
        init_from_esm(student, load_esm(tiny_teacher_dir)[0])
    assert '"hidden_size": 32' in info.value.fix


def test_init_from_a_distilled_esm_student(tmp_path, tiny_teacher_dir) -> None:
    small, _ = make_small_esm(load_esm(tiny_teacher_dir)[0], 1, [1])
    torch.nn.init.normal_(small.encoder.layer[0].output.dense.weight)  # as if distilled further
    path = save_small_esm(tmp_path / "student.pt", small, {})
    student = build_student({**TINY, "num_layers": 1})
    init_from_small_esm(student, path)
    ours, theirs = student.esm.state_dict(), small.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    with pytest.raises(ConfigError, match="num_layers: file 1 vs run 2") as info:
        init_from_small_esm(build_student({**TINY, "num_layers": 2}), path)
    assert '"num_layers": 1' in info.value.fix


def test_ppi_run_with_esm_student(tmp_path, ppi_files, tiny_teacher_dir) -> None:
    pairs, fasta = ppi_files
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "batch_size: 8\nprogress: false\nhead_epochs: 20\nhead_crossfit: 2\n"
        f"student_config: {json.dumps({**TINY, 'num_layers': 1})}\n"
    )
    base = ["ppi", "run", "--pairs", str(pairs), "--fasta", str(fasta), "--teacher",
            tiny_teacher_dir, "--split", "random", "--epochs", "1", "--config", str(cfg),
            "--student", "esm"]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "run")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0 <= metrics["student"]["auroc"] <= 1
    # as wide as the teacher: no projector weights, the cosine and transplant still reported
    assert not (tmp_path / "run" / "student" / "projector.safetensors").exists()
    assert -1 <= metrics["student"]["embedding_cosine_test_proteins"]["mean"] <= 1
    assert "student_head_transplant" in metrics
    refused = runner.invoke(
        app, [*base, "--out", str(tmp_path / "run2"), "--transfer-fasta", str(fasta)]
    )
    small, _ = make_small_esm(load_esm(tiny_teacher_dir)[0], 1)
    init = save_small_esm(tmp_path / "esm1.pt", small, {})
    args = [*base, "--out", str(tmp_path / "run3"), "--init", str(init)]
    assert runner.invoke(app, args, catch_exceptions=False).exit_code == 0
    assert json.loads((tmp_path / "run3" / "pretrain.json").read_text())["given"] is True
    assert (tmp_path / "run3" / "metrics.json").exists()
    assert isinstance(refused.exception, ConfigError)
    assert "the ESM student starts from the teacher's own layers" in str(refused.exception)
    assert not (tmp_path / "run2" / "split.json").exists()
