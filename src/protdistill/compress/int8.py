"""INT8 layers: :class:`QuantLinear` (dynamic) and :class:`QuantConv1d` (static), stored as plain
``int8`` tensors with ``float32`` per-output-channel scales, so a quantized model is an ordinary
safetensors state dict (see :mod:`protdistill.compress.quantize` for how a model is converted)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from protdistill.errors import ModelError

BACKENDS = ("native", "reference")
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
        spec = {k: v for k, v in conv_args(conv).items()}
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


def conv_args(conv: nn.Conv1d) -> dict[str, Any]:
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
