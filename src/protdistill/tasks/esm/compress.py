"""Compression of ESM-like encoders: the metric is the cosine of pooled states to the original."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoTokenizer, EsmModel, EsmTokenizer

from protdistill.alphabet import write_esm_vocab
from protdistill.compress.artifact import MANIFEST, load_compressed
from protdistill.compress.config import CompressConfig
from protdistill.compress.task import Task
from protdistill.distill.losses import feature_kd
from protdistill.errors import CheckpointError, ConfigError
from protdistill.io.fasta import read_fasta
from protdistill.students.small_esm import load_small_esm


class EsmTask(Task):
    """An ESM-like encoder (transformers ``EsmModel`` directory); the metric is the cosine
    similarity of its mean-pooled last hidden states to the uncompressed model's."""

    tokenizer: Any = None
    max_length: int = 512

    def batches(self, items, size, shuffle=False):
        order = list(range(len(items)))
        if shuffle:
            torch.manual_seed(0)
            order = torch.randperm(len(items)).tolist()
        for i in range(0, len(order), size):
            seqs = [items[j] for j in order[i : i + size]]
            enc = self.tokenizer(
                seqs,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            )
            yield {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def forward(self, model, batch):
        return model(**batch).last_hidden_state

    def _pooled(self, model, batch):
        mask = batch["attention_mask"][..., None].float()
        return (self.forward(model, batch) * mask).sum(1) / mask.sum(1)

    def loss(self, model, batch, teacher, cfg):
        if teacher is None:
            raise ConfigError(
                "an ESM encoder has no labels: fine-tuning must distil from the original",
                fix="keep --distill (the default) or set --finetune-steps 0",
            )
        with torch.no_grad():
            target = self.forward(teacher, batch)

        return feature_kd(self.forward(model, batch), target, batch["attention_mask"].bool())

    @torch.no_grad()
    def evaluate(self, model, reference):
        sims = []
        for batch in self.batches(self.held_out, 16):
            a, b = self._pooled(model.eval(), batch), self._pooled(reference.eval(), batch)
            sims.append(torch.nn.functional.cosine_similarity(a, b, dim=-1))
        return {"cosine_to_original": float(torch.cat(sims).mean()), "n": len(self.held_out)}

    def bench_batch(self, n):
        pool = self.held_out or self.train
        return next(self.batches([pool[i % len(pool)] for i in range(n)], n))


def _esm_tokenizer():
    """ESM-2's tokenizer, for a student file that carries none."""
    with tempfile.TemporaryDirectory() as tmp:
        return EsmTokenizer(str(write_esm_vocab(tmp)))


def _load_esm(path: Path) -> tuple[nn.Module, dict[str, Any], dict[str, Any], Any]:
    """``(model, base, meta, tokenizer)`` of an HF directory, a small-ESM ``.pt`` or a
    compressed ESM directory."""
    if path.suffix == ".pt":
        model, meta = load_small_esm(path)
        base = {"kind": "esm", "config": model.config.to_dict()}
        return model, base, {"esm": {"source": str(path), **meta}}, _esm_tokenizer()
    if (path / MANIFEST).exists():
        model, meta = load_compressed(path)
        return model, meta["compression"]["base"], meta, _esm_tokenizer()
    try:
        model = EsmModel.from_pretrained(path, add_pooling_layer=False).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"not a loadable ESM model directory ({exc})".splitlines()[0],
            path=path,
            fix="pass a directory written by EsmModel.save_pretrained with its tokenizer",
        ) from exc
    base = {"kind": "esm", "config": model.config.to_dict()}
    return model, base, {"esm": {"source": str(path)}}, tokenizer


def esm_task(cfg: CompressConfig, path: Path) -> EsmTask:
    model, base, meta, tokenizer = _load_esm(path)
    if not cfg.fasta:
        raise ConfigError(
            "an ESM model needs sequences to tune, calibrate and evaluate on",
            path=path,
            fix="pass --fasta FILE",
        )
    seqs = list(read_fasta(cfg.fasta).values())
    g = torch.Generator().manual_seed(cfg.seed)
    seqs = [seqs[i] for i in torch.randperm(len(seqs), generator=g).tolist()]
    n_test = max(1, len(seqs) // 5)
    held_out = seqs[:n_test][: cfg.max_eval] if cfg.max_eval else seqs[:n_test]
    task = EsmTask(
        kind="esm",
        model=model,
        base=base,
        meta=meta,
        metric="cosine_to_original",
        unit="seqs/s",
        train=seqs[n_test:],
        held_out=held_out,
    )
    task.tokenizer = tokenizer
    return task
