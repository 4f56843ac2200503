"""Stage 4 of the PPI flow, and using a trained run: score the test split, score any labelled
pairs, predict unlabelled ones."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from protdistill.config import check_confined, read_yaml, resolve
from protdistill.errors import InputError
from protdistill.io.atomic import write_json
from protdistill.io.pairs import Pair, write_pairs
from protdistill.progress import Log, no_log
from protdistill.tasks.ppi.common.config import PpiConfig
from protdistill.tasks.ppi.common.data import PairDataset, PpiData, collate_pairs, load_ppi
from protdistill.tasks.ppi.common.metrics import binary_metrics, plot_curves, plot_history
from protdistill.tasks.ppi.run.student import load_student, max_residues_of
from protdistill.tasks.ppi.run.teacher import embed_proteins, load_teacher_head
from protdistill.tasks.ppi.run.teacher_head import head_logits
from protdistill.tasks.ppi.run.transplant import retention, retention_interval, transplant_report


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
    log: Log = no_log,
) -> dict:
    """Score the test split: metrics.json, predictions TSV, ROC / PR and training-curve PNGs."""
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
        metrics["retention"] = retention(
            metrics["student"]["aupr"], metrics["teacher"]["aupr"], float(labels.mean())
        )
        if len(set(labels.tolist())) == 2:
            metrics["retention"]["R_ci95"] = retention_interval(labels, probs, t_probs)
    _add_transplant(cfg, run_dir, data, split, model, metrics, log)
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


def _add_transplant(cfg, run_dir, data, split, model, metrics: dict, log: Log) -> None:
    """Head transplant + embedding cosine (runs with feature KD: through its projector, or
    directly for a student as wide as the teacher); pretrain.json's transfer-set summary, so
    every report says whether test proteins were in it."""
    if cfg.feature_weight > 0:  # the projector file exists only then
        emb = embed_proteins(cfg, run_dir, data.sequences, log=log)
        report = transplant_report(run_dir, model, emb, data.sequences, split, cfg.max_residues)
        if report is not None:
            metrics["student_head_transplant"] = report["head_transplant"]
            metrics["student"]["embedding_cosine_test_proteins"] = report[
                "embedding_cosine_test_proteins"
            ]
            if "teacher" in metrics:
                metrics["retention_head_transplant"] = retention(
                    report["head_transplant"]["aupr"],
                    metrics["teacher"]["aupr"],
                    metrics["retention"]["prior"],
                )
    pretrain_path = run_dir / "pretrain.json"
    if pretrain_path.exists():
        info = json.loads(pretrain_path.read_text())
        transfer = info.get("transfer", {})
        metrics["student"]["general_distillation"] = {
            "backbone": info.get("backbone"),
            "transfer_proteins": transfer.get("proteins"),
            "test_proteins_in_transfer_set": bool(transfer.get("transductive", False)),
        }


def _run_dir(model: str | Path) -> Path:
    model = Path(model)
    return model if model.is_dir() else model.parent


def evaluate_pairs(
    model: str | Path,
    pairs: str | Path,
    fasta: str | Path,
    out: str | Path,
    *,
    teacher: str | None = None,
    cache: str | None = None,
    overwrite: bool = False,
    log: Log = no_log,
) -> dict:
    """Metrics of the student (and, with ``teacher``, the run's teacher, its embeddings from
    ``cache``) -> ``out/metrics.json`` (an existing one is refused unless ``overwrite``)."""
    out = Path(out)
    check_writable(out / "metrics.json", overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    data = load_ppi(pairs, fasta)
    student, meta = load_student(model)
    labels = torch.tensor([p.label for p in data.pairs]).numpy()
    probs = predict_pairs(student, data.pairs, data.sequences, max_residues=max_residues_of(meta))
    metrics = {"student": binary_metrics(labels, probs.numpy())}
    curves = {"student": (labels, probs.numpy())}
    if teacher:
        t_probs = teacher_probabilities(_run_dir(model), teacher, data, out, cache=cache, log=log)
        metrics["teacher"] = binary_metrics(labels, t_probs.numpy())
        curves["teacher"] = (labels, t_probs.numpy())
    write_json(out / "metrics.json", metrics)
    plot_curves(curves, out)
    return metrics


def teacher_probabilities(
    run_dir: Path, teacher: str, data, out: Path, *, cache: str | None = None, log
) -> torch.Tensor:
    """(N,) probabilities of the run's teacher head on the teacher's (cached) embeddings.

    The teacher cache is ``cache`` when given, else the one the run's config.yaml records, and
    that only when it lies under the current directory: a run folder someone handed over is
    data and must not steer where protdistill reads and writes."""
    if cache is None:
        check_confined(
            read_yaml(run_dir / "config.yaml"), Path.cwd(), ("cache",), run_dir / "config.yaml"
        )
    cfg = resolve(PpiConfig, run_dir / "config.yaml", teacher=teacher, cache=cache)
    head = load_teacher_head(run_dir)
    emb = embed_proteins(cfg, run_dir, data.sequences, log=log)
    return head_logits(head, emb, data.pairs).softmax(-1)[:, 1]


def predict_file(
    model: str | Path,
    pairs: str | Path,
    fasta: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
) -> int:
    """Write ``protein_a protein_b probability note`` for every input row, in input order (a
    repeated or swapped pair keeps its row; ``note`` names the row it repeats); returns the
    number of rows. An existing ``out`` is refused unless ``overwrite``."""
    check_writable(out, overwrite=overwrite)
    data = load_ppi(pairs, fasta, require_labels=False, keep_duplicates=True)
    student, meta = load_student(model)
    probs = predict_pairs(student, data.pairs, data.sequences, max_residues=max_residues_of(meta))
    first: dict[frozenset[str], int] = {}
    rows = []
    for i, (p, s) in enumerate(zip(data.pairs, probs.tolist(), strict=True)):
        seen = first.setdefault(frozenset((p.a, p.b)), i)
        rows.append((p.a, p.b, f"{s:.6f}", "" if seen == i else f"same pair as row {seen + 1}"))
    write_pairs(out, rows, ("protein_a", "protein_b", "probability", "note"))
    return len(rows)


def check_writable(out: str | Path, *, overwrite: bool) -> None:
    """Refuse, before any work, an output path that is a directory or (unless ``overwrite``) an
    existing file: nothing a user already has is replaced silently."""
    out = Path(out)
    if out.is_dir():
        raise InputError("output is a directory", path=out, fix="pass a file path for --out")
    if out.exists() and not overwrite:
        raise InputError("output exists", path=out, fix="choose another --out or pass --overwrite")
