"""Stage 1 of the PPI flow: validate the inputs, write the resolved config and the split (reused
when a run resumes; a run directory made with other data is refused)."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from protdistill.errors import ConfigError, InputError
from protdistill.io.atomic import write_json, write_text
from protdistill.io.pairs import Pair
from protdistill.progress import Log, no_log
from protdistill.tasks.ppi.common.config import PpiConfig
from protdistill.tasks.ppi.common.data import (
    PpiData,
    load_ppi,
    load_split,
    make_split,
    save_split,
    split_validation,
)
from protdistill.tasks.ppi.common.negatives import with_degree_negatives

#: Settings that define the data and split; resuming a run with other values is refused.
_DATA_FIELDS = (
    "pairs",
    "fasta",
    "test_pairs",
    "max_pairs",
    "self_pairs",
    "split",
    "negatives",
    "test_fraction",
    "val_fraction",
    "folds",
    "seed",
)


def _check_options(cfg: PpiConfig) -> None:
    """Refuse option combinations that cannot run, before anything is written."""
    if not cfg.pairs or not cfg.fasta:
        raise ConfigError("both --pairs and --fasta are required", fix="pass the two input files")
    if cfg.student == "esm" and cfg.pretrains:
        raise ConfigError(
            "general distillation backbones are ResNet-1D; the ESM student starts from the "
            "teacher's own layers, or from `protdistill distill` output given with --init",
            record="student",
            fix="drop --pretrain / --transfer-fasta, or use --student resnet1d",
        )


def prepare(cfg: PpiConfig, run_dir: Path, *, fold: int = 0, log: Log = no_log):
    """Validate inputs, write the resolved config and the split; reuse them when resuming."""
    _check_options(cfg)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError("--out names a file, not a run directory", path=run_dir,
                          fix="pass a new or existing run directory")  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_resume(cfg, run_dir)
    data = load_ppi(
        cfg.pairs, cfg.fasta, self_pairs=cfg.self_pairs, max_pairs=cfg.max_pairs, seed=cfg.seed
    )
    n_fit = len(data.pairs)
    if cfg.test_pairs:
        data = _with_test_file(cfg, data)
    split_path = run_dir / "split.json"
    if split_path.exists() and not (run_dir / "config.yaml").exists():
        raise InputError(
            "this directory holds a split.json but is not a protdistill run",
            path=run_dir,
            fix="use a new --out directory",
        )
    # written once the inputs are valid (a failed run leaves no config) and before the split
    write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.model_dump(), sort_keys=True))
    if split_path.exists():
        split = load_split(split_path)
        log(f"reusing split {split_path}")
    else:
        split = _new_split(cfg, data, n_fit, fold, log)
        save_split(split_path, *_flat(split))
    trained_on = proteins_of(split["train"])
    report = {
        "pairs_read": data.report.n_read,
        "duplicates_dropped": data.report.duplicates_dropped,
        "self_pairs": data.report.self_pairs,
        "self_pairs_dropped": data.report.self_pairs_dropped,
        "pairs_used": len(data.pairs),
        "proteins": len(data.sequences),
        "split": {name: len(pairs) for name, pairs in split.items()},
        "test_proteins_seen_in_training": len(proteins_of(split["test"]) & trained_on),
        "val_pairs_with_a_protein_unseen_in_training": sum(
            bool({p.a, p.b} - trained_on) for p in split["val"]
        ),
    }
    write_json(run_dir / "data_report.json", report)
    log(f"data: {report['pairs_used']} pairs, {report['proteins']} proteins, {report['split']}")
    return data, split


def _new_split(cfg: PpiConfig, data: PpiData, n_fit: int, fold: int, log: Log):
    """The run's split (train / val / test pairs), with degree-matched train / val negatives
    when asked for."""
    if cfg.test_pairs:
        idx = held_out_split(data.pairs, n_fit, cfg.split, cfg.val_fraction, cfg.seed)
    else:
        idx = make_split(data.pairs, mode=cfg.split, test_fraction=cfg.test_fraction,
                         val_fraction=cfg.val_fraction, folds=cfg.folds, fold=fold,
                         seed=cfg.seed)  # fmt: skip
    split = {name: [data.pairs[i] for i in ids] for name, ids in idx.items()}
    if cfg.negatives == "degree":
        known = {frozenset((p.a, p.b)) for p in data.pairs if p.label == 1}
        split = with_degree_negatives(split, known, cfg.seed)
        log("train / val negatives drawn in proportion to positive degree")
    return split


def _flat(split: dict[str, list[Pair]]) -> tuple[list[Pair], dict[str, list[int]]]:
    """(all pairs, indices of each split) for :func:`save_split`."""
    pairs: list[Pair] = []
    idx: dict[str, list[int]] = {}
    for name, part in split.items():
        idx[name] = list(range(len(pairs), len(pairs) + len(part)))
        pairs += part
    return pairs, idx


def proteins_of(pairs: list[Pair]) -> set[str]:
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
    rng = random.Random(seed)
    train, val = split_validation(pairs, list(range(n_fit)), mode, val_fraction, rng)
    return {"train": sorted(train), "val": sorted(val), "test": list(range(n_fit, len(pairs)))}


def _check_resume(cfg: PpiConfig, run_dir: Path) -> None:
    old_path = run_dir / "config.yaml"
    if not old_path.exists():
        return
    old = yaml.safe_load(old_path.read_text()) or {}
    for name in _DATA_FIELDS:
        # a field added after the run was made: the run used its default
        default = PpiConfig.model_fields[name].default
        if old.get(name, default) != getattr(cfg, name):
            raise ConfigError(
                f"this run directory was made with {name}={old.get(name)!r}, not "
                f"{getattr(cfg, name)!r}",
                path=old_path,
                fix="use a new --out directory, or the same settings to resume",
            )
