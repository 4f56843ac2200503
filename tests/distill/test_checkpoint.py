"""Checkpoint files: safetensors + JSON meta round trips, safe torch.load, atomic Lightning IO."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from protdistill.distill.callbacks import AtomicCheckpointIO
from protdistill.distill.checkpoint import (
    load_model_state,
    load_torch,
    save_model,
    student_state_from_checkpoint,
)
from protdistill.errors import CheckpointError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.embed.weight  # shared storage


@settings(max_examples=25, deadline=None)
@given(meta=st.dictionaries(st.text(max_size=8), JSON, max_size=4))
def test_save_load_round_trip_any_json_meta(tmp_path_factory, meta):
    path = tmp_path_factory.mktemp("m") / "model.safetensors"
    model = nn.Linear(3, 2)
    save_model(path, model, meta)
    state, loaded = load_model_state(path)
    assert loaded == meta
    assert state.keys() == model.state_dict().keys()
    for k, v in model.state_dict().items():
        assert torch.equal(state[k], v)


def test_tied_weights_paths_and_state_dict_input(tmp_path):
    model = Tied()
    save_model(tmp_path / "tied.safetensors", model, {"dir": Path("/x/y")})
    state, meta = load_model_state(tmp_path / "tied.safetensors")
    assert meta == {"dir": "/x/y"}
    assert torch.equal(state["embed.weight"], state["out.weight"])
    fresh = Tied()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.out.weight, model.embed.weight)
    save_model(tmp_path / "sd.safetensors", {"w": torch.arange(4.0)}, {})
    assert torch.equal(load_model_state(tmp_path / "sd.safetensors")[0]["w"], torch.arange(4.0))


def test_save_model_rejects_bad_meta_and_values(tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(CheckpointError, match="JSON") as err:
        save_model(path, nn.Linear(2, 2), {"obj": object()})
    assert str(path) in str(err.value) and not path.exists()
    with pytest.raises(CheckpointError, match="not a tensor"):
        save_model(path, {"w": [1.0]}, {})


def test_load_model_state_errors_name_file_and_fix(tmp_path):
    with pytest.raises(CheckpointError, match="not found") as err:
        load_model_state(tmp_path / "nope.safetensors")
    assert err.value.fix
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json header")
    with pytest.raises(CheckpointError, match="safetensors") as err:
        load_model_state(bad)
    assert str(bad) in str(err.value)


def test_load_torch_missing_corrupt_and_unsafe(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_torch(tmp_path / "none.ckpt")
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, good)
    assert load_torch(good)["epoch"] == 3
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="corrupt") as err:
        load_torch(truncated)
    assert str(truncated) in str(err.value) and err.value.fix
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"args": argparse.Namespace(a=1)}, unsafe)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_torch(unsafe)


def test_student_state_from_checkpoint(tmp_path):
    path = tmp_path / "x.ckpt"
    state = {"student.0.weight": torch.ones(2, 2), "objective.p": torch.zeros(1)}
    torch.save({"state_dict": state, "hyper_parameters": {"train": {"lr": 0.1}}}, path)
    student, hparams = student_state_from_checkpoint(path)
    assert list(student) == ["0.weight"] and hparams == {"train": {"lr": 0.1}}
    with pytest.raises(CheckpointError, match="no weights under"):
        student_state_from_checkpoint(path, prefix="nothing.")


def test_atomic_checkpoint_io_never_leaves_a_half_written_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    def dies_mid_write(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04half")
        raise KeyboardInterrupt  # killed while writing

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["epoch"] == 1
    assert os.listdir(path.parent) == ["last.ckpt"]


def test_atomic_checkpoint_io_loads_weights_only(tmp_path):
    path = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "args": argparse.Namespace(a=1)}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)


def test_stale_temp_files_are_removed(tmp_path):
    from protdistill.io.atomic import remove_stale_temps

    (tmp_path / ".last.ckpt.abc.tmp").write_bytes(b"half")
    (tmp_path / "last.ckpt").write_bytes(b"keep")
    assert remove_stale_temps(tmp_path, older_than=3600) == 0  # young: maybe a live writer's
    assert remove_stale_temps(tmp_path) == 1
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_flipped_bytes_in_saved_weights_are_caught(tmp_path):
    from protdistill.distill.checkpoint import load_model_state, save_model

    model = nn.Linear(64, 64)
    path = save_model(tmp_path / "m.safetensors", model, {"kind": "test"})
    state, meta = load_model_state(path)
    assert meta == {"kind": "test"} and torch.equal(state["weight"], model.weight)
    raw = bytearray(path.read_bytes())
    raw[-300:-44] = bytes(b ^ 0xFF for b in raw[-300:-44])  # inside the tensor data
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="do not match the sha256"):
        load_model_state(path)
