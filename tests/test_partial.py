"""Partial-distillation helpers: evenly spaced layer choice, copying, freezing, hybrids."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from protdistill.api.distill import detect_family
from protdistill.distill.config import DistillConfig
from protdistill.distill.partial import (
    copy_layers,
    copy_part,
    copy_shared,
    evenly_spaced,
    freeze,
    hybrid,
    identical,
    trainable_count,
)
from protdistill.errors import CheckpointError, ConfigError, ModelError


def test_evenly_spaced_matches_distilbert_style_examples() -> None:
    assert evenly_spaced(6, 3) == [0, 2, 5]
    assert evenly_spaced(6, 2) == [0, 5]
    assert evenly_spaced(6, 1) == [5]
    assert evenly_spaced(12, 6) == [0, 2, 4, 7, 9, 11]
    assert evenly_spaced(4, 4) == [0, 1, 2, 3]


@given(st.integers(1, 48).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))))
def test_evenly_spaced_is_strictly_increasing_and_keeps_the_last_layer(nk: tuple[int, int]) -> None:
    n, k = nk
    idx = evenly_spaced(n, k)
    assert len(idx) == k and idx[-1] == n - 1
    assert all(a < b for a, b in zip(idx, idx[1:], strict=False))
    assert all(0 <= i < n for i in idx)


@pytest.mark.parametrize("k", [0, 7])
def test_evenly_spaced_rejects_impossible_sizes(k: int) -> None:
    with pytest.raises(ConfigError, match="student_layers"):
        evenly_spaced(6, k)


def _stack(n: int, width: int = 4) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(width, width) for _ in range(n))


def test_copy_layers_copies_chosen_teacher_layers() -> None:
    torch.manual_seed(0)
    teacher, student = _stack(6), _stack(3)
    assert copy_layers(teacher, student) == [0, 2, 5]
    for i, j in enumerate([0, 2, 5]):
        assert identical(student[i], teacher[j])
    with pytest.raises(ModelError, match="student layer 0 does not match teacher layer 5"):
        copy_layers(teacher, _stack(1, width=3))


class _EncDec(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.encoder = nn.Linear(width, width)
        self.decoder = nn.Linear(width, 2)


def test_copy_part_freeze_shared_and_hybrid() -> None:
    torch.manual_seed(0)
    a, b = _EncDec(), _EncDec()
    assert not identical(a, b)
    copy_part(a.encoder, b.encoder, "encoder")
    freeze(b.encoder)
    assert identical(a.encoder, b.encoder) and trainable_count(b) == 4 * 2 + 2
    with pytest.raises(ModelError, match="architectures differ"):
        copy_part(a.encoder, _EncDec(width=3).encoder, "encoder")
    c = _EncDec()
    assert set(copy_shared(a, c, skip=("decoder.",))) == {"encoder.weight", "encoder.bias"}
    h = hybrid(a, c, ("encoder", "decoder"))
    assert identical(h.encoder, a.encoder) and identical(h.decoder, c.decoder)
    assert h.encoder is not a.encoder


def test_detect_family(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no teacher"):
        detect_family(DistillConfig())
    with pytest.raises(CheckpointError, match="teacher checkpoint not found"):
        detect_family(DistillConfig(teacher_checkpoint=str(tmp_path / "t.pt")))
    (tmp_path / "esm").mkdir()
    (tmp_path / "esm" / "config.json").write_text("{}")
    assert detect_family(DistillConfig(teacher_checkpoint=str(tmp_path / "esm"))) == "esm"
    assert detect_family(DistillConfig(teacher_checkpoint="facebook/esm2_t6_8M_UR50D")) == "esm"
    with pytest.raises(CheckpointError, match="no config.json"):
        detect_family(DistillConfig(teacher_checkpoint=str(tmp_path)))
