"""FeatureProjector.from_state: a saved projector comes back mapping exactly as before."""

from __future__ import annotations

import torch

from protdistill.distill.losses import FeatureProjector


def test_feature_projector_rebuilt_from_its_state_maps_alike() -> None:
    torch.manual_seed(0)
    projector = FeatureProjector(8, 20)
    rebuilt = FeatureProjector.from_state(projector.state_dict())
    x = torch.randn(3, 8)
    assert (rebuilt.student_dim, rebuilt.teacher_dim) == (8, 20)
    assert torch.equal(rebuilt(x), projector(x))
    no_bias = FeatureProjector.from_state(FeatureProjector(8, 20, bias=False).state_dict())
    assert no_bias.proj.bias is None
