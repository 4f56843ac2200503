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

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from protdistill.compress.specs import weighted_kinds
from protdistill.errors import ModelError

BACKENDS = ("native", "reference")
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
_ACT_QMAX = 127  # 7-bit activations (reduce_range) so fbgemm/x86 kernels cannot overflow


def _native_available() -> bool:
    return any(
        e in torch.backends.quantized.supported_engines for e in ("x86", "fbgemm", "qnnpack")
    )


def quantize_weight(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric per-output-channel INT8: ``(qweight int8, scale float32 (out,))``."""
    w = weight.detach().float()
    scale = w.abs().flatten(1).amax(1).clamp(min=1e-8) / 127.0
    shape = (-1,) + (1,) * (w.dim() - 1)
    q = torch.round(w / scale.view(shape)).clamp(-127, 127).to(torch.int8)
    return q, scale


def _qtensor(q: Tensor, scale: Tensor) -> Tensor:
    with warnings.catch_warnings():  # quantized dtypes warn about their future removal
        warnings.simplefilter("ignore")
        zeros = torch.zeros(scale.numel(), dtype=torch.long)
        return torch._make_per_channel_quantized_tensor(q, scale.double(), zeros, 0)


def _act_qparams(lo: float, hi: float, qmax: int) -> tuple[float, int]:
    """Affine uint8 scale / zero point covering ``[min(lo, 0), max(hi, 0)]``."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / qmax, 1e-8)
    zero = int(min(max(round(-lo / scale), 0), qmax))
    return scale, zero


def _fake_quant(x: Tensor, scale: float, zero: int, qmax: int) -> Tensor:
    return (torch.clamp(torch.round(x / scale) + zero, 0, qmax) - zero) * scale


class _Packed(nn.Module):
    """Base: caches the packed native weights; any state-dict load invalidates the cache."""

    backend: str

    def __init__(self, backend: str) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ModelError(f"unknown quantization backend {backend!r}", fix=f"use {BACKENDS}")
        self.backend = backend if backend == "reference" or _native_available() else "reference"
        self._packed: Any = None
        self._register_load_state_dict_pre_hook(self._reset)

    def _reset(self, *args: Any, **kwargs: Any) -> None:
        self._packed = None

    def __getstate__(self) -> dict:  # deepcopy / pickle without the C++ packed object
        state = self.__dict__.copy()
        state["_packed"] = None
        return state


class QuantLinear(_Packed):
    """Dynamic INT8 Linear: int8 weights, activations quantized per batch at run time.

    Input (..., in_features) -> (..., out_features) float32.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, backend: str = "native"
    ) -> None:
        super().__init__(backend)
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("qweight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("scale", torch.ones(out_features))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)

    @classmethod
    def from_float(cls, linear: nn.Linear, backend: str = "native") -> QuantLinear:
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, backend)
        q.qweight, q.scale = quantize_weight(linear.weight)
        if linear.bias is not None:
            q.bias = linear.bias.detach().float().clone()
        return q

    def spec(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
        }

    def dequantized_weight(self) -> Tensor:
        return self.qweight.float() * self.scale[:, None]

    def forward(self, x: Tensor) -> Tensor:
        if self.backend == "reference":
            return F.linear(x, self.dequantized_weight(), self.bias)
        if self._packed is None:
            self._packed = torch.ops.quantized.linear_prepack(
                _qtensor(self.qweight, self.scale), self.bias
            )
        return torch.ops.quantized.linear_dynamic(x.float(), self._packed, reduce_range=True)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, int8 dynamic, backend={self.backend}"


class QuantConv1d(_Packed):
    """Static INT8 Conv1d: int8 weights, input / output ranges fixed by calibration.

    Input (B, C_in, L) float -> (B, C_out, L') float (quantized inside, dequantized on the way out).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        backend: str = "native",
    ) -> None:
        super().__init__(backend)
        # tuples, like nn.Conv1d, so model code reading ``conv.stride[0]`` keeps working
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = (kernel_size,), (stride,)
        self.padding, self.dilation, self.groups = (padding,), (dilation,), groups
        shape = (out_channels, in_channels // groups, kernel_size)
        self.register_buffer("qweight", torch.zeros(shape, dtype=torch.int8))
        self.register_buffer("scale", torch.ones(out_channels))
        self.register_buffer("bias", torch.zeros(out_channels) if bias else None)
        self.register_buffer("act_scale", torch.ones(2))  # input, output
        self.register_buffer("act_zero", torch.zeros(2, dtype=torch.long))

    @classmethod
    def from_float(
        cls,
        conv: nn.Conv1d,
        input_range: tuple[float, float],
        output_range: tuple[float, float],
        backend: str = "native",
    ) -> QuantConv1d:
        spec = {k: v for k, v in _conv_args(conv).items()}
        q = cls(**spec, backend=backend)
        q.qweight, q.scale = quantize_weight(conv.weight)
        if conv.bias is not None:
            q.bias = conv.bias.detach().float().clone()
        s_in, z_in = _act_qparams(*input_range, _ACT_QMAX)
        s_out, z_out = _act_qparams(*output_range, 255)
        q.act_scale = torch.tensor([s_in, s_out])
        q.act_zero = torch.tensor([z_in, z_out])
        return q

    def spec(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size[0],
            "stride": self.stride[0],
            "padding": self.padding[0],
            "dilation": self.dilation[0],
            "groups": self.groups,
            "bias": self.bias is not None,
        }

    def forward(self, x: Tensor) -> Tensor:
        (s_in, s_out), (z_in, z_out) = self.act_scale.tolist(), self.act_zero.tolist()
        if self.backend == "reference":
            w = self.qweight.float() * self.scale[:, None, None]
            y = F.conv1d(
                _fake_quant(x, s_in, z_in, _ACT_QMAX),
                w,
                self.bias,
                self.stride,
                self.padding,
                self.dilation,
                self.groups,
            )
            return _fake_quant(y, s_out, z_out, 255)
        if self._packed is None:
            self._packed = torch.ops.quantized.conv1d_prepack(
                _qtensor(self.qweight, self.scale),
                self.bias,
                list(self.stride),
                list(self.padding),
                list(self.dilation),
                self.groups,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qx = torch.quantize_per_tensor(x.float().contiguous(), s_in, z_in, torch.quint8)
        return torch.ops.quantized.conv1d(qx, self._packed, s_out, z_out).dequantize()

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size[0]}, "
            f"int8 static, backend={self.backend}"
        )


def _conv_args(conv: nn.Conv1d) -> dict[str, Any]:
    return {
        "in_channels": conv.in_channels,
        "out_channels": conv.out_channels,
        "kernel_size": conv.kernel_size[0],
        "stride": conv.stride[0],
        "padding": conv.padding[0],
        "dilation": conv.dilation[0],
        "groups": conv.groups,
        "bias": conv.bias is not None,
    }


# ----------------------------------------------------------------------------- BN folding
def _fold_pairs(parent: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) child names where the conv's output feeds only that BatchNorm1d (via torch.fx)."""
    import torch.fx

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
                new = nn.Conv1d(**_conv_args(conv) | {"bias": True}, padding_mode=conv.padding_mode)
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
    from protdistill.compress.specs import set_module

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
