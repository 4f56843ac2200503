"""Module specs: a JSON description of every module a compression step replaced, so a compressed
model is rebuilt from its base architecture before its weights are loaded (nothing is pickled)."""

from __future__ import annotations

from typing import Any

from torch import nn

from protdistill.compress.int8 import QuantConv1d, QuantLinear
from protdistill.compress.lowrank import LowRankLinear
from protdistill.compress.surgery import get_module, set_module
from protdistill.errors import CheckpointError, ModelError


def module_spec(module: nn.Module) -> dict[str, Any]:
    """JSON constructor arguments of a module that compression can produce."""
    if isinstance(module, (QuantLinear, QuantConv1d, LowRankLinear)):
        return {"type": type(module).__name__, **module.spec()}
    if isinstance(module, nn.Linear):
        return {
            "type": "Linear",
            "in_features": module.in_features,
            "out_features": module.out_features,
            "bias": module.bias is not None,
        }
    if isinstance(module, nn.Conv1d):
        return {
            "type": "Conv1d",
            "in_channels": module.in_channels,
            "out_channels": module.out_channels,
            "kernel_size": module.kernel_size[0],
            "stride": module.stride[0],
            "padding": module.padding[0],
            "dilation": module.dilation[0],
            "groups": module.groups,
            "bias": module.bias is not None,
            "padding_mode": module.padding_mode,
        }
    if isinstance(module, nn.BatchNorm1d):
        return {
            "type": "BatchNorm1d",
            "num_features": module.num_features,
            "eps": module.eps,
            "momentum": module.momentum,
            "affine": module.affine,
            "track_running_stats": module.track_running_stats,
        }
    if isinstance(module, nn.Identity):
        return {"type": "Identity"}
    raise ModelError(
        f"cannot describe a {type(module).__name__} in a compression manifest",
        record=type(module).__name__,
        fix="compression only replaces Linear, Conv1d, BatchNorm1d and its own modules",
    )


def build_module(spec: dict[str, Any]) -> nn.Module:
    """Inverse of :func:`module_spec` (fresh weights; load the state dict afterwards)."""
    kinds = {
        "Linear": nn.Linear,
        "Conv1d": nn.Conv1d,
        "BatchNorm1d": nn.BatchNorm1d,
        "Identity": nn.Identity,
        "QuantLinear": QuantLinear,
        "QuantConv1d": QuantConv1d,
        "LowRankLinear": LowRankLinear,
    }
    args = dict(spec)
    kind = args.pop("type", None)
    if kind not in kinds:
        raise CheckpointError(
            f"unknown module type {kind!r} in the manifest",
            record=str(spec),
            fix="upgrade protdistill or re-run compress with this version",
        )
    return kinds[kind](**args)


def apply_specs(model: nn.Module, specs: dict[str, dict[str, Any]]) -> nn.Module:
    """Replace modules (or set attributes, ``{"type": "attrs", ...}``) in manifest order."""
    for path, spec in specs.items():
        if spec.get("type") == "attrs":
            module = get_module(model, path)
            for key, value in spec["values"].items():
                setattr(module, key, value)
        else:
            set_module(model, path, build_module(spec))
    return model
