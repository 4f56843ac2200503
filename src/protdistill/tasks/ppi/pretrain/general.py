"""General (task-agnostic) distillation: a student encoder learns the teacher's pooled and
per-residue representation of unlabelled transfer proteins, before any label.

BACKBONE_DIR/
  backbone.safetensors   encoder + projector weights, target statistics; metadata: student
                         config, teacher identity, transfer-set report, settings
  report.json            transfer set, epochs, validation cosine per term
  train/                 Lightning checkpoints (last.ckpt resumes a killed pretraining)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from protdistill.distill.checkpoint import (
    load_model_state,
    save_model,
    student_state_from_checkpoint,
)
from protdistill.distill.losses import FeatureProjector, cosine_kd
from protdistill.distill.parallel import finish, launch
from protdistill.distill.trainer import DistillModule, TrainConfig, fit
from protdistill.errors import ConfigError
from protdistill.io.atomic import write_json
from protdistill.io.fasta import read_fasta
from protdistill.io.pairs import read_pairs
from protdistill.progress import Log, no_log
from protdistill.students import PAIR_STUDENTS, build_student, count_parameters
from protdistill.tasks.ppi.pretrain.batches import (
    TargetStats,
    TransferDataset,
    collate_transfer,
    fit_stats,
    pool_blocks,
)
from protdistill.tasks.ppi.pretrain.config import PretrainConfig
from protdistill.tasks.ppi.pretrain.transfer import (
    BLOCK,
    ResidueTargets,
    TransferSet,
    build_transfer_set,
    residue_targets,
)
from protdistill.teachers.esm import EsmTeacher

BACKBONE = "backbone.safetensors"

#: Encoder settings a backbone must share with the student it initialises.
ARCHITECTURE = ("kind", "embed_dim", "stem_stride", "channels", "kernel_size")


class PretrainModule(DistillModule):
    """Cosine KD of the pooled embedding and of chosen stages' per-position features against
    standardised teacher targets, each through a learned linear projection."""

    def __init__(self, student: nn.Module, cfg: TrainConfig, p: PretrainConfig, dim: int) -> None:
        super().__init__(student, cfg)
        encoder = student.encoder
        bad = [s for s in p.residue_stages if not 0 <= s < len(encoder.strides)]
        bad += [s for s in p.residue_stages if s not in bad and encoder.strides[s] % BLOCK]
        if bad:
            raise ConfigError(
                f"residue_stages {bad}: the student has stages 0-{len(encoder.strides) - 1} with "
                f"strides {encoder.strides}, and a taught stage's stride must be a multiple of "
                f"{BLOCK}",
                record="residue_stages",
                fix="choose stages whose stride is a multiple of 4",
            )
        for name, param in student.named_parameters():  # the pair head learns later, from labels
            if not name.startswith("encoder."):
                param.requires_grad_(False)  # (and DDP needs every trained parameter used)
        self.p = p
        self.projector = FeatureProjector(student.embedding_dim, dim)
        self.residue_proj = nn.ModuleDict(
            {str(s): nn.Conv1d(encoder.stage_dims[s], dim, 1) for s in p.residue_stages}
        )

    def step(self, batch: dict, stage: str) -> dict[str, torch.Tensor]:
        stages = self.student.encoder.stages(batch["tokens"], batch["mask"])
        pooled = self.student.pool(*stages[-1])
        terms = {"pooled": cosine_kd(self.projector(pooled), batch["pooled"])}
        loss = self.p.pooled_weight * terms["pooled"]
        for s in self.p.residue_stages:
            x, m = stages[s]
            factor = self.student.encoder.strides[s] // BLOCK
            target, t_mask = pool_blocks(batch["blocks"], batch["block_mask"], factor)
            pred = self.residue_proj[str(s)](x).transpose(1, 2)
            if pred.shape[:2] != target.shape[:2]:
                raise AssertionError(f"stage {s}: {pred.shape} vs teacher {target.shape}")
            terms[f"residue{s}"] = cosine_kd(pred, target, m & t_mask)
            loss = loss + self.p.residue_weight * terms[f"residue{s}"] / len(self.p.residue_stages)
        terms["loss"] = loss
        return terms


def _train_config(p: PretrainConfig) -> TrainConfig:
    return TrainConfig(
        epochs=p.epochs,
        lr=p.lr,
        weight_decay=p.weight_decay,
        warmup_ratio=p.warmup_ratio,
        monitor="val_loss",
        mode="min",
        seed=p.seed,
        batch_size=p.batch_size,
        progress=p.progress,
        accelerator=p.accelerator,
        devices=p.devices,
        num_nodes=p.num_nodes,
        strategy=p.strategy if p.scale.distributed else "auto",
    )


def transfer_teacher(p: PretrainConfig) -> EsmTeacher:
    """The teacher as general distillation runs it: one window of ``transfer_cap`` residues per
    protein (the window is chosen before, by :func:`teacher_window`), so no overlap."""
    return EsmTeacher(p.teacher, max_residues=p.transfer_cap, long_policy="crop",
                      window_overlap=0, tokens_per_batch=p.tokens_per_batch,
                      precision=p.teacher_precision)  # fmt: skip


def backbone_id(p: PretrainConfig, transfer: TransferSet, teacher_id: str) -> str:
    """Content address of a pretraining: same settings, teacher and transfer set -> same id."""
    # the teacher (and its precision) enter through teacher_id; where it runs does not, except
    # the number of processes (it sets the global batch)
    skip = {"cache", "progress", "teacher", "tokens_per_batch", "teacher_precision"}
    skip |= {"accelerator", "devices", "num_nodes", "strategy"}
    settings = p.model_dump(exclude=skip)
    if p.scale.distributed:
        settings["processes"] = p.devices * p.num_nodes
    blob = json.dumps([settings, teacher_id, sorted(transfer.sequences)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def pretrain(
    p: PretrainConfig,
    out: str | Path,
    transfer: TransferSet,
    *,
    teacher: EsmTeacher | None = None,
    log: Log = no_log,
) -> Path:
    """Distil the teacher's representation of ``transfer`` into a student encoder -> ``out``;
    resumes a killed run and returns at once when ``out`` already holds the backbone."""
    out = Path(out)
    if (out / BACKBONE).exists():
        log(f"backbone already trained: {out / BACKBONE}")
        return out
    if len(transfer.sequences) < 20:
        raise ConfigError(
            f"the transfer set has {len(transfer.sequences)} proteins; general distillation "
            "needs at least 20",
            fix="pass more --fasta / --transfer-fasta files",
        )
    teacher = teacher or transfer_teacher(p)
    cache = Path(p.cache) if p.cache else out.parent / "teacher_cache"
    log(f"transfer set: {transfer.report['proteins']} proteins; teacher targets in {cache}")
    targets = residue_targets(
        teacher, cache, transfer.sequences, layer=p.teacher_layer, cap=p.transfer_cap,
        show=p.progress,
    )  # fmt: skip
    return _train_backbone(p, out, transfer, targets, teacher.identity, log)


def _split_keys(keys: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded validation share of the transfer proteins (for monitoring only)."""
    order = sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    n_val = max(1, round(fraction * len(order)))
    return sorted(order[n_val:]), sorted(order[:n_val])


def _train_backbone(
    p: PretrainConfig,
    out: Path,
    transfer: TransferSet,
    targets: ResidueTargets,
    teacher_id: str,
    log: Log,
) -> Path:
    windows = {
        k: s[targets.start[k] : targets.start[k] + p.transfer_cap]
        for k, s in transfer.sequences.items()
    }
    train_keys, val_keys = _split_keys(list(windows), p.val_fraction, p.seed)
    stats = fit_stats(targets, train_keys, windows)
    kw = {"max_residues": p.max_residues, "random_crops": p.random_crops}
    train = TransferDataset(
        train_keys, windows, targets, stats, train=True, mask_rate=p.mask_rate, **kw
    )
    val = TransferDataset(val_keys, windows, targets, stats, train=False, **kw)
    torch.manual_seed(p.seed)
    student = build_student(p.student)
    dim = next(iter(targets.blocks.values())).shape[-1]
    module = PretrainModule(student, _train_config(p), p, dim)
    log(f"general distillation of a {count_parameters(student):,}-parameter student encoder")
    loader = DataLoader(train, p.batch_size, shuffle=True, collate_fn=collate_transfer)
    val_loader = DataLoader(val, p.batch_size, collate_fn=collate_transfer)
    result = fit(module, loader, val_loader, _train_config(p), out / "train", resume=True)
    if not result.is_main:  # under DDP rank 0 writes the backbone
        return out
    if result.best_path is not None:  # the best epoch's encoder and projectors together
        module.load_state_dict(student_state_from_checkpoint(result.best_path, prefix="")[0])
    best = min(result.history, key=lambda r: r.get("val_loss", float("inf")))
    report = {
        "transfer": transfer.report,
        "train_proteins": len(train_keys),
        "val_proteins": len(val_keys),
        "epochs": len(result.history),
        "val": {k: v for k, v in best.items() if k.startswith("val_")},
        "parameters": count_parameters(student),
    }
    state = {f"encoder.{k}": v for k, v in student.encoder.state_dict().items()}
    state |= {f"projector.{k}": v for k, v in module.projector.state_dict().items()}
    state |= stats.as_tensors()
    meta = {"student": p.student, "teacher_id": teacher_id, "teacher_dim": dim,
            "pretrain": p.model_dump(), "report": report}  # fmt: skip
    save_model(out / BACKBONE, state, meta)
    write_json(out / "report.json", report)
    log(f"backbone: {out / BACKBONE} (validation {report['val']})")
    return out


def load_backbone(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state, meta)`` of a backbone directory (or its backbone.safetensors), verified."""
    path = Path(path)
    return load_model_state(path / BACKBONE if path.is_dir() else path)


def init_from_backbone(student: nn.Module, student_cfg: dict, path: str | Path) -> dict:
    """Load a backbone's encoder into ``student``; another architecture is refused with the
    differing settings named. Returns the backbone's state (projector, statistics) and meta."""
    state, meta = load_backbone(path)
    theirs = {"kind": "resnet1d", **meta["student"]}
    ours = {"kind": "resnet1d", **student_cfg}
    defaults = PAIR_STUDENTS[ours["kind"]][0]().model_dump()
    diff = [
        f"{k}: backbone {theirs.get(k, defaults[k])!r} vs student {ours.get(k, defaults[k])!r}"
        for k in ARCHITECTURE
        if k in defaults and theirs.get(k, defaults[k]) != ours.get(k, defaults[k])
    ]
    if diff or theirs["kind"] != ours["kind"]:
        raise ConfigError(
            "the backbone has another architecture (" + "; ".join(diff or ["kind"]) + ")",
            path=path,
            fix="pretrain a backbone with the same --student-config, or drop --init",
        )
    encoder = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    student.encoder.load_state_dict(encoder)
    return {"state": state, "meta": meta, "stats": TargetStats.from_tensors(state)}


def pretrain_files(
    p: PretrainConfig,
    fastas: list[str | Path],
    exclude_pairs: list[str | Path],
    out: str | Path,
    *,
    log: Log = no_log,
) -> Path:
    """`ppi pretrain`: the transfer set of ``fastas`` minus every protein named in
    ``exclude_pairs`` (matched by id in the FASTAs, then removed by sequence wherever it occurs).
    With ``p.devices`` / ``p.num_nodes`` > 1 the teacher targets are computed in per-rank shares
    and the encoder trains with DDP."""
    records: dict[str, str] = {}
    for path in fastas:
        records.update(read_fasta(path))
    excluded: list[str] = []
    for path in exclude_pairs:
        pairs, _ = read_pairs(path, require_labels=False, keep_duplicates=True)
        ids = {i for pair in pairs for i in (pair.a, pair.b)}
        excluded += [records[i] for i in sorted(ids) if i in records]
    launch(p.scale)  # one process, or join / start the ranks (docs/scale.md)
    transfer = build_transfer_set(fastas, exclude=excluded)
    transfer.report["exclude_pairs"] = [str(x) for x in exclude_pairs]
    path = pretrain(p, out, transfer, log=log)
    finish()
    return path
