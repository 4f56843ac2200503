"""The trained StructDiff bundle: denoiser + residue decoder + embedding statistics + metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import EsmConfig
from transformers.models.esm.modeling_esm import EsmLMHead

from protdistill.distill.checkpoint import load_model_state, save_model
from protdistill.errors import CheckpointError, ConfigError, InputError
from protdistill.tasks.peptide.decoder import DecoderOutput, LMHeadDecoder, ResidueDecoder
from protdistill.tasks.peptide.denoiser import DenoiserConfig, StructDenoiser
from protdistill.tasks.peptide.diffusion import GaussianDiffusion


class StructDiffNet(nn.Module):
    """Everything that learns: ``denoiser``, ``decoder``; ``mean``/``std`` ``(D,)`` buffers.

    ``lm_decoder`` (optional, frozen) is the teacher's masked-LM head; when present it decodes
    samples instead of the trained ``decoder`` (which is still fitted and reported).
    """

    def __init__(
        self,
        cfg: DenoiserConfig,
        decoder_hidden: int = 256,
        lm_decoder: LMHeadDecoder | None = None,
    ) -> None:
        super().__init__()
        self.denoiser = StructDenoiser(cfg)
        self.decoder = ResidueDecoder(cfg.embed_dim, decoder_hidden)
        self.lm_decoder = lm_decoder
        if lm_decoder is not None:
            lm_decoder.requires_grad_(False)
        self.register_buffer("mean", torch.zeros(cfg.embed_dim))
        self.register_buffer("std", torch.ones(cfg.embed_dim))

    def standardise(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def unstandardise(self, z: Tensor) -> Tensor:
        return z * self.std + self.mean

    def decode(self, z: Tensor, mask: Tensor) -> DecoderOutput:
        """Residue logits for standardised embeddings ``(B, L, D)``."""
        if self.lm_decoder is not None:
            return self.lm_decoder(self.unstandardise(z), mask)
        return self.decoder(z, mask)


def lm_head_meta(lm: LMHeadDecoder) -> dict:
    """What :func:`rebuild_lm_decoder` needs to recreate an ESM LM head before loading weights."""
    head = lm.lm_head
    return {
        "hidden_size": head.dense.in_features,
        "vocab_size": head.decoder.out_features,
        "layer_norm_eps": head.layer_norm.eps,
        "token_ids": lm.token_ids.tolist(),
    }


def rebuild_lm_decoder(meta: dict) -> LMHeadDecoder:
    cfg = EsmConfig(
        vocab_size=meta["vocab_size"],
        hidden_size=meta["hidden_size"],
        layer_norm_eps=meta["layer_norm_eps"],
        pad_token_id=1,
    )
    return LMHeadDecoder(EsmLMHead(cfg), list(meta["token_ids"]))


@dataclass
class StructDiff:
    """A loaded model: network, diffusion process and what sampling needs to know."""

    net: StructDiffNet
    diffusion: GaussianDiffusion
    types: list[str]  # conditioning labels: types, and families of types (families.py)
    lengths: dict[str, dict[int, int]]  # per label: {length: count} in the training set
    meta: dict = field(default_factory=dict)
    families: dict[str, list[str]] = field(default_factory=dict)  # type -> its family labels

    def type_id(self, name: str) -> int:
        if name not in self.types:
            raise InputError(
                f"unknown peptide type {name!r}",
                record=f"model types: {', '.join(self.type_names())}",
                fix="choose one of the types the model was trained on",
            )
        return self.types.index(name)

    def check_teacher(self, teacher) -> None:  # noqa: ANN001 - teachers.esm.EsmTeacher
        """Raise unless ``teacher`` (re-embedding samples) is the one the model was trained on."""
        trained_on = self.meta.get("teacher")
        if trained_on is not None and trained_on != teacher.identity:
            raise ConfigError(
                f"teacher {teacher.identity} is not the model's teacher {trained_on}",
                fix=f"pass the teacher it was trained with ({self.meta.get('teacher_path')})",
            )

    def type_names(self) -> list[str]:
        """The types one can sample: trained types, those with families, and the families."""
        return sorted({*self.types, *self.families})

    def save(self, path: str | Path) -> Path:
        meta = dict(self.meta)
        meta.update(
            {
                "types": self.types,
                "families": self.families,
                "lengths": {t: {str(k): v for k, v in d.items()} for t, d in self.lengths.items()},
                "denoiser": self.net.denoiser.cfg.model_dump(mode="json"),
                "decoder_hidden": self.net.decoder.net[1].out_features,
                "lm_head": None
                if self.net.lm_decoder is None
                else lm_head_meta(self.net.lm_decoder),
                "diffusion": {
                    "timesteps": self.diffusion.timesteps,
                    "schedule": self.diffusion.schedule,
                    "objective": self.diffusion.objective,
                },
            }
        )
        return save_model(path, self.net, meta)

    @classmethod
    def load(cls, path: str | Path) -> StructDiff:
        state, meta = load_model_state(path)
        try:
            cfg = DenoiserConfig.model_validate(meta["denoiser"])
            lm = rebuild_lm_decoder(meta["lm_head"]) if meta.get("lm_head") else None
            net = StructDiffNet(cfg, int(meta["decoder_hidden"]), lm)
            net.load_state_dict(state)
            diffusion = GaussianDiffusion(**meta["diffusion"])
            lengths = {
                t: {int(k): int(v) for k, v in d.items()} for t, d in meta["lengths"].items()
            }
            families = {t: list(f) for t, f in (meta.get("families") or {}).items()}
        except (AttributeError, KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"not a StructDiff model ({exc})".replace("\n", " "),
                path=path,
                fix="pass the model.safetensors written by `protdistill peptide train`",
            ) from exc
        return cls(net.eval(), diffusion, list(meta["types"]), lengths, meta, families)
