"""Fewer-layer ESM students: DistilBERT-style init, exactness, KD terms, save/load, distill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from protdistill.api.distill import run_distill
from protdistill.distill.config import DistillConfig
from protdistill.distill.trainer import TrainConfig
from protdistill.errors import ConfigError
from protdistill.students.small_esm import (
    esm_forward,
    load_small_esm,
    make_small_esm,
    save_small_esm,
)
from protdistill.tasks.esm.distill import EsmDistillModule
from protdistill.testing import ESM_VOCAB, tiny_esm_config


def _tiny_teacher(layers: int = 4):
    from transformers import EsmModel

    torch.manual_seed(0)
    cfg = tiny_esm_config(num_hidden_layers=layers, emb_layer_norm_before=False)
    cfg._attn_implementation = "eager"
    return EsmModel(cfg, add_pooling_layer=False).eval()


def _tokens() -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.tensor([[0, 5, 6, 7, 8, 9, 10, 11, 2], [0, 12, 13, 14, 15, 2, 1, 1, 1]])
    return tokens, tokens != 1


def test_student_with_all_layers_reproduces_the_teacher_exactly() -> None:
    teacher = _tiny_teacher()
    student, idx = make_small_esm(teacher, 4)
    tokens, mask = _tokens()
    a = esm_forward(teacher, tokens, mask, contacts=True)
    b = esm_forward(student.eval(), tokens, mask, contacts=True)
    assert idx == [0, 1, 2, 3]
    assert torch.equal(a.hidden, b.hidden) and torch.equal(a.contacts, b.contacts)


def test_fewer_layers_copy_evenly_spaced_layers_and_their_contact_weights() -> None:
    teacher = _tiny_teacher()
    student, idx = make_small_esm(teacher, 2)
    assert idx == [0, 3] and student.config.num_hidden_layers == 2
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for i, j in enumerate(idx):
        for key in [k for k in s_state if k.startswith(f"encoder.layer.{i}.")]:
            assert torch.equal(s_state[key], t_state[key.replace(f"layer.{i}.", f"layer.{j}.")])
    w_t = t_state["contact_head.regression.weight"].view(4, 4)
    assert torch.equal(s_state["contact_head.regression.weight"].view(2, 4), w_t[[0, 3]])
    tokens, mask = _tokens()
    out = esm_forward(student, tokens, mask, contacts=True)
    assert out.contacts.shape == (2, 7, 7) and len(out.layers) == len(out.attentions) == 2
    assert sum(p.numel() for p in student.parameters()) < sum(
        p.numel() for p in teacher.parameters()
    )


def test_kd_terms_vanish_for_an_exact_copy_and_train_only_the_student() -> None:
    teacher = _tiny_teacher()
    tokens, mask = _tokens()
    batch = {"tokens": tokens, "mask": mask}
    copy, idx = make_small_esm(teacher, 4)
    out = EsmDistillModule(copy.eval(), teacher, TrainConfig(), idx).step(batch, "train")
    for name in ("loss", "hidden", "attention", "contact"):
        assert float(out[name].detach()) == pytest.approx(0.0, abs=1e-6), name
    student, idx = make_small_esm(teacher, 2)
    module = EsmDistillModule(student, teacher, TrainConfig(), idx)
    out = module.step(batch, "train")
    assert float(out["loss"]) > 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


def test_save_load_round_trip(tmp_path: Path) -> None:
    student, _ = make_small_esm(_tiny_teacher(), 2)
    path = save_small_esm(tmp_path / "s.pt", student, {"layer_map": [0, 3]})
    loaded, meta = load_small_esm(path)
    tokens, mask = _tokens()
    a = esm_forward(student.eval(), tokens, mask, contacts=True)
    b = esm_forward(loaded, tokens, mask, contacts=True)
    assert torch.equal(a.hidden, b.hidden) and meta["layer_map"] == [0, 3]


@pytest.fixture()
def teacher_dir(tmp_path: Path) -> Path:
    from transformers import EsmTokenizer

    (tmp_path / "vocab.txt").write_text("\n".join(ESM_VOCAB) + "\n")
    out = tmp_path / "tiny_esm"
    _tiny_teacher().save_pretrained(out)
    EsmTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(out)
    return out


def test_distill_command_for_esm_teacher(teacher_dir: Path, tmp_path: Path) -> None:
    fasta = tmp_path / "p.fasta"
    gen = torch.Generator().manual_seed(0)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    seqs = [
        "".join(letters[i] for i in torch.randint(0, 20, (20,), generator=gen)) for _ in range(12)
    ]
    fasta.write_text("".join(f">p{i}\n{s}\n" for i, s in enumerate(seqs)))
    out = tmp_path / "run"
    cfg = DistillConfig(teacher_checkpoint=str(teacher_dir), data=str(fasta), student_layers=2,
                        epochs=1, batch_size=4, output_path=str(out), progress=False)  # fmt: skip
    report = run_distill(cfg)
    assert report["family"] == "esm" and report["layer_map"] == [0, 3]
    info = json.loads((out / "distillation_config.json").read_text())
    assert info["compression_ratio"] > 1 and not info["teacher_has_lm_head"]
    for name in ("final_student_model.pt", "best_student_model.pt", "student_model_epoch1.pt"):
        model, _ = load_small_esm(out / name)
        assert model.config.num_hidden_layers == 2
    with pytest.raises(ConfigError, match="encoder only"):
        run_distill(cfg.model_copy(update={"distill_part": "decoder"}))
    with pytest.raises(ConfigError, match="needs training proteins"):
        run_distill(cfg.model_copy(update={"data": None}))
