"""Trainer: resume reproduces an uninterrupted run, frozen teacher, checkpoints, EMA, stopping."""

from __future__ import annotations

import csv
import json
import math
import signal
import typing

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from protdistill.config import resolve
from protdistill.distill.checkpoint import load_torch, student_state_from_checkpoint
from protdistill.distill.config import Precision
from protdistill.distill.module import lr_scale, warmup_cosine
from protdistill.distill.trainer import (
    DistillModule,
    TrainConfig,
    build_trainer,
    fit,
)
from protdistill.errors import CheckpointError, ConfigError, ModelError

torch.set_num_threads(1)


class KD(DistillModule):
    """MSE to a live teacher; records the teacher's mode and the weights used in validation."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.teacher_training: list[bool] = []
        self.val_weights: list[torch.Tensor] = []

    def step(self, batch, stage):
        x, _ = batch
        with torch.no_grad():
            target = self.teacher(x)
        self.teacher_training.append(self.teacher.training)
        if stage == "val":
            self.val_weights.append(self.student[0].weight.detach().clone())
        loss = ((self.student(x) - target) ** 2).mean()
        return {"loss": loss, "mse": loss.detach(), "const": torch.tensor(1.0)}


class Killed(Exception):
    pass


class KillAtEpoch(Callback):
    def __init__(self, epoch: int, error: type[BaseException] = Killed) -> None:
        self.epoch, self.error = epoch, error

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise self.error


def data(n: int = 32, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 4, generator=g), torch.zeros(n))


def loaders(batch_size: int = 8) -> tuple[DataLoader, DataLoader]:
    """Fresh loaders each call (as in a new process); the train loader shuffles."""
    train = DataLoader(data(), batch_size=batch_size, shuffle=True)
    return train, DataLoader(data(16, seed=1), batch_size=batch_size)


def make(cfg: TrainConfig, init_seed: int = 0, module_cls: type = KD) -> DistillModule:
    """The teacher is the same every time (pretrained, not in checkpoints); the student not."""
    torch.manual_seed(7)
    teacher = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    torch.manual_seed(init_seed)
    student = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 3))
    return module_cls(student, cfg, teacher=teacher)


def config(**kw) -> TrainConfig:
    base = {"epochs": 2, "lr": 1e-2, "warmup_ratio": 0.25, "progress": False}
    return TrainConfig(**(base | kw))


def student_params(module: DistillModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.student.state_dict().items()}


@pytest.mark.parametrize("ema", [None, 0.7])
def test_resume_after_one_epoch_matches_uninterrupted_run(tmp_path, ema):
    cfg = config(ema_decay=ema)
    full = make(cfg)
    fit(full, *loaders(), cfg, tmp_path / "full")

    killed = make(cfg)
    with pytest.raises(Killed):
        fit(killed, *loaders(), cfg, tmp_path / "resumed", callbacks=[KillAtEpoch(1)])
    assert load_torch(tmp_path / "resumed/checkpoints/last.ckpt")["epoch"] == 0
    # a new process: different init and global RNG; everything comes from last.ckpt
    torch.manual_seed(123)
    resumed = make(cfg, init_seed=99)
    result = fit(resumed, *loaders(), cfg, tmp_path / "resumed")

    assert result.resumed_from == tmp_path / "resumed/checkpoints/last.ckpt"
    for name, value in student_params(full).items():
        torch.testing.assert_close(student_params(resumed)[name], value, rtol=0, atol=1e-6)
    a = load_torch(tmp_path / "full/checkpoints/last.ckpt")
    b = load_torch(result.last_path)
    for key in ("state_dict", "raw_student_state"):
        for name, value in a.get(key, {}).items():
            torch.testing.assert_close(b[key][name], value, rtol=0, atol=1e-6)
    assert [r["epoch"] for r in result.history] == [0, 1]
    assert a["global_step"] == b["global_step"] == 8


def test_ctrl_c_mid_training_is_a_keyboard_interrupt_and_resumes(tmp_path):
    """Lightning would end a Ctrl-C with exit(1) and SIGINT ignored; fit re-raises it."""
    cfg = config()
    handler = signal.getsignal(signal.SIGINT)
    ctrl_c = KillAtEpoch(1, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        fit(make(cfg), *loaders(), cfg, tmp_path / "run", callbacks=[ctrl_c])
    assert signal.getsignal(signal.SIGINT) is handler
    assert load_torch(tmp_path / "run/checkpoints/last.ckpt")["epoch"] == 0
    resumed = fit(make(cfg), *loaders(), cfg, tmp_path / "run")
    assert resumed.resumed_from is not None and [r["epoch"] for r in resumed.history] == [0, 1]


def test_teacher_frozen_eval_and_not_checkpointed(tmp_path):
    cfg = config()
    module = make(cfg)
    before = {k: v.clone() for k, v in module.teacher.state_dict().items()}
    result = fit(module, *loaders(), cfg, tmp_path)
    assert module.teacher_training and not any(module.teacher_training)
    module.train()  # what Lightning calls: the teacher must stay in eval mode
    assert module.student.training and not module.teacher.training
    assert not any(p.requires_grad for p in module.teacher.parameters())
    for k, v in module.teacher.state_dict().items():
        assert torch.equal(v, before[k])
    trainable = {id(p) for _, p in module.trainable_parameters()}
    assert trainable == {id(p) for p in module.student.parameters()}
    ckpt = load_torch(result.last_path)
    assert ckpt["state_dict"] and not any(k.startswith("teacher.") for k in ckpt["state_dict"])


def test_checkpoints_config_and_history_files(tmp_path):
    cfg = config(save_every_n_epochs=1)
    result = fit(make(cfg), *loaders(), cfg, tmp_path)
    names = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert names == {"best.ckpt", "last.ckpt", "epoch=0.ckpt", "epoch=1.ckpt"}
    assert result.best_path == tmp_path / "checkpoints/best.ckpt"
    dumped = cfg.model_dump(mode="json")
    for name in names:
        ckpt = load_torch(tmp_path / "checkpoints" / name)  # weights_only=True
        assert ckpt["hyper_parameters"]["train"] == dumped
    assert json.loads((tmp_path / "train_config.json").read_text())["train"] == dumped
    history = json.loads((tmp_path / "history.json").read_text())
    assert history == result.history and len(history) == 2
    assert result.best_score == pytest.approx(min(r["val_loss"] for r in history))
    assert {"train_loss", "train_mse", "val_loss", "val_mse", "lr", "step"} <= set(history[0])
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [float(r["val_loss"]) for r in rows] == pytest.approx([r["val_loss"] for r in history])
    state, hparams = student_state_from_checkpoint(result.best_path)
    assert set(state) == set(make(cfg).student.state_dict()) and hparams["train"] == dumped


def test_early_stopping_stops_when_monitor_stalls(tmp_path):
    cfg = config(epochs=10, monitor="val_const", patience=2)
    result = fit(make(cfg), *loaders(), cfg, tmp_path)
    assert result.stopped_early
    assert [r["epoch"] for r in result.history] == [0, 1, 2]


@pytest.mark.parametrize("extra", [{}, {"epochs": 10, "monitor": "val_const", "patience": 1}])
def test_rerunning_a_finished_run_changes_nothing(tmp_path, extra):
    cfg = config(ema_decay=0.5, **extra)
    first = make(cfg)
    done = fit(first, *loaders(), cfg, tmp_path)
    again = make(cfg, init_seed=5)
    result = fit(again, *loaders(), cfg, tmp_path)
    assert result.resumed_from is not None and result.history == done.history
    for name, value in student_params(first).items():
        assert torch.equal(student_params(again)[name], value)


def test_configs_are_stored_as_plain_data_and_objects_refused(tmp_path):
    class Saves(KD):
        def __init__(self, student, cfg, teacher=None):
            super().__init__(student, cfg, teacher=teacher)
            self.save_hyperparameters()  # would pickle the student into every checkpoint

    cfg = config(epochs=1)
    module = make(cfg)
    module.add_config("data", {"fasta": tmp_path / "x.fasta", "k": (1, 2)})
    result = fit(module, *loaders(), cfg, tmp_path / "ok")
    assert load_torch(result.last_path)["hyper_parameters"]["data"] == {
        "fasta": str(tmp_path / "x.fasta"),
        "k": [1, 2],
    }
    with pytest.raises(ConfigError, match="add_config"):
        fit(make(cfg, module_cls=Saves), *loaders(), cfg, tmp_path / "bad")


def test_missing_monitor_is_config_error(tmp_path):
    cfg = config(epochs=1, monitor="val_nope")
    with pytest.raises(ConfigError, match="val_nope"):
        fit(make(cfg), *loaders(), cfg, tmp_path)


def test_no_val_loader_monitors_train_metric(tmp_path):
    cfg = config(epochs=1)
    result = fit(make(cfg), loaders()[0], None, cfg, tmp_path)
    assert result.best_score == pytest.approx(result.history[0]["train_loss"])


class ClipSpy(KD):
    """Scales the loss so gradients are huge; records the grad norm after Lightning clips."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.norms: list[float] = []

    def step(self, batch, stage):
        out = super().step(batch, stage)
        out["loss"] = out["loss"] * 1e4
        return out

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, **kw):
        super().configure_gradient_clipping(optimizer, gradient_clip_val, **kw)
        grads = [p.grad for p in self.student.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def test_clipping_and_accumulation_configured_and_applied(tmp_path):
    cfg = config(epochs=1, grad_clip=0.5, accumulate=2)
    trainer = build_trainer(cfg, tmp_path / "t")
    assert trainer.gradient_clip_val == 0.5 and trainer.gradient_clip_algorithm == "norm"
    assert trainer.accumulate_grad_batches == 2
    assert trainer.precision == "32-true" and trainer.max_epochs == 1
    module = make(cfg, module_cls=ClipSpy)
    result = fit(module, *loaders(), cfg, tmp_path / "run")
    assert len(module.norms) == 2  # 4 batches, 2 per optimizer step
    assert max(module.norms) <= 0.5 + 1e-4
    assert load_torch(result.last_path)["global_step"] == 2


class Trajectory(Callback):
    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, *args):
        self.weights.append(student_params(pl_module))


def test_ema_matches_analytic_average_and_is_used_for_validation(tmp_path):
    decay = 0.5
    cfg = config(ema_decay=decay)
    module = make(cfg)
    expected = student_params(module)  # e_0 = initial weights
    spy = Trajectory()
    result = fit(module, *loaders(), cfg, tmp_path, callbacks=[spy])
    assert len(spy.weights) == 8
    for step in spy.weights:
        expected = {k: decay * expected[k] + (1 - decay) * step[k] for k in expected}
    ckpt = load_torch(result.last_path)
    raw = ckpt["raw_student_state"]
    for name, value in expected.items():
        torch.testing.assert_close(ckpt["state_dict"]["student." + name], value)
        torch.testing.assert_close(raw[name], spy.weights[-1][name])
        torch.testing.assert_close(module.student.state_dict()[name], value)
    assert not torch.allclose(raw["0.weight"], expected["0.weight"], atol=1e-4)
    torch.testing.assert_close(module.val_weights[-1], expected["0.weight"])


def test_bf16_mixed_precision_on_cpu_trains(tmp_path):
    cfg = config(epochs=1, precision="bf16-mixed")
    module = make(cfg)
    before = student_params(module)
    result = fit(module, *loaders(), cfg, tmp_path)
    assert math.isfinite(result.history[0]["train_loss"])
    assert not torch.equal(module.student.state_dict()["0.weight"], before["0.weight"])


def test_corrupt_last_checkpoint_is_checkpoint_error(tmp_path):
    cfg = config(epochs=1)
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError) as err:
        fit(make(cfg), *loaders(), cfg, tmp_path)
    assert str(last) in str(err.value) and err.value.fix


def test_resuming_another_network_is_one_checkpoint_error_before_writing(tmp_path):
    cfg = config(epochs=1)
    fit(make(cfg), *loaders(), cfg, tmp_path)
    written = (tmp_path / "train_config.json").read_bytes()
    torch.manual_seed(0)
    wider = KD(nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.2), nn.Linear(16, 3)), config(epochs=2),
               teacher=make(cfg).teacher)  # fmt: skip
    with pytest.raises(CheckpointError, match="another network") as err:
        fit(wider, *loaders(), config(epochs=2), tmp_path)
    assert "student.0.bias (8,) -> (16,) and 2 more" in str(err.value)  # .0.weight, .2.weight
    assert str(tmp_path / "checkpoints") in err.value.fix
    assert (tmp_path / "train_config.json").read_bytes() == written


def test_step_without_loss_is_model_error(tmp_path):
    class NoLoss(KD):
        def step(self, batch, stage):
            return {"mse": super().step(batch, stage)["mse"]}

    cfg = config(epochs=1)
    with pytest.raises(ModelError, match="no 'loss'"):
        fit(make(cfg, module_cls=NoLoss), *loaders(), cfg, tmp_path)


@settings(max_examples=40, deadline=None)
@given(total=st.integers(1, 500), ratio=st.floats(0, 0.99))
def test_warmup_cosine_shape(total, ratio):
    warmup = int(round(ratio * total))
    f = warmup_cosine(total, warmup)
    values = [f(s) for s in range(total)]
    assert all(0 < v <= 1 for v in values)
    assert values[:warmup] == sorted(values[:warmup])
    tail = values[warmup:]
    assert all(a >= b for a, b in zip(tail, tail[1:], strict=False))
    assert f(total) == pytest.approx(0.0, abs=1e-12)


BAD_VALUES = st.one_of(
    st.tuples(st.just("warmup_ratio"), st.floats(1, 10) | st.floats(-10, 0, exclude_max=True)),
    st.tuples(st.just("ema_decay"), st.floats(1, 10) | st.floats(-10, 0)),
    st.tuples(st.just("lr"), st.floats(-10, 0)),
    st.tuples(st.sampled_from(["accumulate", "epochs", "patience"]), st.integers(-10, 0)),
    st.tuples(
        st.just("precision"),
        st.text(max_size=8).filter(lambda t: t not in typing.get_args(Precision)),
    ),
    st.tuples(st.just("mode"), st.sampled_from(["minimum", "MAX", ""])),
)


@settings(max_examples=40, deadline=None)
@given(bad=BAD_VALUES)
def test_invalid_config_values_are_config_errors(bad):
    field, value = bad
    with pytest.raises(ConfigError, match=field):
        resolve(TrainConfig, None, **{field: value})


class Worsening(KD):
    """Validation loss that gets worse every epoch: best.ckpt stays at epoch 0."""

    def step(self, batch, stage):
        out = super().step(batch, stage)
        if stage == "val":
            out["loss"] = out["loss"].detach() * 0 + float(self.current_epoch)
        return out


def test_last_checkpoint_is_the_last_epoch_even_when_it_is_not_the_best(tmp_path):
    cfg = config(epochs=3)
    fit(make(cfg, module_cls=Worsening), *loaders(), cfg, tmp_path)
    assert load_torch(tmp_path / "checkpoints/best.ckpt")["epoch"] == 0
    assert load_torch(tmp_path / "checkpoints/last.ckpt")["epoch"] == 2


@pytest.mark.parametrize("how", ["move", "copy"])
def test_moved_or_copied_run_resumes_from_its_own_checkpoints(tmp_path, how):
    import shutil

    cfg = config(epochs=3)
    done = fit(make(cfg), *loaders(), cfg, tmp_path / "old")
    (shutil.move if how == "move" else shutil.copytree)(tmp_path / "old", tmp_path / "new")
    result = fit(make(cfg), *loaders(), cfg, tmp_path / "new")  # finished: nothing to train
    assert result.best_score == pytest.approx(done.best_score)
    assert result.resumed_from == tmp_path / "new/checkpoints/last.ckpt"
    assert result.best_path.parent == (tmp_path / "new/checkpoints").resolve()
    state = load_torch(result.last_path)["callbacks"]
    dirs = {s["dirpath"] for s in state.values() if isinstance(s, dict) and "dirpath" in s}
    assert dirs == {str((tmp_path / "new/checkpoints").resolve())}
    if how == "copy":  # the original is untouched
        assert load_torch(tmp_path / "old/checkpoints/last.ckpt")["epoch"] == 2


def test_damaged_tensor_bytes_in_a_checkpoint_are_caught(tmp_path):
    cfg = config(epochs=1)
    result = fit(make(cfg), *loaders(), cfg, tmp_path / "run")
    raw = torch.load(result.last_path, weights_only=True)  # digest still inside
    key = next(iter(raw["state_dict"]))
    raw["state_dict"][key] = raw["state_dict"][key] + 1e-3  # bytes changed, pickle intact
    torch.save(raw, result.last_path)
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        fit(make(cfg), *loaders(), cfg, tmp_path / "run")


def test_lr_scales_set_each_group_and_zero_freezes_a_prefix(tmp_path):
    cfg = config(lr_scales={"student.0.": 0.0, "student.2.bias": 0.5})
    module = make(cfg)
    before = student_params(module)
    fit(module, *loaders(), cfg, tmp_path)
    after = student_params(module)
    assert torch.equal(after["0.weight"], before["0.weight"])  # scale 0: untouched (no decay)
    assert torch.equal(after["0.bias"], before["0.bias"])
    assert not torch.equal(after["2.weight"], before["2.weight"])
    optimizer = module.trainer.optimizers[0]
    base = {(g["weight_decay"] > 0, g["initial_lr"] / cfg.lr) for g in optimizer.param_groups}
    assert base == {(True, 0.0), (False, 0.0), (True, 1.0), (False, 0.5)}
    names = {id(p): n for n, p in module.named_parameters()}
    for group in optimizer.param_groups:
        for param in group["params"]:
            name = names[id(param)]
            want = 0.0 if name.startswith("student.0.") else 0.5 if name == "student.2.bias" else 1
            assert group["initial_lr"] == pytest.approx(cfg.lr * want), name


@pytest.mark.parametrize(
    ("scales", "want"),
    [({}, 1.0), ({"student.": 0.1}, 0.1), ({"student.": 0.1, "student.b.": 0.3}, 0.3),
     ({"student.b.c.x": 2.0}, 1.0), ({"": 0.5, "student.b.c.": 0.0}, 0.0), ({"b.": 9.0}, 1.0)],
)  # fmt: skip
def test_lr_scale_takes_the_longest_matching_prefix(scales, want) -> None:
    assert lr_scale("student.b.c.weight", scales) == want
