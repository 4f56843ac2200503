"""INT8 quantization: dynamic for Linear (attention projections included), static post-training
quantization with a calibration set for Conv1d (BatchNorm folded in first).

Weights are stored as plain ``int8`` tensors with ``float32`` per-output-channel scales (symmetric),
activation ranges as float scale / int zero point buffers, so a quantized model is an ordinary
safetensors state dict. At run time the ``native`` backend packs them once for PyTorch's CPU INT8
kernels (fbgemm / x86 / qnnpack: ``quantized::linear_dynamic`` and ``quantized::conv1d``); the
``reference`` backend dequantizes and runs float ops with the same rounding (portable, not faster).
Why not torchao / pt2e: see docs/compress.md (both were tried with torch 2.13 + torchao 0.18).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.fx
from torch import Tensor, nn

from protdistill.compress.int8 import QuantConv1d, QuantLinear, conv_args, quantize_weight
from protdistill.compress.surgery import set_module, weighted_kinds
from protdistill.errors import ModelError

__all__ = ["QuantConv1d", "QuantLinear", "fold_batchnorm", "quantize_model", "quantize_weight"]

#: Layers that hold weights but stay in float (recorded in the report as "kept float").
KEPT_FLOAT = (nn.Embedding, nn.LayerNorm, nn.BatchNorm1d)
#: Weighted layer types we refuse to silently skip: their maths would need their own kernels.
UNSUPPORTED = (
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.MultiheadAttention,
    nn.LSTM,
    nn.GRU,
    nn.RNN,
    nn.Bilinear,
)


# ----------------------------------------------------------------------------- BN folding
def _fold_pairs(parent: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) child names where the conv's output feeds only that BatchNorm1d (via torch.fx)."""
    children = dict(parent.named_children())
    if not any(isinstance(m, nn.Conv1d) for m in children.values()):
        return []
    try:
        graph = torch.fx.symbolic_trace(parent).graph
    except Exception:  # untraceable parents keep their BatchNorm in float (correct, slower)
        return []
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(children.get(node.target), nn.Conv1d):
            continue
        users = list(node.users)
        if len(users) != 1 or users[0].op != "call_module":
            continue
        bn = users[0].target
        if isinstance(children.get(bn), nn.BatchNorm1d) and calls[bn] == calls[node.target] == 1:
            pairs.append((node.target, bn))
    return pairs


def fold_batchnorm(model: nn.Module) -> list[str]:
    """Fold every BatchNorm1d fed only by a Conv1d into that conv (eval statistics); the BN
    becomes ``nn.Identity``. Returns the folded conv paths."""
    folded = []
    for path, parent in list(model.named_modules()):
        for conv_name, bn_name in _fold_pairs(parent):
            conv, bn = getattr(parent, conv_name), getattr(parent, bn_name)
            if not bn.track_running_stats or bn.running_var is None:
                continue
            with torch.no_grad():
                std = torch.sqrt(bn.running_var + bn.eps)
                gamma = bn.weight if bn.affine else torch.ones_like(std)
                beta = bn.bias if bn.affine else torch.zeros_like(std)
                factor = gamma / std
                new = nn.Conv1d(**conv_args(conv) | {"bias": True}, padding_mode=conv.padding_mode)
                new.weight.copy_(conv.weight * factor[:, None, None])
                bias = conv.bias if conv.bias is not None else torch.zeros_like(std)
                new.bias.copy_((bias - bn.running_mean) * factor + beta)
            setattr(parent, conv_name, new.to(conv.weight.device))
            setattr(parent, bn_name, nn.Identity())
            folded.append(f"{path}.{conv_name}" if path else conv_name)
    return folded


# ----------------------------------------------------------------------------- model swap
def check_supported(model: nn.Module, skip: Iterable[str] = ()) -> None:
    """Raise :class:`ModelError` naming the first weighted layer INT8 cannot handle."""
    skip = tuple(skip)
    for path, module in model.named_modules():
        if any(path == s or path.startswith(s + ".") for s in skip):
            continue
        if isinstance(module, UNSUPPORTED):
            raise ModelError(
                f"layer {path!r} ({type(module).__name__}) is not supported by INT8 quantization",
                record=path,
                fix=f"leave it in float with --skip {path}, or quantize without it",
            )
        if isinstance(module, nn.Conv1d) and module.padding_mode != "zeros":
            raise ModelError(
                f"layer {path!r} (Conv1d, padding_mode={module.padding_mode!r}) is not supported "
                "by INT8 quantization (zero padding only)",
                record=path,
                fix=f"leave it in float with --skip {path}",
            )


def _targets(model: nn.Module, kinds: tuple[type, ...], skip: tuple[str, ...]) -> list[str]:
    return [
        p
        for p, m in model.named_modules()
        if type(m) in kinds and not any(p == s or p.startswith(s + ".") for s in skip)
    ]


@torch.no_grad()
def calibrate_ranges(
    model: nn.Module, paths: list[str], run_batches: Callable[[nn.Module], None]
) -> dict[str, tuple[float, float, float, float]]:
    """Observed (in_min, in_max, out_min, out_max) of each module in ``paths`` while
    ``run_batches(model)`` feeds the calibration set."""
    ranges: dict[str, list[float]] = {}

    def hook(path: str):
        def record(_m: nn.Module, inputs: tuple, output: Tensor) -> None:
            x = inputs[0]
            new = [x.min().item(), x.max().item(), output.min().item(), output.max().item()]
            old = ranges.get(path, new)
            ranges[path] = [min(old[0], new[0]), max(old[1], new[1])] + [
                min(old[2], new[2]),
                max(old[3], new[3]),
            ]

        return record

    handles = [model.get_submodule(p).register_forward_hook(hook(p)) for p in paths]
    try:
        model.eval()
        run_batches(model)
    finally:
        for h in handles:
            h.remove()
    missing = [p for p in paths if p not in ranges]
    if missing:
        raise ModelError(
            f"layer {missing[0]!r} never ran on the calibration set",
            record=missing[0],
            fix="check that the calibration batches reach it, or --skip it",
        )
    return {p: tuple(v) for p, v in ranges.items()}  # type: ignore[misc]


def quantize_model(
    model: nn.Module,
    *,
    run_batches: Callable[[nn.Module], None] | None = None,
    linear: bool = True,
    conv: bool = True,
    skip: Iterable[str] = (),
    backend: str = "native",
) -> dict[str, Any]:
    """Quantize ``model`` in place: Linear -> :class:`QuantLinear`, Conv1d (after BN folding,
    calibrated with ``run_batches``) -> :class:`QuantConv1d`. Returns a summary dict."""
    skip = tuple(skip)
    check_supported(model, skip)
    model.eval()
    summary: dict[str, Any] = {"linear": [], "conv": [], "folded_batchnorm": [], "kept_float": []}
    convs = _targets(model, (nn.Conv1d,), skip) if conv else []
    if convs:
        if run_batches is None:
            raise ModelError(
                f"static quantization of {convs[0]!r} (Conv1d) needs a calibration set",
                record=convs[0],
                fix="pass calibration data (--pairs/--fasta or a run directory)",
            )
        summary["folded_batchnorm"] = fold_batchnorm(model)
        ranges = calibrate_ranges(model, convs, run_batches)
        for path in convs:
            lo_in, hi_in, lo_out, hi_out = ranges[path]
            q = QuantConv1d.from_float(
                model.get_submodule(path), (lo_in, hi_in), (lo_out, hi_out), backend
            )
            set_module(model, path, q)
        summary["conv"] = convs
    if linear:
        for path in _targets(model, (nn.Linear,), skip):
            set_module(model, path, QuantLinear.from_float(model.get_submodule(path), backend))
            summary["linear"].append(path)
    summary["kept_float"] = [
        p for p, m in model.named_modules() if isinstance(m, KEPT_FLOAT + (nn.Linear, nn.Conv1d))
    ]
    if not summary["linear"] and not summary["conv"]:
        raise ModelError(
            f"nothing to quantize in {type(model).__name__}: no Linear or Conv1d layers "
            f"(weighted layers found: {weighted_kinds(model)})",
            record=type(model).__name__,
            fix="quantization covers Linear (dynamic) and Conv1d (static) layers",
        )
    return summary
