"""Pair students: shapes, symmetry, padding invariance, gradients, map binning."""

from __future__ import annotations

import pytest
import torch

from protdistill.alphabet import encode_batch
from protdistill.students import build_student, count_parameters
from protdistill.tasks.ppi.maps import bin_matrix, bin_student_map, pad_maps, pool_map

SEQ_A = ["MKVLAAGIWWKKRDEST" * 3, "ACDEFGHIK"]
SEQ_B = ["PPGGSTQNRK" * 2, "MNQWYYFFHHKLAS" * 4]


@pytest.fixture(params=["resnet1d", "interaction"])
def student(request):
    torch.manual_seed(0)
    return build_student({"kind": request.param}).eval()


def _forward(model, seqs_a, seqs_b, pad_to: int = 0):
    ta, ma = encode_batch(seqs_a)
    tb, mb = encode_batch(seqs_b)
    if pad_to:
        ta = torch.nn.functional.pad(ta, (0, pad_to))
        ma = torch.nn.functional.pad(ma, (0, pad_to))
    return model(ta, ma, tb, mb)


def test_symmetric_score(student) -> None:
    ab, ba = _forward(student, SEQ_A, SEQ_B), _forward(student, SEQ_B, SEQ_A)
    assert ab.logits.shape == (2, 2)
    torch.testing.assert_close(ab.logits, ba.logits, atol=1e-5, rtol=0)


def test_extra_padding_changes_nothing(student) -> None:
    torch.testing.assert_close(
        _forward(student, SEQ_A, SEQ_B).logits,
        _forward(student, SEQ_A, SEQ_B, pad_to=13).logits,
        atol=1e-5,
        rtol=0,
    )


def test_sizes_and_gradients(student) -> None:
    n = count_parameters(student)
    assert 100_000 < n < 1_000_000
    student.train()
    out = _forward(student, SEQ_A, SEQ_B)
    out.logits.sum().backward()
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)


def test_interaction_map_shape_mask_and_transpose() -> None:
    torch.manual_seed(0)
    model = build_student({"kind": "interaction"}).eval()
    ab, ba = _forward(model, SEQ_A, SEQ_B), _forward(model, SEQ_B, SEQ_A)
    la, lb = max(map(len, SEQ_A)), max(map(len, SEQ_B))
    assert ab.interaction_map.shape == (2, la, lb)
    torch.testing.assert_close(ab.interaction_map, ba.interaction_map.transpose(1, 2))
    assert (ab.interaction_map[1, len(SEQ_A[1]) :] <= -1e3).all()


def test_bin_matrix_averages_only_covered_residues() -> None:
    bins = bin_matrix([10, 3], padded=12, map_residues=8, bins=4)
    assert bins.shape == (2, 4, 12)
    torch.testing.assert_close(bins[0].sum(1), torch.ones(4))
    assert bins[0, :, 8:].abs().sum() == 0  # beyond map_residues
    assert bins[1, 3].abs().sum() == 0 and bins[1, :, 3:].abs().sum() == 0  # short protein


def test_pool_map_matches_student_binning() -> None:
    residue_map = torch.rand(10, 7)
    pooled = pool_map(residue_map, map_residues=8, bins=4)
    assert pooled.shape == (4, 4)
    torch.testing.assert_close(pooled[0, 0], residue_map[:2, :2].mean())
    batch = bin_student_map(residue_map[None], bin_matrix([10], 10, 8, 4), bin_matrix([7], 7, 8, 4))
    torch.testing.assert_close(batch[0], pooled)
    maps, ma, mb = pad_maps([pooled, pooled[:2, :3]], 4)
    assert maps.shape == (2, 4, 4) and ma[1].sum() == 2 and mb[1].sum() == 3
