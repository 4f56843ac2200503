"""Siamese fewer-layer ESM-2 pair student: residues -> a few ESM-2 layers -> mean pool -> head.

The encoder is an ``EsmModel`` with the teacher's width but ``num_layers`` layers. Built from its
config alone it is randomly initialised (so a checkpoint rebuilds it without the teacher);
:func:`init_from_esm` copies the teacher's embeddings and chosen layers into it, DistilBERT-style,
before task distillation. Its protein embedding is the mean of the last layer's residue states,
as the teacher's is.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import Field
from torch import nn
from transformers import EsmConfig, EsmModel

from protdistill.alphabet import AMINO_ACIDS, ESM_VOCAB
from protdistill.config import Config
from protdistill.errors import ConfigError
from protdistill.students.outputs import PairOutput, masked_mean, symmetric_combine
from protdistill.students.pair_heads import HeadKind, build_pair_head
from protdistill.students.small_esm import load_small_esm, make_small_esm

_CLS, _PAD, _EOS = (ESM_VOCAB.index(t) for t in ("<cls>", "<pad>", "<eos>"))


class EsmPairConfig(Config):
    """Hyper-parameters of :class:`SiameseEsm`; the width settings must match the teacher whose
    layers initialise it (defaults: ESM-2 8M, ``facebook/esm2_t6_8M_UR50D``)."""

    kind: str = "esm"
    num_layers: int = Field(1, ge=1)
    hidden_size: int = 320
    num_attention_heads: int = 20
    intermediate_size: int = 1280
    token_dropout: bool = True
    layer_norm_eps: float = 1e-5
    #: teacher layers copied into the student (default: evenly spaced, see `make_small_esm`)
    teacher_layers: list[int] | None = None
    hidden: int = 128
    dropout: float = 0.1
    head: HeadKind = "mlp"  # see ResNet1DConfig.head
    head_width: int = 64
    head_phi_hidden: int = 0  # see ResNet1DConfig.head_phi_hidden

    def esm_config(self) -> EsmConfig:
        """The encoder's ``EsmConfig`` (ESM-2 conventions: rotary positions, 33 tokens)."""
        cfg = EsmConfig(
            vocab_size=len(ESM_VOCAB), hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers, num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size, hidden_act="gelu",
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            max_position_embeddings=1026, position_embedding_type="rotary",
            layer_norm_eps=self.layer_norm_eps, emb_layer_norm_before=False,
            token_dropout=self.token_dropout,
            pad_token_id=_PAD, mask_token_id=ESM_VOCAB.index("<mask>"),
        )  # fmt: skip
        cfg._attn_implementation = "sdpa"  # no attention maps needed: 2x faster on CPU
        return cfg


def _esm_ids() -> torch.Tensor:
    """Lookup from protdistill token ids (pad, 20 amino acids, X) to ESM-2 token ids."""
    return torch.tensor([_PAD, *(ESM_VOCAB.index(a) for a in AMINO_ACIDS), ESM_VOCAB.index("X")])


class SiameseEsm(nn.Module):
    """Shared-weight fewer-layer ESM-2 encoder for A and B; classifier on ``[a+b, |a-b|, a*b]``.

    Symmetric by construction: score(A, B) == score(B, A).
    """

    def __init__(self, cfg: EsmPairConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or EsmPairConfig()
        self.esm = EsmModel(self.cfg.esm_config(), add_pooling_layer=False)
        self.register_buffer("to_esm", _esm_ids(), persistent=False)
        self.head = build_pair_head(
            self.cfg.head, self.cfg.hidden_size, hidden=self.cfg.hidden,
            dropout=self.cfg.dropout, width=self.cfg.head_width,
            phi_hidden=self.cfg.head_phi_hidden,
        )  # fmt: skip

    @property
    def embedding_dim(self) -> int:
        """Width D of :meth:`embed`."""
        return self.cfg.hidden_size

    def residue_states(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) protdistill tokens + mask -> (B, L, D) last-layer states of the residues
        (``<cls>`` / ``<eos>`` are added around each sequence and dropped again)."""
        batch, length = tokens.shape
        ids = torch.full((batch, length + 2), _PAD, dtype=torch.long, device=tokens.device)
        ids[:, 0] = _CLS
        ids[:, 1:-1] = torch.where(mask, self.to_esm[tokens], _PAD)
        ids[torch.arange(batch, device=tokens.device), mask.sum(1) + 1] = _EOS
        states = self.esm(input_ids=ids, attention_mask=(ids != _PAD).long()).last_hidden_state
        return states[:, 1:-1]

    def embed(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens -> (B, D) mean of the residue states (padding never contributes)."""
        return masked_mean(self.residue_states(tokens, mask).transpose(1, 2), mask)

    def forward(
        self,
        tokens_a: torch.Tensor,
        mask_a: torch.Tensor,
        tokens_b: torch.Tensor,
        mask_b: torch.Tensor,
    ) -> PairOutput:
        """(B, La), (B, La), (B, Lb), (B, Lb) -> PairOutput with logits (B, 2)."""
        za, zb = self.embed(tokens_a, mask_a), self.embed(tokens_b, mask_b)
        features = symmetric_combine(za, zb)
        return PairOutput(
            logits=self.head.logits(za, zb), features=features, embedding_a=za, embedding_b=zb
        )


#: EsmConfig settings a copied or loaded encoder must share with the student's config
_WIDTH = ("hidden_size", "num_attention_heads", "intermediate_size", "token_dropout",
          "layer_norm_eps")  # fmt: skip


def _shape_diff(config: EsmConfig, cfg: EsmPairConfig, keys: tuple[str, ...]) -> dict:
    """``{setting: the EsmConfig's value}`` where it differs from the student's config."""
    value = {k: getattr(config, "num_hidden_layers" if k == "num_layers" else k) for k in keys}
    return {k: v for k, v in value.items() if v != getattr(cfg, k)}


def init_from_esm(student: SiameseEsm, teacher: nn.Module) -> list[int]:
    """Copy ``teacher``'s embeddings and layers (``student.cfg.teacher_layers``, default evenly
    spaced) into the student's encoder; a teacher of another width is refused with the settings
    to use. Returns the teacher layer indices copied."""
    base = getattr(teacher, "esm", teacher)
    ours = student.cfg
    diff = _shape_diff(base.config, ours, _WIDTH)
    if diff:
        raise ConfigError(
            "the ESM student's width does not match the teacher's ("
            + ", ".join(f"{k}: student {getattr(ours, k)} vs teacher {v}" for k, v in diff.items())
            + ")",
            record="student_config",
            fix=f"pass --student-config '{json.dumps({**diff, 'num_layers': ours.num_layers})}'",
        )
    copied, indices = make_small_esm(base, ours.num_layers, ours.teacher_layers)
    student.esm.load_state_dict(copied.state_dict())
    return indices


def init_from_small_esm(student: SiameseEsm, path: str | Path) -> None:
    """Load a fewer-layer ESM student saved by `protdistill distill` (its general distillation)
    into the pair student's encoder; another depth or width is refused with the settings to use."""
    model, _ = load_small_esm(path)
    diff = _shape_diff(model.config, student.cfg, ("num_layers", *_WIDTH))
    if diff:
        raise ConfigError(
            "the ESM student in --init has another shape ("
            + ", ".join(f"{k}: file {v} vs run {getattr(student.cfg, k)}" for k, v in diff.items())
            + ")",
            path=path,
            fix=f"pass --student-config '{json.dumps(diff)}'",
        )
    student.esm.load_state_dict(model.state_dict())
