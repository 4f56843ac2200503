"""The PPI pipeline, one function per stage; each stage skips work whose output already exists,
so a killed `ppi run` resumes where it stopped.

RUN_DIR/
  config.yaml            resolved PpiConfig            split.json        pairs per split
  data_report.json       validation summary            teacher/          head, logits, metrics
  student/               checkpoints, metrics.csv, history.json
  student.safetensors    best student weights + config metadata
  metrics.json           {"teacher": {...}, "student": {...}}
  predictions_test.tsv   roc_curve.png  pr_curve.png  training_curves.png
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from protdistill.errors import CheckpointError, ConfigError, InputError
from protdistill.io.atomic import save_tensors, write_json, write_text
from protdistill.io.pairs import Pair
from protdistill.tasks.ppi.config import PpiConfig
from protdistill.tasks.ppi.data import (
    PairDataset,
    PpiData,
    collate_pairs,
    load_ppi,
    load_split,
    make_split,
    save_split,
    split_validation,
)

Log = Callable[[str], None]
#: Settings that define the data and split; resuming a run with other values is refused.
_DATA_FIELDS = (
    "pairs",
    "fasta",
    "test_pairs",
    "max_pairs",
    "self_pairs",
    "split",
    "test_fraction",
    "val_fraction",
    "folds",
    "seed",
)


def _quiet(_: str) -> None:
    pass


# ----------------------------------------------------------------------------- prepare
def prepare(cfg: PpiConfig, run_dir: Path, *, fold: int = 0, log: Log = _quiet):
    """Validate inputs, write the resolved config and the split; reuse them when resuming."""
    if not cfg.pairs or not cfg.fasta:
        raise ConfigError("both --pairs and --fasta are required", fix="pass the two input files")
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_resume(cfg, run_dir)
    write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.model_dump(), sort_keys=True))
    data = load_ppi(
        cfg.pairs, cfg.fasta, self_pairs=cfg.self_pairs, max_pairs=cfg.max_pairs, seed=cfg.seed
    )
    n_fit = len(data.pairs)
    if cfg.test_pairs:
        data = _with_test_file(cfg, data)
    split_path = run_dir / "split.json"
    if split_path.exists():
        split = load_split(split_path)
        log(f"reusing split {split_path}")
    else:
        if cfg.test_pairs:
            idx = held_out_split(data.pairs, n_fit, cfg.split, cfg.val_fraction, cfg.seed)
        else:
            idx = make_split(
                data.pairs,
                mode=cfg.split,
                test_fraction=cfg.test_fraction,
                val_fraction=cfg.val_fraction,
                folds=cfg.folds,
                fold=fold,
                seed=cfg.seed,
            )
        save_split(split_path, data.pairs, idx)
        split = {name: [data.pairs[i] for i in ids] for name, ids in idx.items()}
    trained_on = _proteins(split["train"])
    report = {
        "pairs_read": data.report.n_read,
        "duplicates_dropped": data.report.duplicates_dropped,
        "self_pairs": data.report.self_pairs,
        "self_pairs_dropped": data.report.self_pairs_dropped,
        "pairs_used": len(data.pairs),
        "proteins": len(data.sequences),
        "split": {name: len(pairs) for name, pairs in split.items()},
        "test_proteins_seen_in_training": len(_proteins(split["test"]) & trained_on),
        "val_pairs_with_a_protein_unseen_in_training": sum(
            bool({p.a, p.b} - trained_on) for p in split["val"]
        ),
    }
    write_json(run_dir / "data_report.json", report)
    log(f"data: {report['pairs_used']} pairs, {report['proteins']} proteins, {report['split']}")
    return data, split


def _proteins(pairs: list[Pair]) -> set[str]:
    return {p for pair in pairs for p in (pair.a, pair.b)}


def _with_test_file(cfg: PpiConfig, data: PpiData) -> PpiData:
    """``data`` followed by the pairs of ``cfg.test_pairs`` (same FASTA)."""
    if cfg.folds > 1:
        raise ConfigError(
            "--test-pairs and --folds > 1 exclude each other", fix="drop one of the two"
        )
    test = load_ppi(cfg.test_pairs, cfg.fasta, self_pairs=cfg.self_pairs)
    return PpiData(data.pairs + test.pairs, {**data.sequences, **test.sequences}, data.report)


def held_out_split(
    pairs: list[Pair], n_fit: int, mode: str, val_fraction: float, seed: int
) -> dict[str, list[int]]:
    """Train / val drawn from the first ``n_fit`` pairs (val as in :func:`make_split` for
    ``mode``); the rest (a held-out file) is test."""
    import random

    rng = random.Random(seed)
    train, val = split_validation(pairs, list(range(n_fit)), mode, val_fraction, rng)
    return {"train": sorted(train), "val": sorted(val), "test": list(range(n_fit, len(pairs)))}


def _check_resume(cfg: PpiConfig, run_dir: Path) -> None:
    old_path = run_dir / "config.yaml"
    if not old_path.exists():
        return
    old = yaml.safe_load(old_path.read_text()) or {}
    for name in _DATA_FIELDS:
        if old.get(name) != getattr(cfg, name):
            raise ConfigError(
                f"this run directory was made with {name}={old.get(name)!r}, not "
                f"{getattr(cfg, name)!r}",
                path=old_path,
                fix="use a new --out directory, or the same settings to resume",
            )


# ----------------------------------------------------------------------------- teacher
def cache_root(cfg: PpiConfig, run_dir: Path) -> Path:
    return Path(cfg.cache) if cfg.cache else run_dir.parent / "teacher_cache"


def _settings_dir(root: Path, kind: str, settings: dict) -> Path:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return root / f"{kind}-{digest}"


def load_teacher(cfg: PpiConfig):
    """The frozen ESM-2 teacher named by ``cfg.teacher`` (hub id or local directory)."""
    from protdistill.teachers.esm import EsmTeacher

    return EsmTeacher(
        cfg.teacher,
        max_residues=cfg.teacher_max_residues,
        long_policy=cfg.long_policy,
        tokens_per_batch=cfg.tokens_per_batch,
    )


def _fill_cache(
    cache, items: dict[str, object], compute, field: str, batch: int, desc: str, progress: bool
) -> None:
    """Compute ``field`` for the keys of ``items`` not yet cached, one shard per batch."""
    missing = cache.missing(list(items), field)
    chunks = [missing[i : i + batch] for i in range(0, len(missing), batch)]
    if progress and chunks:
        from rich.progress import track

        chunks = track(chunks, description=f"{desc} ({len(missing)} to do)")
    for keys in chunks:
        values = compute([items[k] for k in keys])
        cache.put_batch({k: {field: v} for k, v in zip(keys, values, strict=True)})


def embed_proteins(
    cfg: PpiConfig, run_dir: Path, sequences: dict[str, str], teacher=None, *, log: Log = _quiet
) -> dict[str, torch.Tensor]:
    """Pooled teacher embedding (D,) per protein id, computing only what the cache lacks."""
    from protdistill.teachers.cache import TeacherCache, sequence_key

    teacher = teacher or load_teacher(cfg)
    settings = {
        "layer": cfg.teacher_layer,
        "long_policy": cfg.long_policy,
        "max_residues": cfg.teacher_max_residues,
    }
    cache = TeacherCache(
        _settings_dir(cache_root(cfg, run_dir), "embed", settings), teacher.identity, settings
    )
    keyed = {sequence_key(s): s for s in sequences.values()}

    def compute(seqs: list[str]) -> list[torch.Tensor]:
        return [e.pooled for e in teacher.embed(seqs, layers=cfg.teacher_layer)]

    log(f"teacher embeddings: {len(keyed)} proteins, cache {cache.root}")
    _fill_cache(cache, keyed, compute, "pooled", 64, "embedding proteins", cfg.progress)
    keys = {pid: sequence_key(s) for pid, s in sequences.items()}
    values = cache.get_batch(list(keys.values()), "pooled")
    return {pid: v.float() for pid, v in zip(keys, values, strict=True)}


def standardise(emb: dict[str, torch.Tensor], fit_on: set[str]) -> dict[str, torch.Tensor]:
    """Z-score every embedding with the per-dimension mean / sd of the proteins in ``fit_on``.

    ESM-2 mean-pooled embeddings share a large common direction; without this, feature KD is
    mostly rewarded for reproducing that constant.
    """
    stacked = torch.stack([emb[p] for p in sorted(fit_on)])
    mean, sd = stacked.mean(0), stacked.std(0).clamp_min(1e-6)
    return {p: (v - mean) / sd for p, v in emb.items()}


def teacher_maps(
    cfg: PpiConfig,
    run_dir: Path,
    sequences: dict[str, str],
    pairs: list[Pair],
    teacher=None,
    *,
    log: Log = _quiet,
) -> list[torch.Tensor]:
    """Binned teacher interaction map (na, nb) per pair, computing only what the cache lacks."""
    from protdistill.tasks.ppi.maps import pool_map
    from protdistill.teachers.cache import TeacherCache, sequence_key

    teacher = teacher or load_teacher(cfg)
    settings = {"map_residues": cfg.map_residues, "map_bins": cfg.map_bins, "linker": "G25"}
    cache = TeacherCache(
        _settings_dir(cache_root(cfg, run_dir), "pairmap", settings), teacher.identity, settings
    )
    crop = cfg.map_residues
    ordered = [(sequences[p.a][:crop], sequences[p.b][:crop]) for p in pairs]
    keyed = {sequence_key(a, b): (a, b) for a, b in ordered}

    def compute(items: list[tuple[str, str]]) -> list[torch.Tensor]:
        return [pool_map(m.map, crop, cfg.map_bins).half() for m in teacher.pair_maps(items)]

    log(f"teacher interaction maps: {len(keyed)} pairs, {cfg.map_bins}x{cfg.map_bins} bins")
    _fill_cache(cache, keyed, compute, "map", 32, "teacher pair maps", cfg.progress)
    return cache.get_batch([sequence_key(a, b) for a, b in ordered], "map")


def _maps_for(
    cfg: PpiConfig, run_dir: Path, data: PpiData, pairs: list[Pair], teacher, log: Log
) -> list[torch.Tensor]:
    """Teacher maps for ``pairs``; with ``map_pairs`` only a seeded subset gets one and the
    others get an empty (0, 0) map, which masks them out of the map loss."""
    import random

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
    log: Log = _quiet,
) -> dict[str, torch.Tensor]:
    """Train the teacher head; logits per split (out-of-fold on train when crossfitting)."""
    from safetensors.torch import load_file

    from protdistill.distill.checkpoint import save_model
    from protdistill.tasks.ppi.teacher_head import crossfit_logits, head_logits, train_head

    path = run_dir / "teacher" / "logits.safetensors"
    if path.exists():
        return load_file(path)
    kw = {"hidden": cfg.head_hidden, "epochs": cfg.head_epochs}
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


# ----------------------------------------------------------------------------- student
def train_config(cfg: PpiConfig):
    from protdistill.distill.trainer import TrainConfig

    return TrainConfig(
        epochs=cfg.epochs,
        lr=cfg.lr,
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
    )


def _loader(cfg: PpiConfig, dataset: PairDataset, shuffle: bool, uses_map: bool) -> DataLoader:
    def collate(items: list[dict]) -> dict:
        return collate_pairs(items, cfg.map_residues if uses_map else None, cfg.map_bins)

    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=shuffle, collate_fn=collate)


def student_config(cfg: PpiConfig) -> dict:
    return {"kind": cfg.student, **cfg.student_config}


def train_student(
    cfg: PpiConfig,
    run_dir: Path,
    data: PpiData,
    split: dict[str, list[Pair]],
    logits: dict[str, torch.Tensor] | None,
    maps: dict[str, list] | None,
    embeddings: dict[str, torch.Tensor] | None = None,
    *,
    log: Log = _quiet,
) -> Path:
    """Distil (or, with alpha=0, just train) the student; resumes from the last checkpoint."""
    from protdistill.distill.checkpoint import load_torch, save_model
    from protdistill.distill.trainer import fit
    from protdistill.students import build_student, count_parameters
    from protdistill.tasks.ppi.module import PpiModule

    model_path = run_dir / "student.safetensors"
    if model_path.exists():
        log(f"student already trained: {model_path}")
        return model_path
    torch.manual_seed(cfg.student_seed_or_seed)
    student = build_student(student_config(cfg))
    uses_map = cfg.uses_map and maps is not None
    datasets = {
        name: PairDataset(
            split[name],
            data.sequences,
            max_residues=cfg.max_residues,
            teacher_logits=None if logits is None else logits[name],
            teacher_maps=None if not uses_map else maps[name],
            teacher_embeddings=embeddings,
            mask_rate=cfg.mask_rate if name == "train" else 0.0,
            swap_rate=cfg.swap_rate if name == "train" else 0.0,
        )
        for name in ("train", "val")
    }
    module = PpiModule(
        student,
        train_config(cfg),
        alpha=cfg.alpha if logits else 0.0,
        temperature=cfg.temperature,
        map_weight=cfg.map_weight if uses_map else 0,
        map_loss=cfg.map_loss,
        feature_weight=cfg.feature_weight if embeddings else 0.0,
        teacher_dim=next(iter(embeddings.values())).shape[0] if embeddings else None,
    )
    log(f"training {cfg.student} student ({count_parameters(student):,} parameters)")
    result = fit(
        module,
        _loader(cfg, datasets["train"], True, uses_map),
        _loader(cfg, datasets["val"], False, uses_map),
        train_config(cfg),
        run_dir / "student",
        resume=True,
    )
    best = load_torch(result.best_path)["state_dict"]
    student.load_state_dict(
        {k.removeprefix("student."): v for k, v in best.items() if k.startswith("student.")}
    )
    meta = {
        "student": student_config(cfg),
        "ppi": cfg.model_dump(),
        "parameters": count_parameters(student),
        "best_score": result.best_score,
    }
    if uses_map:
        from protdistill.tasks.ppi.maps import map_agreement

        agreement = map_agreement(student, _loader(cfg, datasets["val"], False, True))
        write_json(run_dir / "student" / "map_agreement.json", agreement)
        log(f"map agreement on validation pairs: {agreement}")
    save_model(model_path, student, meta)
    return model_path


def distill_targets(
    cfg: PpiConfig,
    run_dir: Path,
    data: PpiData,
    split: dict[str, list[Pair]],
    teacher=None,
    emb: dict[str, torch.Tensor] | None = None,
    *,
    log: Log = _quiet,
) -> tuple[dict[str, list] | None, dict[str, torch.Tensor] | None]:
    """Teacher maps (train / val) when the map loss is on, standardised teacher embeddings when
    feature KD is on; both come from the teacher cache when it has them."""
    maps = feats = None
    if cfg.uses_map:
        teacher = teacher or load_teacher(cfg)
        maps = {n: _maps_for(cfg, run_dir, data, split[n], teacher, log) for n in ("train", "val")}
    if cfg.feature_weight > 0:
        emb = emb or embed_proteins(cfg, run_dir, data.sequences, teacher, log=log)
        feats = standardise(emb, _proteins(split["train"]))
    return maps, feats


# ----------------------------------------------------------------------------- evaluate
def load_student(path: str | Path):
    """Rebuild a student from ``student.safetensors`` (or a run directory holding one)."""
    from protdistill.distill.checkpoint import load_model_state
    from protdistill.students import build_student

    path = Path(path)
    if path.is_dir():
        compressed = path / "compression_manifest.json"
        if compressed.exists():
            from protdistill.compress import load_compressed

            return load_compressed(path)
        path = path / "student.safetensors"
    if not path.exists():
        raise InputError(
            "no trained student here",
            path=path,
            fix="pass a run directory made by `protdistill ppi run` or `ppi train`",
        )
    state, meta = load_model_state(path)
    model = build_student(meta["student"])
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        missing = sorted(set(model.state_dict()) ^ set(state))[:3]
        raise CheckpointError(
            f"the weights do not fit a {meta['student'].get('kind')} student (keys {missing}); "
            "it was made by another protdistill version",
            path=path,
            fix="retrain it with `protdistill ppi train` (or `ppi run`) on this version",
        ) from exc
    return model.eval(), meta


@torch.no_grad()
def predict_pairs(
    model, pairs: list[Pair], sequences: dict[str, str], *, max_residues: int, batch_size: int = 64
) -> torch.Tensor:
    """(N,) interaction probabilities of ``model`` for ``pairs``."""
    dataset = PairDataset(pairs, sequences, max_residues=max_residues)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_pairs)
    model.eval()
    probs = [
        model(b["tokens_a"], b["mask_a"], b["tokens_b"], b["mask_b"]).probability for b in loader
    ]
    return torch.cat(probs) if probs else torch.zeros(0)


def evaluate_run(
    cfg: PpiConfig,
    run_dir: Path,
    data: PpiData,
    split: dict[str, list[Pair]],
    logits: dict[str, torch.Tensor] | None,
    *,
    log: Log = _quiet,
) -> dict:
    """Score the test split: metrics.json, predictions TSV, ROC / PR and training-curve PNGs."""
    from protdistill.io.pairs import write_pairs
    from protdistill.tasks.ppi.metrics import binary_metrics, plot_curves, plot_history

    test = split["test"]
    labels = torch.tensor([p.label for p in test]).numpy()
    model, meta = load_student(run_dir / "student.safetensors")
    probs = predict_pairs(model, test, data.sequences, max_residues=cfg.max_residues).numpy()
    metrics = {
        "student": {
            **binary_metrics(labels, probs),
            "parameters": meta["parameters"],
            "kind": cfg.student,
        }
    }
    agreement = run_dir / "student" / "map_agreement.json"
    if agreement.exists():
        metrics["student"]["map_agreement_val"] = json.loads(agreement.read_text())
    curves = {f"student ({cfg.student})": (labels, probs)}
    rows = [(p.a, p.b, f"{s:.6f}", int(p.label)) for p, s in zip(test, probs, strict=True)]
    if logits is not None:
        t_probs = logits["test"].softmax(-1)[:, 1].numpy()
        metrics["teacher"] = binary_metrics(labels, t_probs)
        curves["teacher (ESM-2 + head)"] = (labels, t_probs)
        rows = [(*r, f"{t:.6f}") for r, t in zip(rows, t_probs, strict=True)]
    header = ("protein_a", "protein_b", "probability", "label") + (
        ("teacher_probability",) if logits is not None else ()
    )
    write_pairs(run_dir / "predictions_test.tsv", rows, header)
    write_json(run_dir / "metrics.json", metrics)
    plot_curves(curves, run_dir)
    history_path = run_dir / "student" / "history.json"
    if history_path.exists():
        plot_history(json.loads(history_path.read_text()), run_dir / "training_curves.png")
    log(
        "test metrics: "
        + json.dumps(
            {
                k: {m: round(v, 4) for m, v in d.items() if isinstance(v, float)}
                for k, d in metrics.items()
            }
        )
    )
    return metrics


# ----------------------------------------------------------------------------- run
def run(cfg: PpiConfig, run_dir: str | Path, *, log: Log = _quiet) -> dict:
    """The whole pipeline; with ``folds > 1`` one sub-run per fold and a mean / sd summary."""
    run_dir = Path(run_dir)
    if cfg.folds > 1:
        return _run_folds(cfg, run_dir, log=log)
    return _run_single(cfg, run_dir, fold=0, log=log)


def _run_single(cfg: PpiConfig, run_dir: Path, *, fold: int, log: Log) -> dict:
    data, split = prepare(cfg, run_dir, fold=fold, log=log)
    teacher, emb = None, {}
    if not (run_dir / "teacher" / "logits.safetensors").exists():
        teacher = load_teacher(cfg)
        emb = embed_proteins(cfg, run_dir, data.sequences, teacher, log=log)
    logits = fit_teacher(cfg, run_dir, emb, split, log=log)
    maps, feats = None, None
    if not (run_dir / "student.safetensors").exists():
        maps, feats = distill_targets(cfg, run_dir, data, split, teacher, emb, log=log)
    train_student(cfg, run_dir, data, split, logits, maps, feats, log=log)
    return evaluate_run(cfg, run_dir, data, split, logits, log=log)


def _run_folds(cfg: PpiConfig, run_dir: Path, *, log: Log) -> dict:
    import numpy as np

    per_fold = []
    for fold in range(cfg.folds):
        log(f"fold {fold + 1}/{cfg.folds}")
        per_fold.append(_run_single(cfg, run_dir / f"fold_{fold}", fold=fold, log=log))
    summary: dict = {"folds": cfg.folds}
    for model in per_fold[0]:
        keys = [k for k, v in per_fold[0][model].items() if type(v) in (int, float)]
        summary[model] = {
            k: {
                "mean": float(np.mean([f[model][k] for f in per_fold])),
                "sd": float(np.std([f[model][k] for f in per_fold])),
            }
            for k in keys
        }
    write_json(run_dir / "metrics.json", {"summary": summary, "per_fold": per_fold})
    return summary
