"""Fewer-layer ESM-2 students and their distillation from an ESM-2 teacher.

The student is an ``EsmModel`` with the teacher's width, heads and vocabulary but ``n`` layers,
initialised DistilBERT-style: embeddings, final layer norm and the teacher layers at evenly spaced
indices are copied; the contact head keeps the regression weights of the copied layers' heads.
It is trained on hidden states (mapped layers, normalised MSE), attention maps (mapped layers,
row-wise KL) and contact maps (MSE) of the frozen teacher, plus masked-LM logits (``T²·KL``)
when the teacher has an LM head (the stand-in teacher has none).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import EsmConfig, EsmModel

from protdistill.config import plain_data
from protdistill.distill.checkpoint import load_torch
from protdistill.distill.partial import check_layer_indices, evenly_spaced
from protdistill.errors import CheckpointError
from protdistill.io.atomic import torch_save

FORMAT = "protdistill.small_esm/1"


@dataclass
class EsmStudentOutput:
    """``hidden (B, T, D)`` last (normed) states, ``layers``: per-layer ``(B, T, D)``,
    ``attentions``: per-layer ``(B, H, T, T)``, ``contacts (B, T-2, T-2)`` or None,
    ``logits (B, T, V)`` or None; ``mask (B, T)`` True = real token (CLS/EOS included)."""

    hidden: Tensor
    layers: tuple[Tensor, ...]
    attentions: tuple[Tensor, ...]
    contacts: Tensor | None
    logits: Tensor | None
    mask: Tensor


def _esm_backbone(model: nn.Module) -> nn.Module:
    return getattr(model, "esm", model)


def make_small_esm(
    teacher: nn.Module, num_layers: int, indices: list[int] | None = None
) -> tuple[nn.Module, list[int]]:
    """An ``EsmModel`` student with ``num_layers`` layers initialised from ``teacher``'s layers
    ``indices`` (default: evenly spaced).

    ``teacher`` is an ``EsmModel`` (or ``EsmForMaskedLM``: its backbone is used). Returns the
    student (train mode, eager attention) and the teacher layer indices it was built from.
    """
    base = _esm_backbone(teacher)
    n_teacher = int(base.config.num_hidden_layers)
    if indices is None:
        indices = evenly_spaced(n_teacher, num_layers)
    check_layer_indices(indices, n_teacher, num_layers)
    cfg = copy.deepcopy(base.config)
    cfg.num_hidden_layers = num_layers
    cfg._attn_implementation = "eager"
    student = EsmModel(cfg, add_pooling_layer=False)
    t_state = base.state_dict()
    s_state = {}
    for key in student.state_dict():
        if key.startswith("encoder.layer."):
            i, rest = key[len("encoder.layer.") :].split(".", 1)
            s_state[key] = t_state[f"encoder.layer.{indices[int(i)]}.{rest}"]
        elif key == "contact_head.regression.weight":
            heads = int(cfg.num_attention_heads)
            w = t_state[key].view(1, n_teacher, heads)[:, indices]
            s_state[key] = w.reshape(1, num_layers * heads).clone()
        else:
            s_state[key] = t_state[key]
    student.load_state_dict(s_state)
    return student, indices


def esm_forward(model: nn.Module, tokens: Tensor, mask: Tensor, contacts: bool) -> EsmStudentOutput:
    """Run an ``EsmModel``/``EsmForMaskedLM`` with hidden states and attentions (eager)."""
    base = _esm_backbone(model)
    out = base(
        input_ids=tokens,
        attention_mask=mask.long(),
        output_hidden_states=True,
        output_attentions=True,
    )
    attns = tuple(out.attentions)
    cmap = None
    if contacts:
        stacked = torch.stack(attns, dim=1)
        m = mask.to(stacked.dtype)
        stacked = stacked * m[:, None, None, None, :] * m[:, None, None, :, None]
        cmap = base.contact_head(tokens, stacked)
    head = getattr(model, "lm_head", None)
    logits = head(out.last_hidden_state) if head is not None else None
    return EsmStudentOutput(
        out.last_hidden_state, tuple(out.hidden_states[1:]), attns, cmap, logits, mask
    )


def residue_mask(tokens: Tensor, mask: Tensor, eos_id: int) -> Tensor:
    """``(B, T-2)`` mask of real residues (CLS, EOS and padding removed), contact-map aligned."""
    return (mask & (tokens != eos_id))[:, 1:-1]


def save_small_esm(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    """``.pt`` with the EsmConfig dict and weights (loads with ``weights_only=True``)."""
    base = _esm_backbone(model)
    payload = {
        "format": FORMAT,
        "family": "esm",
        "config": plain_data(base.config.to_dict()),
        "state_dict": {k: v.detach().cpu().clone() for k, v in base.state_dict().items()},
        "meta": plain_data(meta),
    }
    return torch_save(path, payload)


def load_small_esm(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a student saved by :func:`save_small_esm` (eval mode, eager attention)."""
    payload = load_torch(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            "not a protdistill ESM student", path=path, fix="pass a .pt from `protdistill distill`"
        )
    cfg = EsmConfig.from_dict(payload["config"])
    cfg._attn_implementation = "eager"
    model = EsmModel(cfg, add_pooling_layer=False)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload.get("meta", {})
