"""`ppi interfaces`: do a student's (and a teacher's) maps point at the real interfaces of solved
complexes? Full-length maps per complex, scored against every inter-chain residue contact.

Outputs in ``out``: ``metrics.json`` (means per map source for all complexes, heterodimers and
homodimers, with the random and propensity baselines), ``complexes.tsv`` (one row per complex and
map source) and ``figures/<complex>.png`` (each map with the true contacts overlaid).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from protdistill.config import Config
from protdistill.errors import InputError, ModelError
from protdistill.io.atomic import write_json, write_text
from protdistill.io.contacts import Complex, read_complexes
from protdistill.progress import Meter
from protdistill.tasks.ppi.interfaces import metrics as im
from protdistill.tasks.ppi.interfaces.plots import plot_complex
from protdistill.tasks.ppi.interfaces.training import map_logits
from protdistill.tasks.ppi.run.student import load_student
from protdistill.tasks.ppi.sites.maps import site_sources
from protdistill.teachers.pair_maps import CONSTRUCTIONS, teacher_pair_map

MapFn = Callable[[Complex], torch.Tensor]


class InterfacesConfig(Config):
    """What to score and where to write it."""

    fasta: str
    pairs: str
    contacts: str
    out: str
    complexes: str | None = None
    model: str | None = None
    teacher: str | None = None
    teacher_maps: list[str] = ["clean"]
    folds: int = 5
    figures: bool = True
    overwrite: bool = False


def student_map(model: torch.nn.Module) -> MapFn:
    """Full-length ``(La, Lb)`` map logits of an interaction student (no crop: it is a conv net)."""
    if not hasattr(model, "interaction_map"):
        raise ModelError(
            f"{type(model).__name__} draws no residue map",
            record="ppi interfaces",
            fix="pass a run trained with --student interaction",
        )

    @torch.no_grad()
    def run(c: Complex) -> torch.Tensor:
        return map_logits(model, c.seq_a, c.seq_b).float()

    return run


def teacher_map(teacher: object, construction: str) -> MapFn:
    if construction not in CONSTRUCTIONS:
        raise InputError(
            f"unknown teacher map {construction!r}",
            record="--teacher-map",
            fix=f"use one of {', '.join(CONSTRUCTIONS)}",
        )
    return lambda c: teacher_pair_map(teacher, c.seq_a, c.seq_b, construction)


def propensity_maps(complexes: list[Complex], folds: int) -> list[torch.Tensor]:
    """Cross-validated propensity maps: each complex scored by a fit on the other PDB folds."""
    fold_of = im.pdb_folds(complexes, folds)
    fits = {
        f: im.fit_propensity(c for c, g in zip(complexes, fold_of, strict=True) if g != f)
        for f in set(fold_of)
    }
    return [im.propensity_map(c, fits[g]) for c, g in zip(complexes, fold_of, strict=True)]


def score_sources(
    complexes: list[Complex],
    sources: dict[str, MapFn],
    *,
    figures: Path | None = None,
    progress: bool = True,
) -> list[dict]:
    """One row per complex and source; figures of every source's map per complex if asked."""
    rows = []
    meter = Meter(len(complexes), "interfaces", "complexes", show=progress)
    for c in complexes:
        maps = {name: fn(c) for name, fn in sources.items()}
        for name, m in maps.items():
            rows.append({**_describe(c), "source": name, **im.score_map(m, c)})
        if figures is not None:
            plot_complex(c, maps, figures / f"{_safe(c.name)}.png")
        meter.advance(1)
    meter.close()
    return rows


def run_interfaces(cfg: InterfacesConfig, log: Callable[[str], None] = print) -> dict:
    """Score every map source on every complex; write metrics.json, complexes.tsv, figures."""
    out = Path(cfg.out)
    if (out / "metrics.json").exists() and not cfg.overwrite:
        raise InputError(
            "output exists",
            path=out / "metrics.json",
            fix="choose another --out or pass --overwrite",
        )
    complexes = read_complexes(cfg.fasta, cfg.pairs, cfg.contacts, cfg.complexes)
    sources = _sources(cfg, complexes)
    log(f"{len(complexes)} complexes; map sources: {', '.join(sources)}")
    figures = out / "figures" if cfg.figures else None
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
    rows = score_sources(complexes, sources, figures=figures)
    metrics = {
        "complexes": len(complexes),
        "heterodimers": sum(not c.homodimer for c in complexes),
        "sources": {
            name: im.summarise([r for r in rows if r["source"] == name]) for name in sources
        },
        "random_map": {
            "interface_auroc": 0.5,
            "top_precision": "random_precision (contact density)",
        },
        "propensity_folds": cfg.folds,
        "inputs": {"fasta": cfg.fasta, "pairs": cfg.pairs, "contacts": cfg.contacts},
        "model": cfg.model,
        "teacher": cfg.teacher,
    }
    write_tsv(out / "complexes.tsv", rows)
    write_json(out / "metrics.json", metrics)
    return metrics


def _sources(cfg: InterfacesConfig, complexes: list[Complex]) -> dict[str, MapFn]:
    prop = dict(
        zip((c.name for c in complexes), propensity_maps(complexes, cfg.folds), strict=True)
    )
    sources: dict[str, MapFn] = {"propensity": lambda c: prop[c.name], "diagonal": im.diagonal_map}
    if cfg.model:
        sources["student"] = student_map(load_student(cfg.model)[0])
        sources.update(site_sources(cfg.model, sources["student"]))  # runs trained with --sites
    if cfg.teacher:
        from protdistill.teachers.esm import EsmTeacher  # lazy: loads transformers

        teacher = EsmTeacher(cfg.teacher)
        for construction in cfg.teacher_maps:
            sources[f"teacher_{construction}"] = teacher_map(teacher, construction)
    if len(sources) == 2:
        raise InputError(
            "nothing to score", record="ppi interfaces", fix="pass --model RUN and/or --teacher T"
        )
    return sources


def write_tsv(path: Path, rows: list[dict]) -> Path:
    columns = list(rows[0])
    lines = ["\t".join(columns)]
    for r in rows:
        lines.append(
            "\t".join(f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k]) for k in columns)
        )
    return write_text(path, "\n".join(lines) + "\n")


def _describe(c: Complex) -> dict:
    return {
        "complex": c.name,
        "pdb": c.pdb,
        "homodimer": c.homodimer,
        "len_a": len(c.seq_a),
        "len_b": len(c.seq_b),
        "contacts": len(c.contacts),
    }


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
