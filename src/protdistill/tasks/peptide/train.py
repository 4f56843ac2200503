"""Training StructDiff: Lightning module (diffusion + structure head + decoder) and the pipeline.

Files under ``cfg.out``: ``split.json`` (train/val peptides), ``stages/<i>-<name>/`` (the
trainer's checkpoints, metrics, history per stage; a finished stage has ``done.json``),
``model.safetensors`` (the bundle ``sample`` loads), ``classifier.safetensors`` (type classifier
for conditional fidelity) and ``train_metrics.json``. Re-running resumes where it stopped.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from protdistill.distill.checkpoint import (
    load_model_state,
    save_model,
    student_state_from_checkpoint,
)
from protdistill.distill.trainer import DistillModule, TrainConfig, fit
from protdistill.errors import ConfigError, InputError, ModelError
from protdistill.io.atomic import write_json
from protdistill.io.peptides import Peptide, read_peptides
from protdistill.progress import Log
from protdistill.tasks.peptide.baselines import length_distribution
from protdistill.tasks.peptide.classifier import train_type_classifier
from protdistill.tasks.peptide.config import PeptideTrainConfig, StageConfig
from protdistill.tasks.peptide.data import (
    PeptideDataset,
    PeptideSplit,
    TeacherFeatures,
    collate,
    compute_features,
    embedding_stats,
    split_like,
    split_peptides,
    type_balanced_sampler,
)
from protdistill.tasks.peptide.decoder import (
    LETTERS,
    LMHeadDecoder,
    decoder_accuracy,
    rounding_loss,
)
from protdistill.tasks.peptide.denoiser import DenoiserConfig, StructureFeatures
from protdistill.tasks.peptide.diffusion import GaussianDiffusion
from protdistill.tasks.peptide.families import family_split
from protdistill.tasks.peptide.model import StructDiff, StructDiffNet
from protdistill.tasks.peptide.resume_check import check_same_settings
from protdistill.tasks.peptide.structure import FoldFeaturizer, pair_dim, residue_dim
from protdistill.teachers.esm import EsmTeacher, stack_padded


def _quiet(_: str) -> None:
    return None


class StructDiffModule(DistillModule):
    """Loss = diffusion MSE + w_s · structure-head BCE + w_d · decoder CE (cached teacher data)."""

    def __init__(
        self,
        net: StructDiffNet,
        diffusion: GaussianDiffusion,
        cfg: PeptideTrainConfig,
        stage: StageConfig,
    ) -> None:
        super().__init__(net, cfg.train)
        self.diffusion = diffusion
        self.pcfg = cfg
        self.stage = stage
        self.add_config("peptide", cfg)

    def step(self, batch: dict, stage: str) -> dict[str, Tensor]:
        net, cfg = self.student, self.pcfg
        den = net.denoiser
        x0, mask, types = batch["x0"], batch["mask"], batch["type_ids"]
        b = x0.shape[0]
        training = stage == "train"
        if training and cfg.p_uncond > 0:
            drop = torch.rand(b, device=x0.device) < cfg.p_uncond
            types = torch.where(drop, torch.full_like(types, den.null_type), types)
        target = StructureFeatures(batch.get("pair"), batch.get("residue"))
        feats = None
        if self.stage.structure and (target.pair is not None or target.residue is not None):
            present = torch.ones(b, dtype=torch.bool, device=x0.device)
            if training and cfg.p_no_structure > 0:
                present = torch.rand(b, device=x0.device) >= cfg.p_no_structure
            feats = StructureFeatures(target.pair, target.residue, present)

        def model_fn(x: Tensor, t: Tensor, _: Tensor | None) -> Tensor:
            x0_self = self._self_estimate(x, t, types, mask, feats, training)
            return den(x, t, types, mask, feats, x0_self).prediction

        diff, x0_hat, t = self.diffusion.loss_terms(model_fn, x0, mask)
        out = {"diffusion": diff}
        loss = diff
        if cfg.rounding_loss_weight > 0:
            abar = self.diffusion.alphas_cumprod.to(x0.device)[t]
            r_loss = rounding_loss(net.decoder, x0_hat, mask, batch["seqs"], abar)
            loss = loss + cfg.rounding_loss_weight * r_loss
            out["rounding"] = r_loss
        if den.structure_head is not None and cfg.structure_loss_weight > 0:
            s_loss = den.structure_head.loss(x0, mask, target)
            loss = loss + cfg.structure_loss_weight * s_loss
            out["structure"] = s_loss
        if cfg.decoder_loss_weight > 0:
            d_loss = net.decoder.loss(x0, mask, batch["seqs"], cfg.decoder_noise * cfg.signal_scale)
            loss = loss + cfg.decoder_loss_weight * d_loss
            out["decoder"] = d_loss
        if not training:
            acc = decoder_accuracy(net.decoder, x0, mask, batch["seqs"])
            out["decoder_acc"] = torch.tensor(acc)
        out["loss"] = loss
        return out

    def _self_estimate(
        self,
        x: Tensor,
        t: Tensor,
        types: Tensor,
        mask: Tensor,
        feats: StructureFeatures | None,
        training: bool,
    ) -> Tensor | None:
        """Self-conditioning input: the network's own clean estimate (no gradient) for half of
        the training samples, for all in validation (as when sampling); None for other models."""
        den = self.student.denoiser
        if den.self_cond is None:
            return None
        keep = torch.rand(x.shape[0], device=x.device) < 0.5 if training else None
        with torch.no_grad():
            est = self.diffusion.predict_x0(x, t, den(x, t, types, mask, feats).prediction)
        return est if keep is None else est * keep[:, None, None].to(est.dtype)


def _set_trainable(net: StructDiffNet, mode: str) -> None:
    """'all', 'sequence' (structure parameters frozen) or 'structure' (only those learn)."""
    struct = {id(p) for p in net.denoiser.structure_parameters()}
    frozen = set() if net.lm_decoder is None else {id(p) for p in net.lm_decoder.parameters()}
    for p in net.parameters():
        if id(p) in frozen:
            continue
        is_struct = id(p) in struct
        p.requires_grad_(mode == "all" or (mode == "structure") == is_struct)


def load_data(cfg: PeptideTrainConfig) -> tuple[list[Peptide], PeptideSplit]:
    peps, _ = read_peptides(
        cfg.data,
        types=cfg.types,
        max_length=cfg.max_length,
        type_column=cfg.type_column,
        sequence_column=cfg.sequence_column,
    )
    if cfg.split_from:
        return peps, split_like(peps, read_split(cfg.split_from), cfg.split_from)
    return peps, split_peptides(peps, cfg.val_fraction, cfg.split_seed)


def teacher_features(
    cfg: PeptideTrainConfig,
    seqs: list[str],
    teacher=None,
    log: Log = _quiet,  # noqa: ANN001
) -> tuple[TeacherFeatures, object]:
    """Cached teacher (and optional ESMFold) features for ``seqs``; returns (features, teacher)."""
    teacher = teacher or EsmTeacher(cfg.teacher, tokens_per_batch=cfg.tokens_per_batch)
    fold = None
    if cfg.fold_model:
        fold = FoldFeaturizer.from_pretrained(cfg.fold_model)
    root = Path(cfg.cache) if cfg.cache else Path(cfg.out).parent / "teacher_cache" / "peptide"
    log(f"teacher features for {len(set(seqs))} peptides (cache {root})")
    feats = compute_features(
        teacher,
        seqs,
        cache_root=root,
        contacts=cfg.structure,
        fold=fold,
        progress=lambda i, n: log(f"  teacher features {i}/{n}"),
    )
    return feats, teacher


def lm_decoder_for(cfg: PeptideTrainConfig, teacher) -> LMHeadDecoder | None:  # noqa: ANN001
    """The teacher's masked-LM head as decoder (``decoder: auto|lm_head``), or None."""
    head = getattr(teacher, "lm_head", None)
    if cfg.decoder == "trained" or (head is None and cfg.decoder == "auto"):
        return None
    if head is None:
        raise ModelError(
            "the teacher has no masked-LM head",
            path=cfg.teacher,
            fix="set decoder: trained (or auto) to fit a residue decoder on the embeddings",
        )
    vocab = teacher.tokenizer.get_vocab()
    return LMHeadDecoder(copy.deepcopy(head).float().cpu(), [vocab[a] for a in LETTERS])


def build_net(
    cfg: PeptideTrainConfig,
    embed_dim: int,
    num_types: int,
    lm_decoder: LMHeadDecoder | None = None,
) -> StructDiffNet:
    use_fold = cfg.fold_model is not None
    dcfg = DenoiserConfig(
        embed_dim=embed_dim,
        num_types=num_types,
        max_length=cfg.max_length,
        pair_dim=(1 if cfg.structure else 0) + (pair_dim(True) - 1 if use_fold else 0),
        residue_dim=residue_dim(use_fold),
        **cfg.model.model_dump(exclude={"decoder_hidden", "families"}),
    )
    return StructDiffNet(dcfg, cfg.model.decoder_hidden, lm_decoder)


def _loader(
    cfg: PeptideTrainConfig, items: list[Peptide], data: tuple, *, shuffle: bool
) -> DataLoader:
    """Batches of ``items``; training draws types evenly when ``cfg.balance_types``."""
    types, feats, mean, std = data
    use_fold = cfg.fold_model is not None
    ds = PeptideDataset(items, types, feats, mean, std, contacts=cfg.structure, fold=use_fold)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    batch = cfg.train.batch_size
    if shuffle and cfg.balance_types:
        sampler = type_balanced_sampler(items, gen)
        return DataLoader(ds, batch_size=batch, sampler=sampler, collate_fn=collate)
    return DataLoader(ds, batch_size=batch, shuffle=shuffle, collate_fn=collate, generator=gen)


def train_structdiff(
    cfg: PeptideTrainConfig,
    *,
    teacher=None,
    log: Log = _quiet,  # noqa: ANN001
) -> dict:
    """Run every configured stage (resuming), then write the model bundle and classifier."""
    out = Path(cfg.out)
    if not cfg.stages:
        raise ConfigError("no training stages configured", fix="give at least one entry in stages")
    for i, stage in enumerate(cfg.stages):  # before anything is written
        check_same_settings(out / "stages" / f"{i}-{stage.name}", cfg)
    peps, split = load_data(cfg)
    write_json(out / "split.json", _split_json(split))
    log(f"{len(split.train)} train / {len(split.val)} val peptides, types {split.types}")
    feats, teacher = teacher_features(cfg, [p.sequence for p in peps], teacher, log)
    train_embeddings = [feats.embeddings[s] for s in split.sequences("train")]
    mean, std = embedding_stats(train_embeddings, cfg.signal_scale)
    labelled, families = family_split(split, feats.embeddings, cfg.model.families, cfg.train.seed)
    data = (labelled.types, feats, mean, std)
    train_loader = _loader(cfg, labelled.train, data, shuffle=True)
    val_loader = _loader(cfg, labelled.val, data, shuffle=False) if labelled.val else None
    torch.manual_seed(cfg.train.seed)
    net = build_net(cfg, mean.numel(), len(labelled.types), lm_decoder_for(cfg, teacher))
    net.mean.copy_(mean)
    net.std.copy_(std)
    diffusion = GaussianDiffusion(cfg.timesteps, cfg.schedule, cfg.objective)
    started = time.perf_counter()
    stage_info = []
    for i, stage in enumerate(cfg.stages):
        stage_dir = out / "stages" / f"{i}-{stage.name}"
        done = stage_dir / "done.json"
        if done.exists():
            state, _ = load_model_state(stage_dir / "stage_model.safetensors")
            net.load_state_dict(state)
            log(f"stage {stage.name}: already done, skipped")
            continue
        _set_trainable(net, stage.trainable)
        module = StructDiffModule(net, diffusion, cfg, stage)
        tcfg = TrainConfig.model_validate({**cfg.train.model_dump(), "epochs": stage.epochs})
        log(f"stage {i} {stage.name}: {stage.epochs} epochs, trainable={stage.trainable}")
        result = fit(module, train_loader, val_loader, tcfg, stage_dir, resume=True)
        if result.best_path is not None:
            state, _ = student_state_from_checkpoint(result.best_path)
            net.load_state_dict(state)

        save_model(stage_dir / "stage_model.safetensors", net, {"stage": stage.model_dump()})
        info = {"stage": stage.name, "best_score": result.best_score, "epochs": len(result.history)}
        write_json(done, info)
        stage_info.append(info)
    _set_trainable(net, "all")
    train_seconds = time.perf_counter() - started
    bundle = StructDiff(net, diffusion, labelled.types, _lengths(labelled), families=families)
    metrics = _finish(cfg, bundle, split, feats, teacher, stage_info, train_seconds, log)
    return metrics


def _lengths(split: PeptideSplit) -> dict[str, dict[int, int]]:
    return {t: length_distribution(split.sequences("train", t)) for t in split.types}


def _finish(
    cfg: PeptideTrainConfig,
    model: StructDiff,
    split: PeptideSplit,
    feats: TeacherFeatures,
    teacher,  # noqa: ANN001
    stage_info: list[dict],
    train_seconds: float,
    log: Log,
) -> dict:
    out, net = Path(cfg.out), model.net.eval()
    val_seqs = split.sequences("val") or split.sequences("train")
    acc = _decoder_accuracy(net, feats, val_seqs)
    lm_acc = _decoder_accuracy(net, feats, val_seqs, lm=True) if net.lm_decoder else None
    model.meta = {
        "teacher": teacher.identity,
        "teacher_path": cfg.teacher,
        "decoder": "trained" if net.lm_decoder is None else "lm_head",
        "decoder_val_accuracy": acc,
        "lm_head_val_accuracy": lm_acc,
        "config": cfg.model_dump(mode="json"),
        "split": str(out / "split.json"),
    }
    model.save(out / "model.safetensors")
    log(f"decoder accuracy on real held-out embeddings: {acc:.4f}")
    clf = None  # one type: nothing to tell apart; evaluate can take another run's classifier
    if len(split.types) > 1:
        clf = train_type_classifier(split, feats, out / "classifier", seed=cfg.train.seed, log=log)
    else:
        log("type classifier skipped: one type (for fidelity, evaluate: {classifier: <run>})")
    metrics = {
        "train_seconds": train_seconds,
        "decoder_val_accuracy": acc,
        "lm_head_val_accuracy": lm_acc,
        "decoder_used": model.meta["decoder"],
        "classifier": clf,
        "stages": stage_info,
        "n_train": len(split.train),
        "n_val": len(split.val),
    }
    write_json(out / "train_metrics.json", metrics)
    return metrics


@torch.no_grad()
def _decoder_accuracy(
    net: StructDiffNet, feats: TeacherFeatures, seqs: list[str], lm: bool = False
) -> float:
    correct = total = 0.0
    for i in range(0, len(seqs), 256):
        chunk = seqs[i : i + 256]
        x, mask = stack_padded([feats.embeddings[s] for s in chunk])
        if lm:
            acc = decoder_accuracy(net.lm_decoder, x, mask, chunk)
        else:
            z = net.standardise(x) * mask[..., None]
            acc = decoder_accuracy(net.decoder, z, mask, chunk)
        n = sum(len(s) for s in chunk)
        correct += acc * n
        total += n
    return correct / max(total, 1)


def _split_json(split: PeptideSplit) -> dict:
    def rows(items: list[Peptide]) -> list[list[str]]:
        return [[p.type, p.sequence] for p in items]

    return {"types": split.types, "train": rows(split.train), "val": rows(split.val)}


def read_split(path: str | Path) -> PeptideSplit:
    """Inverse of the ``split.json`` written by training."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            "split.json not found", path=path, fix="run `protdistill peptide train` first"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    return PeptideSplit(
        train=[Peptide(s, t) for t, s in data["train"]],
        val=[Peptide(s, t) for t, s in data["val"]],
        types=list(data["types"]),
    )
