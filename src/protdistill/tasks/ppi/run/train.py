"""Stage 3 of the PPI flow: distil (or, with alpha=0, just train) the student on labels, teacher
logits, teacher maps and teacher embeddings; resumes from the last checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from protdistill.distill.checkpoint import (
    load_best_student,
    save_model,
    student_state_from_checkpoint,
)
from protdistill.distill.trainer import TrainConfig, fit
from protdistill.io.atomic import write_json
from protdistill.io.pairs import Pair
from protdistill.progress import Log, no_log
from protdistill.students import build_student, count_parameters
from protdistill.students.esm_pair import init_from_esm, init_from_small_esm
from protdistill.tasks.ppi.common.config import PpiConfig
from protdistill.tasks.ppi.common.data import PairDataset, PpiData, collate_pairs
from protdistill.tasks.ppi.common.maps import map_agreement
from protdistill.tasks.ppi.pretrain.general import init_from_backbone
from protdistill.tasks.ppi.run.module import PpiModule
from protdistill.tasks.ppi.run.student import student_config
from protdistill.teachers.loading import load_esm

#: The feature-KD projector of the best epoch (student width -> teacher width), for the head
#: transplant and the embedding cosine in the evaluation.
PROJECTOR = "projector.safetensors"


#: Parameter-name prefixes of each student's protein encoder (``--encoder-lr-scale``).
ENCODER_PREFIXES = {
    "resnet1d": ("student.encoder.",),
    "interaction": ("student.embed.", "student.stem.", "student.blocks."),
    "esm": ("student.esm.",),
}


def train_config(cfg: PpiConfig) -> TrainConfig:
    """The training-loop settings of task distillation."""
    return TrainConfig(
        epochs=cfg.epochs,
        lr=cfg.lr,
        lr_scales=dict.fromkeys(ENCODER_PREFIXES[cfg.student], cfg.encoder_lr_scale)
        if cfg.encoder_lr_scale != 1
        else {},
        weight_decay=cfg.weight_decay,
        warmup_ratio=cfg.warmup_ratio,
        grad_clip=cfg.grad_clip,
        accumulate=cfg.accumulate,
        ema_decay=cfg.ema_decay,
        monitor="val_ce",
        mode="min",
        patience=cfg.patience,
        seed=cfg.student_seed_or_seed,
        batch_size=cfg.batch_size,
        progress=cfg.progress,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy if cfg.scale.distributed else "auto",
        precision=cfg.precision,
    )


def _loader(cfg: PpiConfig, dataset: PairDataset, shuffle: bool, uses_map: bool) -> DataLoader:
    def collate(items: list[dict]) -> dict:
        return collate_pairs(items, cfg.map_residues if uses_map else None, cfg.map_bins)

    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=shuffle, collate_fn=collate)


def train_student(
    cfg: PpiConfig,
    run_dir: Path,
    data: PpiData,
    split: dict[str, list[Pair]],
    logits: dict[str, torch.Tensor] | None,
    maps: dict[str, list] | None,
    embeddings: dict[str, torch.Tensor] | None = None,
    *,
    backbone: Path | None = None,
    teacher_scores=None,
    log: Log = no_log,
) -> Path:
    """Distil (or, with alpha=0, just train) the student, starting from ``backbone`` when given
    (its encoder, and its pooled projector for feature KD); resumes from the last checkpoint."""
    model_path = run_dir / "student.safetensors"
    if model_path.exists():
        log(f"student already trained: {model_path}")
        return model_path
    student = _new_student(cfg, backbone, log)
    uses_map = cfg.uses_map and maps is not None
    datasets = _datasets(cfg, data, split, logits, maps if uses_map else None, embeddings)
    module = _module(cfg, student, logits, embeddings, uses_map, backbone, teacher_scores)
    log(
        f"training {cfg.student} student ({count_parameters(student):,} parameters"
        + (f", from backbone {backbone}" if backbone else "")
        + ")"
    )
    result = fit(
        module,
        _loader(cfg, datasets["train"], True, uses_map),
        _loader(cfg, datasets["val"], False, uses_map),
        train_config(cfg),
        run_dir / "student",
        resume=True,
    )
    if not result.is_main:  # DDP: rank 0 writes the student and the reports
        return model_path
    load_best_student(student, result.best_path)
    _save_projector(module, result.best_path, run_dir / "student" / PROJECTOR)
    meta = {
        "student": student_config(cfg),
        "ppi": cfg.model_dump(),
        "parameters": count_parameters(student),
        "best_score": result.best_score,
        "backbone": str(backbone) if backbone else None,
        # share of interacting pairs the student was trained on: `ppi screen --prior` moves
        # its probabilities from this prior to the one a user states
        "train_prior": sum(int(p.label or 0) for p in split["train"]) / max(1, len(split["train"])),
    }
    if uses_map:
        agreement = map_agreement(student, _loader(cfg, datasets["val"], False, True))
        write_json(run_dir / "student" / "map_agreement.json", agreement)
        log(f"map agreement on validation pairs: {agreement}")
    save_model(model_path, student, meta)
    return model_path


def _new_student(cfg: PpiConfig, backbone: Path | None, log: Log) -> torch.nn.Module:
    """The seeded student; an ESM student starts from ``backbone`` (a `protdistill distill`
    ESM student) or else from the teacher's own layers."""
    torch.manual_seed(cfg.student_seed_or_seed)
    student = build_student(student_config(cfg))
    if cfg.student == "esm" and backbone is not None:
        init_from_small_esm(student, backbone)
        log(f"ESM student initialised from {backbone}")
    elif cfg.student == "esm":
        layers = init_from_esm(student, load_esm(cfg.teacher)[0])
        log(f"ESM student initialised from the teacher's layers {layers}")
    return student


def _module(
    cfg: PpiConfig, student, logits, embeddings, uses_map: bool, backbone, teacher_scores
) -> PpiModule:
    """The training module; with a backbone, its encoder (and pooled projector) to start from."""
    resnet_backbone = backbone is not None and cfg.student != "esm"
    init = init_from_backbone(student, student_config(cfg), backbone) if resnet_backbone else None
    module = PpiModule(
        student,
        train_config(cfg),
        alpha=cfg.alpha if logits else 0.0,
        temperature=cfg.temperature,
        map_weight=cfg.map_weight if uses_map else 0,
        map_loss=cfg.map_loss,
        feature_weight=cfg.feature_weight if embeddings else 0.0,
        teacher_dim=next(iter(embeddings.values())).shape[0] if embeddings else None,
        rank_weight=cfg.rank_weight if teacher_scores else 0.0,
        teacher_scores=teacher_scores,
    )
    if init is not None and hasattr(module, "projector"):
        _init_projector(module.projector, init["state"])
    return module


def _save_projector(module: PpiModule, best_path: Path | None, path: Path) -> None:
    """The best epoch's feature-KD projector, when it has weights (not an identity)."""
    projector = getattr(module, "projector", None)
    if projector is None or best_path is None or not list(projector.parameters()):
        return
    state, _ = student_state_from_checkpoint(best_path, prefix="projector.")
    save_model(path, state, {"dim": projector.teacher_dim})


def _init_projector(projector: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Start feature KD from the backbone's pooled projector when the widths agree."""
    theirs = {k.removeprefix("projector."): v for k, v in state.items() if k.startswith("proj")}
    ours = projector.state_dict()
    if theirs.keys() == ours.keys() and all(theirs[k].shape == v.shape for k, v in ours.items()):
        projector.load_state_dict(theirs)


def _datasets(
    cfg: PpiConfig,
    data: PpiData,
    split: dict[str, list[Pair]],
    logits: dict[str, torch.Tensor] | None,
    maps: dict[str, list] | None,
    embeddings: dict[str, torch.Tensor] | None,
) -> dict[str, PairDataset]:
    """Train / val pair datasets carrying the teacher outputs; augmentation on train only."""
    return {
        name: PairDataset(
            split[name],
            data.sequences,
            max_residues=cfg.max_residues,
            teacher_logits=None if logits is None else logits[name],
            teacher_maps=None if maps is None else maps[name],
            teacher_embeddings=embeddings,
            mask_rate=cfg.mask_rate if name == "train" else 0.0,
            swap_rate=cfg.swap_rate if name == "train" else 0.0,
        )
        for name in ("train", "val")
    }
