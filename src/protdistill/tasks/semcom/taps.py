"""What a DeepSC's Transformer layers compute inside one forward pass, for layer-wise distillation.

``with LayerTaps(model, {"encoder": [0, 1], "decoder": [1]}) as taps: model(...)`` keeps, for each
chosen layer, its output hidden states and its attention probabilities per head: self-attention
of transmitter layers; self- and cross-attention of receiver layers. PyTorch's Transformer layers
ask their attention for no weights; a pre-hook asks for them (per head) and leaves the layer's
output unchanged. Hooks are removed on exit.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

EPS = 1e-8


def student_to_teacher_layers(n_teacher: int, n_student: int) -> list[int]:
    """Teacher layer each student layer is taught to reproduce: the last of the block of teacher
    layers it stands for (TinyBERT's ``g(m) = m·N/M``), so the last layers always correspond."""
    return [(k + 1) * n_teacher // n_student - 1 for k in range(n_student)]


def _ask_weights(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return args, {**kwargs, "need_weights": True, "average_attn_weights": False}


class LayerTaps:
    """Hidden states ``hidden[(part, i)]`` ``(B, L, D)`` and attention probabilities
    ``attention[(part, i, kind)]`` ``(B, H, L_query, L_key)`` of the chosen layers
    (``part`` is ``"encoder"`` or ``"decoder"``; ``kind`` is ``"self"`` or ``"cross"``)."""

    def __init__(
        self, model: nn.Module, layers: dict[str, list[int]], attention: bool = True
    ) -> None:
        self.model, self.layers, self.attention = model, layers, attention
        self.hidden: dict[tuple[str, int], Tensor] = {}
        self.attn: dict[tuple[str, int, str], Tensor] = {}
        self._handles: list[RemovableHandle] = []
        self._fastpath = True

    def _stack(self, part: str) -> nn.ModuleList:
        return self.model.transmitter.layers if part == "encoder" else self.model.receiver.layers

    def _keep_hidden(self, key: tuple[str, int]):
        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
            self.hidden[key] = output

        return hook

    def _keep_attention(self, key: tuple[str, int, str]):
        def hook(_module: nn.Module, _inputs: Any, output: tuple[Tensor, Tensor]) -> None:
            self.attn[key] = output[1]

        return hook

    def _tap_attention(self, module: nn.MultiheadAttention, key: tuple[str, int, str]) -> None:
        self._handles.append(module.register_forward_pre_hook(_ask_weights, with_kwargs=True))
        self._handles.append(module.register_forward_hook(self._keep_attention(key)))

    def __enter__(self) -> LayerTaps:
        # the eval-mode fast path of encoder layers skips the attention module (and its hooks)
        self._fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        for part, indices in self.layers.items():
            stack = self._stack(part)
            for i in indices:
                layer = stack[i]
                self._handles.append(layer.register_forward_hook(self._keep_hidden((part, i))))
                if not self.attention:
                    continue
                self._tap_attention(layer.self_attn, (part, i, "self"))
                if part == "decoder":
                    self._tap_attention(layer.multihead_attn, (part, i, "cross"))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        torch.backends.mha.set_fastpath_enabled(self._fastpath)


def attention_row_kl(student: Tensor, teacher: Tensor, query_mask: Tensor) -> Tensor:
    """Mean over heads and valid query rows of ``KL(teacher ‖ student)`` between attention
    distributions ``(B, H, Lq, Lk)`` (padded keys hold probability 0 in both)."""
    s, t = student.float(), teacher.float()
    per_row = (t * (t.clamp_min(EPS).log() - s.clamp_min(EPS).log())).sum(-1)  # (B, H, Lq)
    rows = query_mask[:, None, :].expand_as(per_row)
    return per_row[rows].mean() if bool(rows.any()) else per_row.sum() * 0.0


def layer_losses(
    student: LayerTaps,
    teacher: LayerTaps,
    pairs: dict[str, list[tuple[int, int]]],
    masks: dict[str, Tensor],
) -> dict[str, Tensor]:
    """``{"hidden", "attention"}``: mean MSE of hidden states and mean attention row-KL over the
    ``(student layer, teacher layer)`` pairs of each part; ``masks[part]`` marks its valid
    positions (source tokens for the encoder, target prefix for the decoder)."""
    hidden, attention = [], []
    for part, mapped in pairs.items():
        valid = masks[part]
        for i, j in mapped:
            err = (student.hidden[(part, i)] - teacher.hidden[(part, j)]).pow(2).mean(-1)
            hidden.append(err[valid].mean())
            for kind in ("self", "cross") if part == "decoder" else ("self",):
                s_att = student.attn.get((part, i, kind))
                if s_att is not None:
                    t_att = teacher.attn[(part, j, kind)]
                    attention.append(attention_row_kl(s_att, t_att, valid))
    out = {"hidden": torch.stack(hidden).mean()} if hidden else {}
    if attention:
        out["attention"] = torch.stack(attention).mean()
    return out
