"""Interface evaluation on solved complexes: reading, scoring, baselines, teacher maps, training."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from protdistill.cli.main import app, main
from protdistill.distill.checkpoint import save_model
from protdistill.errors import InputError
from protdistill.io.contacts import Complex, read_complexes
from protdistill.students.interaction import InteractionConfig, InteractionStudent
from protdistill.tasks.ppi.interfaces import metrics as im
from protdistill.tasks.ppi.interfaces.training import (
    InterfaceTrainConfig,
    fine_tune,
    interface_loss,
)
from protdistill.teachers import pair_maps as pm


def _complex(seq_a="ACDEFGHIKLMNPQRSTVWY", seq_b="WYVTSRQPNMLKIHGFEDCA", contacts=None, pdb="1ABC"):
    contacts = contacts or [(2, 3), (3, 3), (4, 5), (10, 12)]
    return Complex("x|y", "x", "y", seq_a, seq_b, torch.tensor(contacts), pdb)


def _files(tmp_path, contact_lines):
    (tmp_path / "s.fasta").write_text(">x\nACDEFGHIKL\n>y\nMNPQRSTVWY\n>z\nAAAAAAAAAA\n")
    (tmp_path / "p.tsv").write_text("a\tb\tlabel\tsource\nx\ty\t1\tDIPS\nx\tz\t1\tDIPS\n")
    (tmp_path / "c.tsv").write_text("a\tb\ti\tj\tmin_dist\n" + "".join(contact_lines))
    return tmp_path / "s.fasta", tmp_path / "p.tsv", tmp_path / "c.tsv"


def test_read_complexes_and_its_errors(tmp_path):
    files = _files(tmp_path, ["x\ty\t0\t9\t4.0\n", "x\ty\t3\t3\t5.0\n", "x\tz\t1\t1\t3.0\n"])
    cx = read_complexes(*files)
    assert [c.name for c in cx] == ["x|y", "x|z"]
    assert cx[0].contact_matrix().sum() == 2 and cx[0].contact_matrix()[0, 9]
    assert cx[1].pdb == "X" and not cx[0].homodimer
    files = _files(tmp_path, ["x\ty\t0\t10\t4.0\n"])
    with pytest.raises(InputError, match=r"c.tsv: line 2: residue index '10' is not in 0..9"):
        read_complexes(*files)
    files = _files(tmp_path, ["x\ty\t0\t1\t4.0\n"])  # x|z listed but has no contacts
    with pytest.raises(InputError, match="complex x / z has no contacts"):
        read_complexes(*files)


def test_perfect_and_inverted_maps():
    c = _complex()
    truth = c.contact_matrix().float()
    best = im.score_map(truth, c)
    assert best["top_l10"] == 1.0 and best["top_l5"] == 1.0 and best["interface_auroc"] == 1.0
    at_a, at_b = truth.amax(1), truth.amax(0)
    worst = im.score_map(-(at_a[:, None] + at_b[None, :]), c)  # interface rows / columns lowest
    assert worst["top_l10"] == 0.0 and worst["interface_auroc"] == 0.0
    assert best["random_precision"] == pytest.approx(4 / 400)


def test_random_maps_score_near_density():
    c = _complex()
    gen = torch.Generator().manual_seed(0)
    scores = [im.score_map(torch.rand(20, 20, generator=gen), c) for _ in range(400)]
    mean_auc = sum(s["interface_auroc"] for s in scores) / len(scores)
    mean_top = sum(s["top_l5"] for s in scores) / len(scores)
    assert abs(mean_auc - 0.5) < 0.03 and abs(mean_top - 0.01) < 0.01


def test_diagonal_baseline_finds_a_symmetric_interface():
    c = _complex(contacts=[(i, i) for i in range(20)])
    assert im.score_map(im.diagonal_map(c), c)["top_l5"] == 1.0
    off = _complex(contacts=[(i, 19 - i) for i in range(20) if abs(2 * i - 19) > 5])
    assert im.score_map(im.diagonal_map(off), off)["top_l5"] == 0.0


def test_propensity_learns_the_interface_letter_and_folds_group_pdbs():
    w_at_interface = _complex("WAAAAWAAAA", "AAWAAAAAAW", [(0, 2), (5, 9)])
    fit = im.fit_propensity([w_at_interface])
    assert max(fit, key=fit.get) == "W"
    m = im.propensity_map(w_at_interface, fit)
    assert im.score_map(m, w_at_interface)["interface_auroc"] == 1.0
    cx = [_complex(pdb=p) for p in ["1A", "1A", "2B", "3C", "4D", "5E", "6F"]]
    folds = im.pdb_folds(cx, folds=3)
    assert folds[0] == folds[1] and set(folds) == {0, 1, 2}


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 900), st.integers(1, 900), st.integers(40, 600))
def test_pair_windows_cover_every_cell_within_budget(la, lb, budget):
    covered = torch.zeros(la, lb, dtype=torch.bool)
    for (a0, a1), (b0, b1) in pm.pair_windows(la, lb, budget):
        assert (a1 - a0) + (b1 - b0) <= budget and 0 <= a0 < a1 <= la and 0 <= b0 < b1 <= lb
        covered[a0:a1, b0:b1] = True
    assert covered.all()


def test_apc_removes_a_rank_one_background_and_junction_mask_marks_corners():
    rows, cols = torch.rand(7) + 0.5, torch.rand(5) + 0.5
    assert pm.apc(rows[:, None] * cols[None, :]).abs().max() < 1e-6
    mask = pm.junction_mask(10, 8, band=3)
    assert mask[9, 0] and mask[0, 7] and not mask[5, 4] and not mask[9, 7]


def test_windowed_teacher_map_equals_the_unwindowed_one_where_it_fits(tiny_teacher_dir):
    from protdistill.teachers.esm import EsmTeacher

    seq_a, seq_b = "MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVAGLKVLDDA"
    whole = EsmTeacher(tiny_teacher_dir)
    small = EsmTeacher(tiny_teacher_dir, max_residues=25 + 20, window_overlap=0)  # 2 x 2 windows
    full = pm.contact_block(whole, seq_a, seq_b)
    assert full.shape == (22, 18)
    assert torch.allclose(full, whole.pair_map(seq_a, seq_b), atol=1e-6)
    windowed = pm.contact_block(small, seq_a, seq_b)
    assert windowed.shape == (22, 18) and torch.isfinite(windowed).all()
    windows = pm.pair_windows(22, 18, 20)
    assert len(windows) > 1
    (a0, a1), (b0, b1) = windows[0]  # cell (0, 0) lies in this window only
    alone = small.contacts([seq_a[a0:a1] + "G" * 25 + seq_b[b0:b1]])[0]
    assert windowed[0, 0] == pytest.approx(float(alone[0, a1 - a0 + 25]), abs=1e-6)
    for construction in pm.CONSTRUCTIONS:
        m = pm.teacher_pair_map(whole, seq_a, seq_b, construction)
        assert m.shape == (22, 18) and torch.isfinite(m).all()


def test_interface_loss_has_gradients_and_fine_tuning_lowers_it():
    torch.manual_seed(0)
    c = _complex()
    model = InteractionStudent(InteractionConfig(channels=16, map_dim=8, layers=2))
    scores = torch.zeros(20, 20, requires_grad=True)
    interface_loss(scores, c.contact_matrix(), 1.0).backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0
    from protdistill.tasks.ppi.interfaces.training import map_logits

    def loss_of(m):
        with torch.no_grad():
            return float(interface_loss(map_logits(m, c.seq_a, c.seq_b), c.contact_matrix(), 1.0))

    tuned = fine_tune(model, [c], InterfaceTrainConfig(epochs=40, lr=3e-3))
    assert loss_of(tuned) < 0.7 * loss_of(model.eval())


def test_cli_interfaces_writes_metrics_tsv_figures_and_never_overwrites(
    tmp_path, monkeypatch, capfd
):
    files = _files(tmp_path, ["x\ty\t0\t9\t4.0\n", "x\ty\t3\t3\t5.0\n", "x\tz\t1\t1\t3.0\n"])
    torch.manual_seed(0)
    model = InteractionStudent(InteractionConfig(channels=16, map_dim=8, layers=2))
    save_model(tmp_path / "student.safetensors", model, {"student": model.cfg.model_dump()})
    out = tmp_path / "out"
    args = ["ppi", "interfaces", "--fasta", str(files[0]), "--pairs", str(files[1]),
            "--contacts", str(files[2]), "--model", str(tmp_path / "student.safetensors"),
            "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["sources"]) == {"propensity", "diagonal", "student"}
    assert metrics["sources"]["student"]["all"]["complexes"] == 2
    lines = (out / "complexes.tsv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 3 and lines[0].startswith("complex\tpdb\thomodimer")
    assert len(list((out / "figures").glob("*.png"))) == 2
    before = (out / "metrics.json").read_bytes()
    monkeypatch.setattr("sys.argv", ["protdistill", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "output exists" in capfd.readouterr().err
    assert (out / "metrics.json").read_bytes() == before


def test_map_kd_targets_by_construction_are_cached_apart(tmp_path, tiny_teacher_dir):
    from protdistill.io.pairs import Pair
    from protdistill.tasks.ppi.common.config import PpiConfig
    from protdistill.tasks.ppi.run.teacher import teacher_maps

    seqs = {"a": "MKTAYIAKQRQISFVKSHFSRQ", "b": "GSHMLEDPVAGLKVLDDA"}
    pairs = [Pair("a", "b", 1.0)]
    maps = {}
    for construction in ("contact", "clean"):
        cfg = PpiConfig(
            pairs="p.tsv", fasta="s.fasta", teacher=tiny_teacher_dir, cache=str(tmp_path),
            teacher_map=construction, map_residues=16, map_bins=4, progress=False,
        )  # fmt: skip
        maps[construction] = teacher_maps(cfg, tmp_path, seqs, pairs)[0].float()
        assert maps[construction].shape == (4, 4) and (maps[construction] >= 0).all()
    assert not torch.allclose(maps["contact"], maps["clean"])
    assert len(list(tmp_path.glob("pairmap-*"))) == 2
