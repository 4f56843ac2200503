"""Distilling an ESM-2 teacher into a fewer-layer ESM student (the student model itself lives in
:mod:`protdistill.students.small_esm`): hidden states (mapped layers, normalised MSE), attention
maps (mapped layers, row-wise KL), contact maps (MSE) and, when the teacher has an LM head (the
stand-in teacher has none), masked-LM logits (``T²·KL``)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from transformers import EsmForMaskedLM

from protdistill.distill.checkpoint import load_best_student
from protdistill.distill.losses import attention_kd, feature_kd, kd_kl, map_kd
from protdistill.distill.partial import DistillConfig, distill_report, train_config
from protdistill.distill.trainer import DistillModule, TrainConfig, best_epoch, fit
from protdistill.errors import ConfigError
from protdistill.io.atomic import write_json
from protdistill.io.fasta import read_fasta
from protdistill.students.small_esm import esm_forward, make_small_esm, residue_mask, save_small_esm
from protdistill.teachers.esm import EsmTeacher


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


def _check_esm_cfg(cfg: DistillConfig) -> None:
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


def _student_of(
    t_model: nn.Module, layers: int, init_layers: list[int] | None = None
) -> tuple[nn.Module, list[int]]:
    """A fewer-layer student of ``t_model``; with the teacher's LM head when it has one."""
    student, layer_map = make_small_esm(t_model, layers, init_layers)
    if getattr(t_model, "lm_head", None) is not None:
        wrapped = EsmForMaskedLM(student.config)
        wrapped.esm = student
        wrapped.lm_head.load_state_dict(t_model.lm_head.state_dict())
        student = wrapped
    return student, layer_map


def distill_esm(cfg: DistillConfig) -> dict[str, Any]:
    """`protdistill distill` for an ESM-2 teacher; returns the distillation_config.json dict."""
    start = time.time()
    _check_esm_cfg(cfg)
    out = Path(cfg.output_path)
    teacher = EsmTeacher(
        cfg.teacher_checkpoint, max_residues=cfg.max_length, long_policy="crop", window_overlap=0
    )
    t_model = teacher._frozen
    t_model.set_attn_implementation("eager")
    student, layer_map = _student_of(t_model, cfg.student_layers, cfg.init_layers)
    _, train, _, val = split_proteins(
        read_fasta(cfg.data),
        max_length=cfg.max_length,
        max_proteins=cfg.max_proteins,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
    )
    tcfg = train_config(cfg)
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
    result = fit(
        module,
        protein_loader(train, tok, cfg.batch_size, shuffle=True, seed=cfg.seed),
        protein_loader(val, tok, cfg.batch_size, shuffle=False),
        tcfg,
        out,
        resume=cfg.resume,
        callbacks=[_ExportEsm(out, meta)],
    )
    if not result.is_main:  # under DDP rank 0 writes the files
        return {}
    save_small_esm(out / "final_student_model.pt", student, meta)
    load_best_student(student, result.best_path)
    loss, epoch = best_epoch(result.history)
    save_small_esm(out / "best_student_model.pt", student, {**meta, "best_epoch": epoch})
    report = distill_report(cfg, "esm", t_model, student, result.history, start, best=(loss, epoch))
    report |= {
        "teacher_identity": teacher.identity,
        "teacher_has_lm_head": getattr(t_model, "lm_head", None) is not None,
        "layer_map": layer_map,
        "train_proteins": len(train),
        "val_proteins": len(val),
    }
    write_json(out / "distillation_config.json", report)
    return report


class _ExportEsm(L.Callback):
    """Save ``student_model_epoch{N}.pt`` (N from 1) after every epoch."""

    def __init__(self, out_dir: Path, meta: dict[str, Any]) -> None:
        self.out_dir, self.meta = Path(out_dir), meta

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch + 1
        path = self.out_dir / f"student_model_epoch{epoch}.pt"
        save_small_esm(path, pl_module.student, {**self.meta, "epoch": epoch})
