"""Training a per-residue site model (the teacher head on cached states, or a student on tokens)
on labelled chains: length-sorted batches under a residue budget, masked class-weighted loss,
the epoch with the best validation AUROC kept (the val split is used for selection only)."""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from protdistill.config import Config
from protdistill.errors import ConfigError
from protdistill.students.site import residue_dim, site_kd_loss
from protdistill.tasks.ppi.sites.metrics import site_metrics
from protdistill.teachers.windows import stack_padded


class SiteTrainConfig(Config):
    """Optimiser and loss settings (``alpha``: weight of the teacher's soft targets)."""

    epochs: int = 8
    lr: float = 2e-3
    weight_decay: float = 0.01
    residues_per_batch: int = 8192
    alpha: float = 0.5
    pos_weight: float | None = None  # None: negatives / positives of the training labels
    seed: int = 0
    schedule: Literal["constant", "cosine"] = "constant"  # cosine: lr decays to 0 by the end
    #: weight of per-residue feature KD: 1 - cosine between a linear map of the student's
    #: residue features and the teacher's states (needs the states; 0 = off)
    feature_weight: float = Field(0.0, ge=0)


def length_batches(lengths: Sequence[int], budget: int, rng: random.Random | None) -> list:
    """Index groups of similar length whose padded size stays within ``budget`` residues;
    shuffled (order of groups) when ``rng`` is given."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups, current = [], []
    for i in order:
        if current and lengths[i] * (len(current) + 1) > budget:
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    if rng is not None:
        rng.shuffle(groups)
    return groups


def collate(items: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Right-padded batch (tokens pad with 0 = PAD) and its mask."""
    return stack_padded(list(items))


@torch.no_grad()
def predict_logits(model: nn.Module, inputs: Sequence[Tensor], budget: int = 16384) -> list:
    """Per-chain site logits (float32 numpy), in input order."""
    model.eval()
    out: list = [None] * len(inputs)
    for group in length_batches([len(x) for x in inputs], budget, None):
        x, mask = collate([inputs[i] for i in group])
        logits = model(x.float() if x.dtype == torch.float16 else x, mask)
        for row, i in enumerate(group):
            out[i] = logits[row, : len(inputs[i])].float().numpy()
    return out


def fit_sites(
    model: nn.Module,
    train: tuple[Sequence[Tensor], Sequence[Sequence[int]], Sequence[Tensor] | None],
    val: tuple[Sequence[Tensor], Sequence[Sequence[int]]],
    cfg: SiteTrainConfig,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[nn.Module, dict]:
    """Train on ``(inputs, labels, teacher probabilities or None)``; keep the best val epoch.
    Returns the model (best weights) and a history with seconds and residues per second."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    inputs, labels, soft, *rest = train
    states = rest[0] if rest and cfg.feature_weight > 0 else None
    if cfg.feature_weight > 0 and states is None:
        raise ConfigError("feature KD needs the teacher's residue states of the train chains",
                          fix="pass the states, or set feature_weight 0")  # fmt: skip
    flat = np.concatenate([np.asarray(y) for y in labels])
    pos_weight = cfg.pos_weight or float((len(flat) - flat.sum()) / max(flat.sum(), 1))
    targets = [torch.tensor(y, dtype=torch.float32) for y in labels]
    projector = _projector(model, states)
    params = [*model.parameters(), *(projector.parameters() if projector else [])]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * len(length_batches([len(x) for x in inputs], cfg.residues_per_batch, None))
    sched = _schedule(opt, cfg.schedule, steps)
    best, best_state, history = -1.0, None, []
    for epoch in range(cfg.epochs):
        model.train()
        start, seen = time.time(), 0
        for group in length_batches([len(x) for x in inputs], cfg.residues_per_batch, rng):
            x, mask = collate([inputs[i] for i in group])
            y, _ = collate([targets[i] for i in group])
            s = collate([soft[i] for i in group])[0] if soft is not None else None
            x = x.float() if x.dtype == torch.float16 else x
            if projector is None:
                logits, feature_loss = model(x, mask), 0.0
            else:
                logits, feature_loss = _with_feature_kd(model, projector, x, mask,
                                                        [states[i] for i in group])  # fmt: skip
            loss = site_kd_loss(
                logits, mask, y, s, alpha=cfg.alpha if s is not None else 0.0,
                pos_weight=pos_weight,
            ) + cfg.feature_weight * feature_loss  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += int(mask.sum())
        seconds = time.time() - start
        scores = predict_logits(model, val[0])
        auroc = site_metrics(scores, val[1])["auroc"]
        history.append({"epoch": epoch + 1, "val_auroc": auroc, "train_seconds": seconds,
                        "train_residues_per_s": seen / max(seconds, 1e-9)})  # fmt: skip
        log(f"epoch {epoch + 1}: val AUROC {auroc:.4f} ({seconds:.0f} s)")
        if auroc > best:
            best, best_state = auroc, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), {"best_val_auroc": best, "pos_weight": pos_weight, "epochs": history}


def _schedule(opt: torch.optim.Optimizer, kind: str, steps: int) -> LambdaLR:
    """Per-step learning-rate factor: constant, or cosine from 1 to 0 over ``steps``."""
    if kind == "cosine":
        return LambdaLR(
            opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
        )
    return LambdaLR(opt, lambda _: 1.0)


def _projector(model: nn.Module, states: Sequence[Tensor] | None) -> nn.Module | None:
    """The linear map from the student's residue features to the teacher's state width (trained
    with the model, not kept): only for feature KD of a student that has ``residues``."""
    if states is None:
        return None
    if not hasattr(model, "residues"):
        raise ConfigError("feature KD needs a student with per-residue features",
                          fix="set feature_weight 0 for this model")  # fmt: skip
    return nn.Conv1d(residue_dim(model.encoder), int(states[0].shape[-1]), 1)


def _with_feature_kd(
    model: nn.Module, projector: nn.Module, x: Tensor, mask: Tensor, states: list[Tensor]
) -> tuple[Tensor, Tensor]:
    """Site logits of ``model`` and the masked mean of 1 - cosine(projected features, states)."""
    features = model.residues(x, mask)  # (B, C, L)
    logits = model.head(features).masked_fill(~mask, -1e4)
    target, _ = collate(states)  # (B, L, D)
    cos = torch.nn.functional.cosine_similarity(
        projector(features).transpose(1, 2), target.float(), dim=-1
    )
    return logits, ((1 - cos) * mask).sum() / mask.sum().clamp(min=1)
