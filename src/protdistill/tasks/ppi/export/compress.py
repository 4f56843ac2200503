"""Compression of PPI pair students: batches of pairs, KD loss, AUPR on the run's test split."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from protdistill.compress.config import CompressConfig
from protdistill.compress.task import Task
from protdistill.distill.losses import response_kd
from protdistill.errors import ConfigError
from protdistill.io.fasta import read_fasta
from protdistill.progress import Log
from protdistill.tasks.ppi.common.data import (
    PairDataset,
    collate_pairs,
    load_ppi,
    load_split,
    make_split,
)
from protdistill.tasks.ppi.common.metrics import binary_metrics
from protdistill.tasks.ppi.export.onnx import export_onnx, load_onnx_student
from protdistill.tasks.ppi.run.evaluate import predict_pairs
from protdistill.tasks.ppi.run.student import load_student


class PpiTask(Task):
    """A PPI pair student (``student.safetensors`` or a run directory) and its split."""

    max_residues: int = 1000
    sequences: dict[str, str]
    split_path: Path | None = None

    def batches(self, items, size, shuffle=False):
        ds = PairDataset(items, self.sequences, max_residues=self.max_residues)
        gen = torch.Generator().manual_seed(0)
        yield from DataLoader(
            ds, batch_size=size, shuffle=shuffle, collate_fn=collate_pairs, generator=gen
        )

    def forward(self, model, batch):
        return model(batch["tokens_a"], batch["mask_a"], batch["tokens_b"], batch["mask_b"]).logits

    def loss(self, model, batch, teacher, cfg):
        logits = self.forward(model, batch)
        labels = batch["label"]
        if teacher is None:
            return torch.nn.functional.cross_entropy(logits, labels)
        with torch.no_grad():
            t_logits = self.forward(teacher, batch)
        return response_kd(logits, t_logits, labels, alpha=cfg.alpha, temperature=cfg.temperature)

    def evaluate(self, model, reference):
        labels = torch.tensor([p.label for p in self.held_out]).numpy()
        probs = predict_pairs(
            model, self.held_out, self.sequences, max_residues=self.max_residues
        ).numpy()
        return binary_metrics(labels, probs)

    def export_onnx(self, model, out, calibration):
        export_onnx(model, self.meta, out, calibration=calibration, overwrite=True)
        return load_onnx_student(out)[0]

    def bench_batch(self, n):
        pool = self.held_out or self.train
        items = [pool[i % len(pool)] for i in range(n)]
        return next(self.batches(items, n))


def _run_dir_meta(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        return path, path / "student.safetensors"
    return path.parent, path


def ppi_task(cfg: CompressConfig, path: Path, *, log: Log) -> PpiTask:
    model, meta = load_student(path)
    base = meta.get("compression", {}).get("base") or {"kind": "ppi_student", "meta": meta}
    ppi = meta.get("ppi", {})
    run_dir, _ = _run_dir_meta(path)
    split_path = run_dir / "split.json"
    if cfg.pairs or cfg.fasta or not split_path.exists():
        pairs, fasta = cfg.pairs or ppi.get("pairs"), cfg.fasta or ppi.get("fasta")
        if not pairs or not fasta:
            raise ConfigError(
                "no data to calibrate, fine-tune and evaluate on",
                path=path,
                fix="pass --pairs and --fasta (or a run directory holding split.json)",
            )
        data = load_ppi(pairs, fasta)
        idx = make_split(data.pairs, mode="protein", seed=cfg.seed)
        split = {k: [data.pairs[i] for i in v] for k, v in idx.items()}
        sequences = data.sequences
        log(f"data: {pairs} (protein-disjoint split, seed {cfg.seed})")
    else:
        split = load_split(split_path)
        fasta = cfg.fasta or ppi.get("fasta")
        if not fasta or not Path(fasta).exists():
            raise ConfigError(
                "the run's FASTA is missing", path=fasta, fix="pass --fasta with its sequences"
            )

        sequences = read_fasta(fasta)
        log(f"data: {split_path} (train {len(split['train'])}, test {len(split['test'])} pairs)")
    held_out = split["test"][: cfg.max_eval] if cfg.max_eval else split["test"]
    task = PpiTask(
        kind="ppi",
        model=model,
        base=base,
        meta=meta,
        metric="aupr",
        unit="pairs/s",
        train=split["train"],
        held_out=held_out,
    )
    task.sequences = sequences
    task.max_residues = int(ppi.get("max_residues", 1000))
    task.split_path = None if cfg.pairs or cfg.fasta else split_path
    return task
