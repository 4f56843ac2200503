"""Shared basics: error messages, config resolution, alphabet, atomic writes, CLI root."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from protdistill import __version__, alphabet
from protdistill.cli.main import app
from protdistill.config import Config, resolve
from protdistill.errors import ConfigError, InputError
from protdistill.io import atomic


class _Demo(Config):
    epochs: int = 3
    lr: float = 1e-3


def test_error_names_file_record_and_fix() -> None:
    err = InputError("bad letter 'J'", path="x.fasta", record="P1 (line 3)", fix="remove it")
    assert str(err) == "x.fasta: P1 (line 3): bad letter 'J' (fix: remove it)"


def test_resolve_layers_defaults_yaml_and_overrides(tmp_path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("epochs: 7\nlr: 0.5\n")
    cfg = resolve(_Demo, cfg_file, lr=0.1, epochs=None)
    assert (cfg.epochs, cfg.lr) == (7, 0.1)
    assert resolve(_Demo).epochs == 3


def test_resolve_rejects_unknown_and_invalid_fields(tmp_path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("epoch: 7\n")
    with pytest.raises(ConfigError, match="epoch"):
        resolve(_Demo, cfg_file)
    with pytest.raises(ConfigError, match="epochs"):
        resolve(_Demo, epochs="many")
    with pytest.raises(ConfigError, match="not found"):
        resolve(_Demo, tmp_path / "missing.yaml")


@given(st.lists(st.text(alphabet=alphabet.AMINO_ACIDS + "X", min_size=1, max_size=30), min_size=1))
def test_encode_decode_round_trip_and_mask(seqs: list[str]) -> None:
    tokens, mask = alphabet.encode_batch(seqs)
    assert tokens.shape == (len(seqs), max(map(len, seqs)))
    assert mask.sum(1).tolist() == [len(s) for s in seqs]
    assert [alphabet.decode(t) for t in tokens] == seqs


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path) -> None:
    target = tmp_path / "m.json"
    atomic.write_json(target, {"a": 1})

    def broken(path) -> None:
        path.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic.atomic_write(target, broken)
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_save_tensors_round_trip(tmp_path) -> None:
    from safetensors.torch import load_file

    x = torch.randn(3, 4)
    atomic.save_tensors(tmp_path / "t.safetensors", {"x": x})
    assert torch.equal(load_file(tmp_path / "t.safetensors")["x"], x)


def test_cli_version_and_help() -> None:
    runner = CliRunner()
    assert __version__ in runner.invoke(app, ["--version"]).output
    assert runner.invoke(app, ["--help"]).exit_code == 0
