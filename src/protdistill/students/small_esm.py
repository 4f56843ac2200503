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
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from protdistill.distill.losses import attention_kd, feature_kd, kd_kl, map_kd
from protdistill.distill.partial import DistillConfig, evenly_spaced
from protdistill.distill.trainer import DistillModule, TrainConfig, fit
from protdistill.errors import CheckpointError, ConfigError

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


def make_small_esm(teacher: nn.Module, num_layers: int) -> tuple[nn.Module, list[int]]:
    """An ``EsmModel`` student with ``num_layers`` layers initialised from ``teacher``.

    ``teacher`` is an ``EsmModel`` (or ``EsmForMaskedLM``: its backbone is used). Returns the
    student (train mode, eager attention) and the teacher layer indices it was built from.
    """
    from transformers import EsmModel

    base = _esm_backbone(teacher)
    n_teacher = int(base.config.num_hidden_layers)
    indices = evenly_spaced(n_teacher, num_layers)
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


class EsmDistillModule(DistillModule):
    """Hidden-state + attention + contact (+ LM-logit) distillation of an ESM student."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        cfg: TrainConfig,
        layer_map: list[int],
        *,
        hidden_weight: float = 1.0,
        attention_weight: float = 1.0,
        contact_weight: float = 1.0,
        logit_weight: float = 1.0,
        temperature: float = 4.0,
        eos_id: int = 2,
    ) -> None:
        super().__init__(student, cfg, teacher)
        self.layer_map = layer_map
        self.weights = (hidden_weight, attention_weight, contact_weight, logit_weight)
        self.temperature = temperature
        self.eos_id = eos_id

    def step(self, batch: dict[str, Tensor], stage: str) -> dict[str, Tensor]:
        tokens, mask = batch["tokens"], batch["mask"]
        w_hid, w_att, w_con, w_log = self.weights
        with torch.no_grad():
            t = esm_forward(self.teacher, tokens, mask, contacts=w_con > 0)
        s = esm_forward(self.student, tokens, mask, contacts=w_con > 0)
        terms: dict[str, Tensor] = {}
        pairs = list(enumerate(self.layer_map))
        if w_hid > 0:
            terms["hidden"] = sum(feature_kd(s.layers[i], t.layers[j], mask) for i, j in pairs)
            terms["hidden"] = terms["hidden"] / len(pairs)
        if w_att > 0:
            att = [
                attention_kd(s.attentions[i], t.attentions[j], mask, "kl", "match")
                for i, j in pairs
            ]
            terms["attention"] = sum(att) / len(att)
        if w_con > 0 and s.contacts is not None:
            res = residue_mask(tokens, mask, self.eos_id)
            terms["contact"] = map_kd(s.contacts, t.contacts, res, res, "mse")
        if w_log > 0 and s.logits is not None and t.logits is not None:
            terms["logits"] = kd_kl(s.logits, t.logits, self.temperature, mask)
        weight = {"hidden": w_hid, "attention": w_att, "contact": w_con, "logits": w_log}
        loss = sum(weight[k] * v for k, v in terms.items())
        return {"loss": loss, **terms}


def residue_mask(tokens: Tensor, mask: Tensor, eos_id: int) -> Tensor:
    """``(B, T-2)`` mask of real residues (CLS, EOS and padding removed), contact-map aligned."""
    return (mask & (tokens != eos_id))[:, 1:-1]


def save_small_esm(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    """``.pt`` with the EsmConfig dict and weights (loads with ``weights_only=True``)."""
    from protdistill.io.atomic import torch_save
    from protdistill.tasks.semcom.model import _plain

    base = _esm_backbone(model)
    payload = {
        "format": FORMAT,
        "family": "esm",
        "config": _plain(base.config.to_dict()),
        "state_dict": {k: v.detach().cpu().clone() for k, v in base.state_dict().items()},
        "meta": _plain(meta),
    }
    return torch_save(path, payload)


def load_small_esm(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a student saved by :func:`save_small_esm` (eval mode, eager attention)."""
    from transformers import EsmConfig, EsmModel

    from protdistill.distill.checkpoint import load_torch

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


class _Proteins(torch.utils.data.Dataset):
    def __init__(self, seqs: list[str]) -> None:
        self.seqs = seqs

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, i: int) -> str:
        return self.seqs[i]


def protein_loader(
    seqs: list[str], tokenizer: Any, batch_size: int, *, shuffle: bool, seed: int = 0
) -> DataLoader:
    """Batches ``{"tokens": (B, T), "mask": (B, T)}`` of ESM token ids (CLS/EOS added)."""

    def collate(batch: list[str]) -> dict[str, Tensor]:
        enc = tokenizer(batch, return_tensors="pt", padding=True)
        return {"tokens": enc["input_ids"], "mask": enc["attention_mask"].bool()}

    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        _Proteins(seqs), batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=gen
    )


def split_proteins(
    records: dict[str, str],
    *,
    max_length: int,
    max_proteins: int | None,
    val_fraction: float,
    seed: int,
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Seeded protein-level split: ``(train_ids, train_seqs, val_ids, val_seqs)``, cropped."""
    ids = sorted(records)
    random.Random(seed).shuffle(ids)
    if max_proteins:
        ids = ids[:max_proteins]
    n_val = max(1, round(len(ids) * val_fraction))
    val, train = ids[:n_val], ids[n_val:]
    if not train:
        raise ConfigError("too few proteins to split", fix="use a larger FASTA file")
    crop = {k: records[k][:max_length] for k in ids}
    return train, [crop[k] for k in train], val, [crop[k] for k in val]


def distill_esm(cfg: DistillConfig) -> dict[str, Any]:
    """`protdistill distill` for an ESM-2 teacher; returns the distillation_config.json dict."""
    from protdistill.io.atomic import write_json
    from protdistill.io.fasta import read_fasta
    from protdistill.teachers.esm import EsmTeacher

    start = time.time()
    if cfg.distill_part != "full" or cfg.create_hybrid:
        raise ConfigError(
            "ESM-2 is an encoder only: --distill-part encoder/decoder and --create-hybrid need an "
            "encoder-decoder teacher",
            record=f"teacher {cfg.teacher_checkpoint}",
            fix="use --distill-part full without --create-hybrid for ESM teachers",
        )
    if not cfg.data:
        raise ConfigError(
            "an ESM teacher needs training proteins", fix="pass --data PROTEINS.fasta"
        )
    out = Path(cfg.output_path)
    teacher = EsmTeacher(
        cfg.teacher_checkpoint, max_residues=cfg.max_length, long_policy="crop", window_overlap=0
    )
    t_model = teacher._frozen
    t_model.set_attn_implementation("eager")
    student, layer_map = make_small_esm(t_model, cfg.student_layers)
    if getattr(t_model, "lm_head", None) is not None:
        from transformers import EsmForMaskedLM

        wrapped = EsmForMaskedLM(student.config)
        wrapped.esm = student
        wrapped.lm_head.load_state_dict(t_model.lm_head.state_dict())
        student = wrapped
    _, train, _, val = split_proteins(
        read_fasta(cfg.data),
        max_length=cfg.max_length,
        max_proteins=cfg.max_proteins,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
    )
    tcfg = TrainConfig(
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        progress=cfg.progress,
    )
    module = EsmDistillModule(
        student,
        t_model,
        tcfg,
        layer_map,
        hidden_weight=cfg.hidden_weight,
        attention_weight=cfg.attention_weight,
        contact_weight=cfg.contact_weight,
        logit_weight=cfg.logit_weight,
        temperature=cfg.temperature,
        eos_id=teacher.tokenizer.eos_token_id,
    )
    module.add_config("distill", cfg)
    tok = teacher.tokenizer
    meta = {"role": "student", "teacher": teacher.identity, "layer_map": layer_map}
    export = _ExportEsm(out, meta)
    result = fit(
        module,
        protein_loader(train, tok, cfg.batch_size, shuffle=True, seed=cfg.seed),
        protein_loader(val, tok, cfg.batch_size, shuffle=False),
        tcfg,
        out,
        resume=cfg.resume,
        callbacks=[export],
    )
    save_small_esm(out / "final_student_model.pt", student, meta)
    if result.best_path is not None:
        from protdistill.distill.checkpoint import student_state_from_checkpoint

        state, _ = student_state_from_checkpoint(result.best_path)
        student.load_state_dict(state)
    rows = [r for r in result.history if "val_loss" in r]
    best = (
        min(rows, key=lambda r: r["val_loss"]) if rows else {"val_loss": float("nan"), "epoch": -1}
    )
    save_small_esm(
        out / "best_student_model.pt", student, {**meta, "best_epoch": best["epoch"] + 1}
    )
    n_t = sum(p.numel() for p in t_model.parameters())
    n_s = sum(p.numel() for p in student.parameters())
    report = {
        **cfg.model_dump(),
        "family": "esm",
        "teacher_identity": teacher.identity,
        "teacher_has_lm_head": getattr(t_model, "lm_head", None) is not None,
        "best_loss": float(best["val_loss"]),
        "best_epoch": int(best["epoch"]) + 1,
        "teacher_parameters": n_t,
        "student_parameters": n_s,
        "compression_ratio": n_t / n_s,
        "layer_map": layer_map,
        "train_proteins": len(train),
        "val_proteins": len(val),
        "history": result.history,
        "wall_time_s": time.time() - start,
    }
    write_json(out / "distillation_config.json", report)
    return report


class _ExportEsm(L.Callback):
    """Save ``student_model_epoch{N}.pt`` (N from 1) after every epoch."""

    def __init__(self, out_dir: Path, meta: dict[str, Any]) -> None:
        self.out_dir, self.meta = Path(out_dir), meta

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        path = self.out_dir / f"student_model_epoch{epoch}.pt"
        save_small_esm(path, pl_module.student, {**self.meta, "epoch": epoch})
