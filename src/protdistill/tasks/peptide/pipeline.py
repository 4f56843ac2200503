"""Evaluation pipeline behind `protdistill peptide evaluate`: files in, JSON + PNG out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from protdistill.io.atomic import write_json
from protdistill.io.peptides import read_peptides
from protdistill.tasks.peptide.classifier import load_classifier
from protdistill.tasks.peptide.config import EvaluateConfig
from protdistill.tasks.peptide.evaluate import evaluate_samples, plot_distributions, pooled_embedder
from protdistill.tasks.peptide.model import StructDiff
from protdistill.tasks.peptide.train import read_split
from protdistill.teachers.esm import EsmTeacher


def evaluate_file(
    samples: str | Path,
    cfg: EvaluateConfig,
    *,
    teacher=None,
    log: Callable[[str], None] = lambda _: None,  # noqa: ANN001
) -> dict:
    """Evaluate a typed FASTA of generated peptides against the model's training split."""
    samples = Path(samples)
    model_path = Path(cfg.model)
    model = StructDiff.load(model_path)
    split = read_split(model_path.parent / "split.json")
    peps, _ = read_peptides(samples, max_length=None, deduplicate=False)
    by_type: dict[str, list[str]] = {}
    for p in peps:
        by_type.setdefault(p.type, []).append(p.sequence)
    if teacher is None:
        teacher = EsmTeacher(model.meta["teacher_path"])
    clf_path = (
        Path(cfg.classifier) if cfg.classifier else model_path.parent / "classifier.safetensors"
    )
    classifier = load_classifier(clf_path)[0] if clf_path.is_file() else None
    log(f"evaluating {len(peps)} peptides of types {sorted(by_type)}")
    result = evaluate_samples(
        by_type,
        split,
        embed=pooled_embedder(teacher),
        classifier=classifier,
        fd_max=cfg.fd_max,
        max_compare=cfg.max_compare,
        max_length=model.net.denoiser.cfg.max_length,
        seed=cfg.seed,
    )
    out = Path(cfg.out) if cfg.out else samples.with_suffix(".eval")
    result.update({"samples": str(samples), "model": str(model_path), "reference": cfg.reference})
    result["plots"] = []
    for name, seqs in by_type.items():
        groups = {"generated": seqs, "train": split.sequences("train", name)}
        png = plot_distributions(
            groups, out / f"{name}_distributions.png", model.net.denoiser.cfg.max_length
        )
        result["plots"].append(str(png))
    result["json"] = str(out / "metrics.json")
    write_json(out / "metrics.json", result)
    return result
