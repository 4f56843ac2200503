"""Semantic difference analysis: metrics, KL, report and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from protdistill.api.distill import run_distill
from protdistill.distill.config import DistillConfig
from protdistill.errors import InputError, ModelError
from protdistill.tasks.semcom.analysis import (
    AnalyzeConfig,
    Similarity,
    analyze,
    bleu,
    load_runs,
    output_kl,
    temperature_gaps,
)
from protdistill.tasks.semcom.data import Vocab, make_loader
from protdistill.tasks.semcom.model import load_deepsc
from protdistill.tasks.semcom.sides import side_gaps


def test_bleu_and_similarity_bounds() -> None:
    refs = ["the council voted today .", "we agree with the report ."]
    assert bleu(refs, refs) == pytest.approx([1.0] * 4)
    scores = bleu(["the council voted .", "report the we ."], refs)
    assert 0 < scores[3] < scores[0] < 1
    sim = Similarity(refs + ["a b c ."])
    assert sim(refs, refs) == pytest.approx(1.0)
    assert 0 <= sim(["a b c .", "a b c ."], refs) < 0.2


def test_output_kl_is_zero_for_the_same_model_and_positive_otherwise(tiny_teacher: Path) -> None:
    loaded = load_deepsc(tiny_teacher)
    vocab = Vocab(loaded.vocab)
    loader = make_loader(["the council voted .", "the report"], vocab, 2, shuffle=False)
    assert output_kl(loaded.model, loaded.model, loader, 6.0, "awgn", 0) == pytest.approx(
        0, abs=1e-6
    )
    other = load_deepsc(tiny_teacher).model
    with torch.no_grad():
        other.receiver.out.bias.add_(torch.randn_like(other.receiver.out.bias))
    assert output_kl(loaded.model, other, loader, 6.0, "awgn", 0) > 0.01


def test_temperature_gaps_are_teacher_minus_model() -> None:
    row = lambda b, k=None: {"snr": 0.0, "bleu1": b, "similarity": b, **({"kl": k} if k else {})}  # noqa: E731
    models = {
        "teacher": {"kind": "teacher", "temperature": None, "distill_part": None,
                    "results": {"awgn": [row(0.8)]}},
        "s": {"kind": "student", "temperature": 2.0, "distill_part": "full",
              "results": {"awgn": [row(0.5, 0.3)]}},
    }  # fmt: skip
    (gap,) = temperature_gaps(models, ["awgn"])
    assert gap["bleu1_gap"] == pytest.approx(0.3) and gap["kl"] == pytest.approx(0.3)


def test_side_gaps_attribute_each_loss_to_the_side_that_was_distilled() -> None:
    def model(kind, part, b1):
        rows = [{"snr": s, "bleu1": b} for s, b in zip((0.0, 12.0), b1, strict=True)]
        return {"kind": kind, "distill_part": part, "temperature": 4.0, "results": {"awgn": rows}}

    report = {"channels": ["awgn"], "snrs": [0.0, 12.0], "models": {
        "teacher": {**model("teacher", None, (0.6, 0.9)), "temperature": None},
        "enc": model("student", "encoder", (0.5, 0.85)),
        "dec": model("student", "decoder", (0.4, 0.8)),
        "full": model("student", "full", (0.3, 0.7)),
        "hyb": model("hybrid", "full", (0.45, 0.8)),
    }}  # fmt: skip
    low, high = side_gaps(report)
    assert (low["snr"], high["snr"]) == (0.0, 12.0)
    assert low["transmitter"] == pytest.approx(0.1) and low["receiver"] == pytest.approx(0.2)
    assert high["full"] == pytest.approx(0.2) and high["receiver_in_full"] == pytest.approx(0.1)
    assert high["transmitter_in_full"] == pytest.approx(0.1)


def test_analyze_writes_report_and_plots(tiny_teacher: Path, corpus: Path, tmp_path: Path) -> None:
    runs = []
    for t in (1.0, 4.0):
        out = tmp_path / f"T{t:g}"
        run_distill(DistillConfig(teacher_checkpoint=str(tiny_teacher), output_path=str(out),
                                  temperature=t, epochs=1, batch_size=16, create_hybrid=True,
                                  val_sentences=8, progress=False))  # fmt: skip
        runs.append(str(out))
    out = str(tmp_path / "a")
    cfg = AnalyzeConfig(teacher_checkpoint=str(tiny_teacher), runs=runs, snrs=[0.0, 18.0],
                        max_sentences=6, output_path=out, progress=False)  # fmt: skip
    report = analyze(cfg)
    assert set(report["models"]) == {"teacher", "student full T=1", "hybrid full T=1",
                                     "student full T=4", "hybrid full T=4"}  # fmt: skip
    rows = report["models"]["hybrid full T=4"]["results"]["rayleigh"]
    assert [r["snr"] for r in rows] == [0.0, 18.0]
    assert all(0 <= r["bleu1"] <= 1 and r["kl"] >= 0 for r in rows)
    assert len(report["gaps"]) == 4
    saved = json.loads((tmp_path / "a" / "report.json").read_text())
    assert saved["gaps"] == json.loads(json.dumps(report["gaps"]))
    assert {r["channel"] for r in report["sides"]} == {"awgn", "rayleigh"}
    assert all("full" in r and "receiver_in_full" in r for r in report["sides"])
    for png in ("metric_vs_snr.png", "gap_vs_T.png", "sides_vs_snr.png"):
        assert (tmp_path / "a" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_rejects_foreign_runs(tiny_teacher: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a distillation output folder"):
        load_runs(AnalyzeConfig(teacher_checkpoint=str(tiny_teacher), runs=[str(tmp_path)]))
    loaded = load_deepsc(tiny_teacher)
    from protdistill.tasks.semcom.model import save_deepsc

    run = tmp_path / "run"
    save_deepsc(run / "best_student_model.pt", loaded.model, loaded.vocab[:-1] + ["zz"])
    (run / "distillation_config.json").write_text('{"temperature": 2, "distill_part": "full"}')
    with pytest.raises(ModelError, match="vocabulary differs"):
        load_runs(AnalyzeConfig(teacher_checkpoint=str(tiny_teacher), runs=[str(run)]))
