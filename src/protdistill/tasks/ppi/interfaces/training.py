"""Supervised interface learning: fine-tune an interaction student's map on solved complexes.

The loss has two terms on the full-length map logits ``s`` of a complex: a class-balanced binary
cross-entropy over cells against the contact matrix, and a binary cross-entropy of each residue's
soft maximum (``logsumexp`` over its row or column, minus log of the row length) against "this
residue is at the interface" — the quantity the interface AUROC ranks. Evaluation is always on
complexes whose PDB entry was not trained on (:func:`cross_validate`).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from protdistill.alphabet import encode_batch
from protdistill.config import Config
from protdistill.io.contacts import Complex
from protdistill.tasks.ppi.interfaces import metrics as im


class InterfaceTrainConfig(Config):
    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 0.01
    residue_weight: float = 1.0
    max_residues: int = 512
    seed: int = 0


def _crop(c: Complex, limit: int, rng: random.Random) -> tuple[str, str, torch.Tensor]:
    """A random window of at most ``limit`` residues per chain and its contact matrix."""
    truth = c.contact_matrix()
    sa = rng.randrange(len(c.seq_a) - limit + 1) if len(c.seq_a) > limit else 0
    sb = rng.randrange(len(c.seq_b) - limit + 1) if len(c.seq_b) > limit else 0
    return (
        c.seq_a[sa : sa + limit],
        c.seq_b[sb : sb + limit],
        truth[sa : sa + limit, sb : sb + limit],
    )


def interface_loss(
    scores: torch.Tensor, truth: torch.Tensor, residue_weight: float
) -> torch.Tensor:
    """Balanced cell BCE + residue BCE on soft row / column maxima of ``(La, Lb)`` logits."""
    target = truth.float()
    positives = target.sum().clamp(min=1)
    pos_weight = ((target.numel() - positives) / positives).clamp(max=1e4)
    cells = F.binary_cross_entropy_with_logits(scores, target, pos_weight=pos_weight)
    rows = torch.logsumexp(scores, 1) - math.log(scores.shape[1])
    cols = torch.logsumexp(scores, 0) - math.log(scores.shape[0])
    soft_max = torch.cat([rows, cols])
    labels = torch.cat([truth.any(1), truth.any(0)]).float()
    residues = F.binary_cross_entropy_with_logits(soft_max, labels)
    return cells + residue_weight * residues


def map_logits(model: nn.Module, seq_a: str, seq_b: str) -> torch.Tensor:
    """``(La, Lb)`` full-length map logits of an interaction student for one pair."""
    tokens_a, mask_a = encode_batch([seq_a])
    tokens_b, mask_b = encode_batch([seq_b])
    ha, hb = model.residues(tokens_a, mask_a), model.residues(tokens_b, mask_b)
    return model.interaction_map(ha, hb, mask_a, mask_b)[0]


def fine_tune(
    model: nn.Module, complexes: Sequence[Complex], cfg: InterfaceTrainConfig
) -> nn.Module:
    """A copy of ``model`` whose map is trained on ``complexes`` (one complex per step)."""
    model = copy.deepcopy(model).train()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    params = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * len(complexes)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=max(steps, 1))
    order = list(range(len(complexes)))
    for _ in range(cfg.epochs):
        rng.shuffle(order)
        for i in order:
            seq_a, seq_b, truth = _crop(complexes[i], cfg.max_residues, rng)
            loss = interface_loss(map_logits(model, seq_a, seq_b), truth, cfg.residue_weight)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
    return model.eval()


def cross_validate(
    model: nn.Module,
    complexes: Sequence[Complex],
    cfg: InterfaceTrainConfig,
    folds: int = 5,
    log: Callable[[str], None] = print,
) -> list[torch.Tensor]:
    """Held-out map per complex: fold f's complexes are scored by a model fine-tuned on the
    other folds (complexes grouped by PDB entry)."""
    fold_of = im.pdb_folds(complexes, folds)
    maps: list[torch.Tensor | None] = [None] * len(complexes)
    for f in sorted(set(fold_of)):
        train = [c for c, g in zip(complexes, fold_of, strict=True) if g != f]
        tuned = fine_tune(model, train, cfg)
        with torch.no_grad():
            for i, (c, g) in enumerate(zip(complexes, fold_of, strict=True)):
                if g == f:
                    maps[i] = map_logits(tuned, c.seq_a, c.seq_b).float()
        log(f"fold {f}: fine-tuned on {len(train)} complexes")
    return maps
