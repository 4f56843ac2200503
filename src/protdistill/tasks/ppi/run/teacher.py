"""Stage 2 of the PPI flow: teacher outputs. Pooled ESM-2 embeddings per protein and binned
inter-protein contact maps per pair (both through the content-addressed teacher cache), and the
teacher head trained on frozen embeddings, whose logits the student distils."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file

from protdistill.distill.checkpoint import load_model_state, save_model
from protdistill.io.atomic import save_tensors
from protdistill.io.pairs import Pair
from protdistill.progress import Log, no_log
from protdistill.tasks.ppi.common.cache_fill import fill_cache
from protdistill.tasks.ppi.common.config import PpiConfig
from protdistill.tasks.ppi.common.data import PpiData
from protdistill.tasks.ppi.common.maps import pool_map
from protdistill.tasks.ppi.run.prepare import proteins_of
from protdistill.tasks.ppi.run.teacher_head import (
    TeacherHead,
    crossfit_logits,
    head_logits,
    train_head,
)
from protdistill.teachers.cache import TeacherCache, sequence_key
from protdistill.teachers.esm import EsmTeacher
from protdistill.teachers.loading import with_precision
from protdistill.teachers.pair_maps import kd_target, teacher_pair_map


def cache_root(cfg: PpiConfig, run_dir: Path) -> Path:
    return Path(cfg.cache) if cfg.cache else run_dir.parent / "teacher_cache"


def _settings_dir(root: Path, kind: str, settings: dict, teacher=None) -> Path:
    """The cache folder of ``settings``; a reduced-precision teacher gets its own."""
    settings = with_precision(settings, teacher)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return root / f"{kind}-{digest}"


def load_teacher(cfg: PpiConfig):
    """The frozen ESM-2 teacher named by ``cfg.teacher`` (hub id or local directory)."""
    return EsmTeacher(
        cfg.teacher,
        max_residues=cfg.teacher_max_residues,
        long_policy=cfg.long_policy,
        tokens_per_batch=cfg.tokens_per_batch,
        precision=cfg.teacher_precision,
    )


def embed_proteins(
    cfg: PpiConfig, run_dir: Path, sequences: dict[str, str], teacher=None, *, log: Log = no_log
) -> dict[str, torch.Tensor]:
    """Pooled teacher embedding (D,) per protein id, computing only what the cache lacks."""
    teacher = teacher or load_teacher(cfg)
    settings = {
        "layer": cfg.teacher_layer,
        "long_policy": cfg.long_policy,
        "max_residues": cfg.teacher_max_residues,
    }
    cache = TeacherCache(
        _settings_dir(cache_root(cfg, run_dir), "embed", settings, teacher),
        teacher.identity,
        settings,
    )
    keyed = {sequence_key(s): s for s in sequences.values()}

    def compute(seqs: list[str]) -> list[torch.Tensor]:
        return [e.pooled for e in teacher.embed(seqs, layers=cfg.teacher_layer)]

    log(f"teacher embeddings: {len(keyed)} proteins, cache {cache.root}")
    fill_cache(cache, keyed, compute, "pooled", 64, "embedding proteins", cfg.progress)
    keys = {pid: sequence_key(s) for pid, s in sequences.items()}
    values = cache.get_batch(list(keys.values()), "pooled")
    return {pid: v.float() for pid, v in zip(keys, values, strict=True)}


def standardise(emb: dict[str, torch.Tensor], fit_on: set[str]) -> dict[str, torch.Tensor]:
    """Z-score every embedding with the per-dimension mean / sd of the proteins in ``fit_on``.

    ESM-2 mean-pooled embeddings share a large common direction; without this, feature KD is
    mostly rewarded for reproducing that constant.
    """
    mean, sd = standard_stats(emb, fit_on)
    return {p: (v - mean) / sd for p, v in emb.items()}


def standard_stats(
    emb: dict[str, torch.Tensor], fit_on: set[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and sd (floored at 1e-6) of the embeddings of ``fit_on``."""
    stacked = torch.stack([emb[p] for p in sorted(fit_on)])
    return stacked.mean(0), stacked.std(0).clamp_min(1e-6)


def teacher_maps(
    cfg: PpiConfig,
    run_dir: Path,
    sequences: dict[str, str],
    pairs: list[Pair],
    teacher=None,
    *,
    log: Log = no_log,
) -> list[torch.Tensor]:
    """Binned teacher interaction map (na, nb) per pair, computing only what the cache lacks."""
    teacher = teacher or load_teacher(cfg)
    settings = {"map_residues": cfg.map_residues, "map_bins": cfg.map_bins, "linker": "G25"}
    if cfg.teacher_map != "contact":  # the first wave's maps keep their cache key
        settings["construction"] = cfg.teacher_map
    cache = TeacherCache(
        _settings_dir(cache_root(cfg, run_dir), "pairmap", settings, teacher),
        teacher.identity,
        settings,
    )
    crop = cfg.map_residues
    ordered = [(sequences[p.a][:crop], sequences[p.b][:crop]) for p in pairs]
    keyed = {sequence_key(a, b): (a, b) for a, b in ordered}

    def compute(items: list[tuple[str, str]]) -> list[torch.Tensor]:
        if cfg.teacher_map == "contact":
            raw = [m.map for m in teacher.pair_maps(items)]
        else:
            raw = [kd_target(teacher_pair_map(teacher, a, b, cfg.teacher_map)) for a, b in items]
        return [pool_map(m, crop, cfg.map_bins).half() for m in raw]

    log(f"teacher interaction maps: {len(keyed)} pairs, {cfg.map_bins}x{cfg.map_bins} bins")
    fill_cache(
        cache, keyed, compute, "map", 32, "teacher pair maps", cfg.progress,
        cost=lambda pair: len(pair[0]) + len(pair[1]),
    )  # fmt: skip
    return cache.get_batch([sequence_key(a, b) for a, b in ordered], "map")


def _maps_for(
    cfg: PpiConfig, run_dir: Path, data: PpiData, pairs: list[Pair], teacher, log: Log
) -> list[torch.Tensor]:
    """Teacher maps for ``pairs``; with ``map_pairs`` only a seeded subset gets one and the
    others get an empty (0, 0) map, which masks them out of the map loss."""
    chosen = range(len(pairs))
    if cfg.map_pairs is not None and cfg.map_pairs < len(pairs):
        chosen = sorted(random.Random(cfg.seed).sample(range(len(pairs)), cfg.map_pairs))
    computed = teacher_maps(
        cfg, run_dir, data.sequences, [pairs[i] for i in chosen], teacher, log=log
    )
    maps = [torch.zeros(0, 0)] * len(pairs)
    for i, m in zip(chosen, computed, strict=True):
        maps[i] = m
    return maps


def fit_teacher(
    cfg: PpiConfig,
    run_dir: Path,
    emb: dict[str, torch.Tensor],
    split: dict[str, list[Pair]],
    *,
    log: Log = no_log,
) -> dict[str, torch.Tensor]:
    """Train the teacher head; logits per split (out-of-fold on train when crossfitting)."""
    path = run_dir / "teacher" / "logits.safetensors"
    if path.exists():
        return load_file(path)
    kw = {"hidden": cfg.head_hidden, "epochs": cfg.head_epochs, "batch_size": cfg.head_batch}
    log("training the teacher head on frozen embeddings")
    head = train_head(emb, split["train"], split["val"], seed=cfg.seed, **kw)
    logits = {name: head_logits(head, emb, pairs) for name, pairs in split.items()}
    if cfg.head_crossfit > 1:
        logits["train"] = crossfit_logits(
            emb, split["train"], folds=cfg.head_crossfit, seed=cfg.seed, **kw
        )
    save_model(
        run_dir / "teacher" / "head.safetensors",
        head,
        {
            "dim": next(iter(emb.values())).shape[0],
            "hidden": cfg.head_hidden,
            "teacher": cfg.teacher,
        },
    )
    save_tensors(path, logits)
    return logits


def distill_targets(
    cfg: PpiConfig,
    run_dir: Path,
    data: PpiData,
    split: dict[str, list[Pair]],
    teacher=None,
    emb: dict[str, torch.Tensor] | None = None,
    *,
    log: Log = no_log,
) -> tuple[dict[str, list] | None, dict[str, torch.Tensor] | None, Scorer | None]:
    """Teacher maps (train / val) when the map loss is on; standardised teacher embeddings when
    feature or ranking KD is on; for ranking KD, the teacher head's scores of standardised
    embeddings. Maps and embeddings come from the teacher cache when it has them."""
    maps = feats = scores = None
    if cfg.uses_map:
        teacher = teacher or load_teacher(cfg)
        maps = {n: _maps_for(cfg, run_dir, data, split[n], teacher, log) for n in ("train", "val")}
    if cfg.feature_weight > 0 or cfg.rank_weight > 0:
        emb = emb or embed_proteins(cfg, run_dir, data.sequences, teacher, log=log)
        train_proteins = proteins_of(split["train"])
        feats = standardise(emb, train_proteins)
        if cfg.rank_weight > 0:
            scores = teacher_scores(run_dir, *standard_stats(emb, train_proteins))
    return maps, feats, scores


#: (R, D), (C, D) standardised teacher embeddings -> (R, C) logits
Scorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def teacher_scores(run_dir: Path, mean: torch.Tensor, sd: torch.Tensor) -> Scorer:
    """The run's frozen teacher head as a scorer of every row x column pair of embeddings
    standardised with ``mean`` / ``sd`` (what the student's batches carry)."""
    head = load_teacher_head(run_dir)
    for p in head.parameters():
        p.requires_grad_(False)

    def score(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return head.score(rows * sd + mean, cols * sd + mean)

    return score


def load_teacher_head(run_dir: Path) -> TeacherHead:
    """The teacher head ``fit_teacher`` saved in ``run_dir``, in eval mode."""
    state, meta = load_model_state(run_dir / "teacher" / "head.safetensors")
    head = TeacherHead(int(meta["dim"]), int(meta["hidden"]))
    head.load_state_dict(state)
    return head.eval()
