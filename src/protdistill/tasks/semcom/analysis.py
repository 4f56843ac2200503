"""Semantic difference analysis of teacher, distilled students and hybrids.

For every model and every (channel, SNR): greedy-decoded test sentences scored with BLEU-1..4
(sacrebleu, corpus level, whitespace tokens) and a sentence-similarity score; for students and
hybrids also ``KL(teacher ‖ model)`` of the teacher-forced next-word distributions. All models
see the same channel draw at a given (channel, SNR), so differences are the models' own.

Sentence similarity: DeepSC uses BERT embeddings, which cannot be downloaded here; we use the
mean cosine similarity of TF-IDF bag-of-words vectors (fitted on the training sentences), a
lexical proxy documented as such in the report.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from rich.progress import Progress
from sacrebleu.metrics import BLEU
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from protdistill.config import Config
from protdistill.errors import ConfigError, InputError, ModelError
from protdistill.io.atomic import atomic_path, write_json
from protdistill.plotting import pyplot
from protdistill.tasks.semcom.data import PAD, Vocab, make_loader
from protdistill.tasks.semcom.model import DeepSC, LoadedDeepSC, count_parameters, load_deepsc
from protdistill.tasks.semcom.sides import plot_sides, side_gaps
from protdistill.tasks.semcom.train import teacher_split

DEFAULT_SNRS = [0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0]


class AnalyzeConfig(Config):
    """`protdistill analyze` settings (every field is a CLI option)."""

    teacher_checkpoint: str | None = None
    runs: list[str] = Field(
        default_factory=list, description="`protdistill distill` output folders (student, hybrid)"
    )
    output_path: str = "runs/semcom/analysis"
    data: str | None = Field(None, description="Europarl folder (default: the teacher's)")
    snrs: list[float] = Field(default_factory=lambda: list(DEFAULT_SNRS))
    channels: list[str] = Field(default_factory=lambda: ["awgn", "rayleigh"])
    max_sentences: int = Field(300, ge=1, description="test sentences scored")
    batch_size: int = Field(100, ge=1)
    seed: int = 0
    progress: bool = True


@dataclass
class Entry:
    """One model under analysis."""

    name: str
    kind: str  # teacher | student | hybrid
    loaded: LoadedDeepSC
    temperature: float | None = None
    part: str | None = None


def bleu(hyps: list[str], refs: list[str]) -> list[float]:
    """Corpus BLEU-1..4 in [0, 1] (``max_ngram_order`` n, whitespace tokens, as DeepSC's BLEU-n
    with uniform weights over 1..n-grams)."""
    out = []
    for n in (1, 2, 3, 4):
        metric = BLEU(max_ngram_order=n, tokenize="none", effective_order=True, force=True)
        out.append(metric.corpus_score(hyps, [refs]).score / 100.0)
    return out


class Similarity:
    """Mean cosine similarity of TF-IDF vectors (a lexical stand-in for BERT similarity)."""

    def __init__(self, corpus: list[str]) -> None:
        self.vec = TfidfVectorizer(token_pattern=r"[^ ]+").fit(corpus)

    def __call__(self, hyps: list[str], refs: list[str]) -> float:
        a = normalize(self.vec.transform(hyps))
        b = normalize(self.vec.transform(refs))
        return float(a.multiply(b).sum(axis=1).mean())


def _seed(base: int, channel: str, snr: float, batch: int) -> int:
    return (base * 1_000_003 + zlib.crc32(f"{channel}:{snr:.3f}:{batch}".encode())) % (2**62)


def decode_all(
    model: DeepSC, loader: Any, vocab: Vocab, snr: float, channel: str, seed: int
) -> list[str]:
    """Greedy decodes of every batch at one (channel, SNR), channel draws fixed by ``seed``."""
    hyps: list[str] = []
    for i, batch in enumerate(loader):
        gen = torch.Generator().manual_seed(_seed(seed, channel, snr, i))
        out = model.decode(batch["tokens"], batch["mask"], snr, channel, gen)
        hyps += [vocab.decode(row) for row in out]
    return hyps


@torch.no_grad()
def output_kl(
    teacher: DeepSC, model: DeepSC, loader: Any, snr: float, channel: str, seed: int
) -> float:
    """Mean per-word ``KL(teacher ‖ model)`` (T = 1), teacher-forced, same channel draws."""
    total, count = 0.0, 0
    for i, batch in enumerate(loader):
        tokens, mask = batch["tokens"], batch["mask"]
        s = _seed(seed, channel, snr, i)
        t = teacher(tokens, mask, snr, channel, torch.Generator().manual_seed(s)).logits
        m = model(tokens, mask, snr, channel, torch.Generator().manual_seed(s)).logits
        valid = tokens[:, 1:] != PAD
        kl = (t.log_softmax(-1).exp() * (t.log_softmax(-1) - m.log_softmax(-1))).sum(-1)
        total += float(kl[valid].sum())
        count += int(valid.sum())
    return total / max(count, 1)


def load_runs(cfg: AnalyzeConfig) -> list[Entry]:
    """Teacher, then each run's best student and hybrid (when it made one)."""
    if not cfg.teacher_checkpoint:
        raise ConfigError("no teacher checkpoint given", fix="pass --teacher-checkpoint TEACHER.pt")
    entries = [Entry("teacher", "teacher", load_deepsc(cfg.teacher_checkpoint))]
    for run in cfg.runs:
        info_path = Path(run) / "distillation_config.json"
        if not info_path.is_file():
            raise InputError(
                "not a distillation output folder (no distillation_config.json)",
                path=run,
                fix="pass folders written by `protdistill distill`",
            )
        info = json.loads(info_path.read_text(encoding="utf-8"))
        t, part = float(info["temperature"]), str(info["distill_part"])
        label = f"{part} T={t:g}"
        if any(e.name == f"student {label}" for e in entries):  # same part and T: say which run
            label += f" ({Path(run).name})"
        student = load_deepsc(Path(run) / "best_student_model.pt")
        _check_vocab(entries[0].loaded, student)
        entries.append(Entry(f"student {label}", "student", student, t, part))
        if info.get("hybrid_path") and part == "full":  # decoder: == student; encoder: == teacher
            hybrid = load_deepsc(info["hybrid_path"])
            _check_vocab(entries[0].loaded, hybrid)
            entries.append(Entry(f"hybrid {label}", "hybrid", hybrid, t, part))
    return entries


def _check_vocab(teacher: LoadedDeepSC, other: LoadedDeepSC) -> None:
    if teacher.vocab != other.vocab:
        raise ModelError(
            "model vocabulary differs from the teacher's",
            path=other.path,
            fix="analyse students distilled from this teacher",
        )


def analyze(cfg: AnalyzeConfig) -> dict[str, Any]:
    """Score every model, write ``report.json``, ``metric_vs_snr.png`` and ``gap_vs_T.png``."""
    start = time.time()
    entries = load_runs(cfg)
    teacher = entries[0].loaded
    data, train, test = teacher_split(teacher, cfg.data)
    test = test[: cfg.max_sentences]
    vocab = Vocab(teacher.vocab)
    loader = make_loader(test, vocab, cfg.batch_size, shuffle=False)
    refs = [vocab.decode(vocab.encode(s)) for s in test]  # <unk> where the vocabulary lacks a word
    sim = Similarity(train)
    total = len(entries) * len(cfg.channels) * len(cfg.snrs)
    bar = _bar(total, cfg.progress)
    models = {e.name: _score(e, teacher, cfg, loader, vocab, refs, sim, bar) for e in entries}
    report = {
        "teacher": str(teacher.path),
        "test_sentences": len(test),
        "data": data.model_dump(),
        "snrs": cfg.snrs,
        "channels": cfg.channels,
        "similarity": "mean cosine of TF-IDF vectors fitted on the training split (not BERT)",
        "bleu": "sacrebleu corpus BLEU, max_ngram_order n, tokenize=none",
        "models": models,
        "gaps": temperature_gaps(models, cfg.channels),
    }
    report["sides"] = side_gaps(report)
    report["seconds"] = time.time() - start
    out = Path(cfg.output_path)
    write_json(out / "report.json", report)
    plot_metric_vs_snr(report, out / "metric_vs_snr.png")
    plot_gap_vs_t(report, out / "gap_vs_T.png")
    plot_sides(report["sides"], cfg.channels, out / "sides_vs_snr.png")
    return report


def _score(e, teacher: LoadedDeepSC, cfg: AnalyzeConfig, loader, vocab: Vocab, refs, sim, bar):
    """BLEU-1..4, similarity and (students) KL to the teacher of one model at every channel/SNR."""
    rows: dict[str, list[dict[str, float]]] = {}
    examples: list[str] = []
    for ch in cfg.channels:
        rows[ch] = []
        for snr in cfg.snrs:
            hyps = decode_all(e.loaded.model, loader, vocab, snr, ch, cfg.seed)
            if ch == cfg.channels[0] and snr == max(cfg.snrs):
                examples = hyps[:3]
            row = {"snr": snr, "similarity": sim(hyps, refs)}
            row.update({f"bleu{n}": b for n, b in zip((1, 2, 3, 4), bleu(hyps, refs), strict=True)})
            if e.kind != "teacher":
                row["kl"] = output_kl(teacher.model, e.loaded.model, loader, snr, ch, cfg.seed)
            rows[ch].append(row)
            bar()
    return {
        "kind": e.kind,
        "temperature": e.temperature,
        "distill_part": e.part,
        "path": str(e.loaded.path),
        "parameters": count_parameters(e.loaded.model),
        "results": rows,
        "examples": {
            "references": refs[:3],
            "decoded": examples,
            "channel": cfg.channels[0],
            "snr": max(cfg.snrs),
        },
    }


def _mean(rows: dict[str, list[dict[str, float]]], key: str, channels: list[str]) -> float:
    vals = [r[key] for ch in channels for r in rows[ch] if key in r]
    return sum(vals) / len(vals) if vals else float("nan")


def temperature_gaps(models: dict[str, Any], channels: list[str]) -> list[dict[str, Any]]:
    """Per distilled model: mean over channels and SNRs of the teacher-minus-model BLEU-1 and
    similarity gaps and of ``KL(teacher ‖ model)``, with its temperature and part."""
    t_rows = models["teacher"]["results"]
    t_b1, t_sim = _mean(t_rows, "bleu1", channels), _mean(t_rows, "similarity", channels)
    out = []
    for name, m in models.items():
        if m["kind"] == "teacher":
            continue
        rows = m["results"]
        out.append(
            {
                "model": name,
                "kind": m["kind"],
                "temperature": m["temperature"],
                "distill_part": m["distill_part"],
                "bleu1_gap": t_b1 - _mean(rows, "bleu1", channels),
                "similarity_gap": t_sim - _mean(rows, "similarity", channels),
                "kl": _mean(rows, "kl", channels),
            }
        )
    return sorted(out, key=lambda r: (r["distill_part"], r["kind"], r["temperature"]))


def plot_metric_vs_snr(report: dict[str, Any], path: Path) -> Path:
    """BLEU-1 and similarity vs SNR, one column per channel; students solid, hybrids dashed."""
    plt = pyplot()

    chans = report["channels"]
    fig, axes = plt.subplots(2, len(chans), figsize=(5.5 * len(chans), 8), squeeze=False)
    temps = sorted({m["temperature"] for m in report["models"].values() if m["temperature"]})
    cmap = plt.get_cmap("viridis")
    for name, m in report["models"].items():
        if m["kind"] == "teacher":
            style = {"color": "black", "lw": 2.5, "marker": "o"}
        else:
            i = temps.index(m["temperature"])
            color = cmap(i / max(1, len(temps) - 1) * 0.85)
            ls = "-" if m["kind"] == "student" else "--"
            mk = "s" if m["kind"] == "student" else "^"
            style = {"color": color, "ls": ls, "marker": mk, "ms": 4}
        for j, ch in enumerate(chans):
            rows = m["results"][ch]
            snr = [r["snr"] for r in rows]
            axes[0][j].plot(snr, [r["bleu1"] for r in rows], label=name, **style)
            axes[1][j].plot(snr, [r["similarity"] for r in rows], label=name, **style)
    for j, ch in enumerate(chans):
        axes[0][j].set_title(f"{ch.upper()}: BLEU-1")
        axes[1][j].set_title(f"{ch.upper()}: sentence similarity (TF-IDF cosine)")
        for i in range(2):
            axes[i][j].set_xlabel("SNR (dB)")
            axes[i][j].grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        f"teacher vs distilled students/hybrids ({report['test_sentences']} test sentences)"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def plot_gap_vs_t(report: dict[str, Any], path: Path) -> Path:
    """Teacher-minus-model BLEU-1 gap and KL(teacher ‖ model) against the temperature T."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for g in report["gaps"]:
        groups.setdefault((g["distill_part"], g["kind"]), []).append(g)
    for (part, kind), rows in sorted(groups.items()):
        rows = sorted(rows, key=lambda r: r["temperature"])
        t = [r["temperature"] for r in rows]
        ls = "-" if kind == "student" else "--"
        label = f"{kind} ({part})"
        axes[0].plot(t, [r["bleu1_gap"] for r in rows], ls=ls, marker="o", label=label)
        axes[1].plot(t, [r["kl"] for r in rows], ls=ls, marker="o", label=label)
    axes[0].set_ylabel("BLEU-1 gap (teacher - model), mean over SNR & channels")
    axes[1].set_ylabel("KL(teacher || model) per word")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("distillation temperature T")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("transmitter/receiver knowledge gap vs temperature")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _bar(total: int, enabled: bool) -> Any:
    """A callable advancing a rich progress bar (no-op when disabled)."""
    if not enabled:
        return lambda: None

    progress = Progress(transient=True)
    progress.start()
    task = progress.add_task("scoring", total=total)
    done = [0]

    def step() -> None:
        progress.advance(task)
        done[0] += 1
        if done[0] >= total:
            progress.stop()

    return step
