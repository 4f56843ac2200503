"""Binding-site supervision (issue 45): label files, site KD loss, windowed profiles, `ppi sites`
and combined maps."""

from __future__ import annotations

import json
import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from protdistill.alphabet import encode_batch
from protdistill.errors import InputError
from protdistill.io.contacts import read_complexes
from protdistill.io.sites import parse_label_line, read_sites
from protdistill.students.interaction import InteractionConfig, InteractionStudent
from protdistill.students.site import SiteStudent, site_kd_loss
from protdistill.tasks.ppi.interfaces.complexes import student_map
from protdistill.tasks.ppi.sites.maps import combine, site_sources
from protdistill.tasks.ppi.sites.model import save_site_model, site_logits

LETTERS = "ACDEFGHIKLMNPQRSTVWY"


@given(st.lists(st.integers(0, 1), min_size=1, max_size=300))
def test_label_line_round_trip(flags):
    text = "".join(map(str, flags))
    pid, labels = parse_label_line(f"x_A\t{len(flags)}\t{sum(flags)}\t{text}\n", "l.tsv", 2)
    assert pid == "x_A" and list(labels) == flags


@given(
    st.lists(st.integers(0, 1), min_size=1, max_size=50),
    st.integers(-3, 3).filter(bool),
    st.sampled_from(["length", "count"]),
)
def test_label_line_disagreeing_counts_refused(flags, delta, column):
    length, count = len(flags), sum(flags)
    if column == "length":
        length += delta
    else:
        count += delta
    if length < 0 or count < 0:
        return
    with pytest.raises(InputError, match="line 7"):
        parse_label_line(f"x\t{length}\t{count}\t{''.join(map(str, flags))}", "l.tsv", 7)


@given(st.text(alphabet="0123abc ", min_size=1, max_size=20).filter(lambda s: set(s) - {"0", "1"}))
def test_label_line_non_binary_refused(flags):
    with pytest.raises(InputError):
        parse_label_line(f"x\t{len(flags)}\t0\t{flags}", "l.tsv", 2)


def write_site_dir(folder, chains: dict[str, tuple[str, str, str]]) -> None:
    """chains: id -> (sequence, 0/1 string, split)."""
    folder.mkdir(parents=True, exist_ok=True)
    fasta = "".join(f">{k} len={len(s)}\n{s}\n" for k, (s, _, _) in chains.items())
    (folder / "sequences.fasta").write_text(fasta)
    (folder / "labels.tsv").write_text("id\tlength\tn_interface\tlabels\n" + "".join(
        f"{k}\t{len(y)}\t{y.count('1')}\t{y}\n" for k, (_, y, _) in chains.items()))  # fmt: skip
    (folder / "splits.tsv").write_text("id\tsubset\tcluster30\tsplit\n" + "".join(
        f"{k}\ttest_70\t{k}\t{sp}\n" for k, (_, _, sp) in chains.items()))  # fmt: skip


def test_read_sites_joins_files_and_checks_them(tmp_path):
    write_site_dir(tmp_path / "ok", {"a_A": ("ACDE", "0110", "train"), "b_B": ("WY", "10", "val")})
    chains = read_sites(tmp_path / "ok")
    assert [(c.id, c.seq, c.labels, c.split) for c in chains] == [
        ("a_A", "ACDE", (0, 1, 1, 0), "train"),
        ("b_B", "WY", (1, 0), "val"),
    ]
    write_site_dir(tmp_path / "bad", {"a_A": ("ACDE", "011", "train")})
    with pytest.raises(InputError, match="3 labels for 4 residues"):
        read_sites(tmp_path / "bad")
    (tmp_path / "ok" / "splits.tsv").write_text("id\tsubset\tcluster30\tsplit\na_A\tx\ty\ttest\n")
    with pytest.raises(InputError, match="line 2"):
        read_sites(tmp_path / "ok")


def test_site_kd_loss_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(1, 6)
    labels = torch.tensor([[1, 0, 0, 1, 0, 0]])
    soft = torch.rand(1, 6)
    alone = site_kd_loss(logits, torch.ones(1, 6, dtype=torch.bool), labels, soft, pos_weight=3.0)
    # the same chain padded to 10 with garbage logits / targets in the padding
    mask = torch.tensor([[True] * 6 + [False] * 4])
    padded_logits = torch.cat([logits, torch.full((1, 4), 50.0)], 1)
    padded_labels = torch.cat([labels, torch.ones(1, 4, dtype=torch.long)], 1)
    padded_soft = torch.cat([soft, torch.zeros(1, 4)], 1)
    padded = site_kd_loss(padded_logits, mask, padded_labels, padded_soft, pos_weight=3.0)
    assert torch.allclose(alone, padded)
    padded_logits.requires_grad_(True)
    site_kd_loss(padded_logits, mask, padded_labels, padded_soft).backward()
    assert padded_logits.grad[0, 6:].abs().sum() == 0 and padded_logits.grad[0, :6].abs().sum() > 0


def site_student(kernel_size: int = 5) -> SiteStudent:
    torch.manual_seed(0)
    return SiteStudent(InteractionStudent(InteractionConfig(kernel_size=kernel_size))).eval()


def test_windowed_profile_equals_unwindowed_where_both_fit():
    rng = random.Random(1)
    seq = "".join(rng.choice(LETTERS) for _ in range(300))
    model = site_student()
    whole = site_logits(model, [seq], window=1000)[0]
    direct = model(*encode_batch([seq]))[0]
    assert torch.allclose(whole, direct, atol=1e-5)
    # batching next to a longer chain changes nothing either
    other = "".join(rng.choice(LETTERS) for _ in range(500))
    assert torch.allclose(site_logits(model, [other, seq], window=1000)[1], whole, atol=1e-5)
    # windows of 120 residues: a residue-local model (1x1 convolutions) gives the same profile
    local = site_student(kernel_size=1)
    assert torch.allclose(
        site_logits(local, [seq], window=120, overlap=30)[0],
        site_logits(local, [seq], window=1000)[0],
        atol=1e-5,
    )
    assert site_logits(model, [seq], window=120, overlap=30)[0].shape == (300,)


def test_combined_map_symmetric_under_swap():
    torch.manual_seed(0)
    student = InteractionStudent().eval()
    ta, ma = encode_batch(["ACDEFGHIKLMNPQ"])
    tb, mb = encode_batch(["WYWYACDKLMA"])
    ha, hb = student.residues(ta, ma), student.residues(tb, mb)
    pab = student.interaction_map(ha, hb, ma, mb)[0]
    pba = student.interaction_map(hb, ha, mb, ma)[0]
    sa, sb = torch.randn(14), torch.randn(11)
    for w in (0.0, 1.0, 2.5):
        assert torch.allclose(combine(sa, sb, pab, w), combine(sb, sa, pba, w).T, atol=1e-5)
    assert not torch.allclose(combine(sa, sb, pab, 1.0), combine(sa, sb, pab, 0.0))


@pytest.fixture()
def site_model_dir(tmp_path):
    model = site_student()
    save_site_model(tmp_path / "m", model, {"student": model.encoder.cfg.model_dump()})
    return tmp_path / "m"


def test_ppi_sites_rows_and_resume(tmp_path, site_model_dir, monkeypatch):
    from protdistill.tasks.ppi.sites import predict as pr

    rng = random.Random(2)
    seqs = {f"p{i}": "".join(rng.choice(LETTERS) for _ in range(rng.randint(5, 80)))
            for i in range(9)}  # fmt: skip
    fasta = tmp_path / "in.fasta"
    fasta.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    first = pr.predict_sites(site_model_dir, fasta, tmp_path / "a.tsv.gz", chunk=4)
    rows = pr.read_table(tmp_path / "a.tsv.gz")
    assert first["residues"] == len(rows) == sum(map(len, seqs.values()))
    assert [r[2] for r in rows] == list("".join(seqs.values()))
    assert [r[1] for r in rows[: len(seqs["p0"])]] == list(range(1, len(seqs["p0"]) + 1))
    assert all(0 <= r[3] <= 1 for r in rows)
    # killed while computing the second chunk: the first chunk's part survives, the rerun
    # computes only what is missing and writes the same bytes
    real, calls = pr.site_probabilities, []

    def dies_second_time(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(pr, "site_probabilities", dies_second_time)
    with pytest.raises(KeyboardInterrupt):
        pr.predict_sites(site_model_dir, fasta, tmp_path / "b.tsv.gz", chunk=4)
    assert not (tmp_path / "b.tsv.gz").exists()
    assert sorted(p.name for p in (tmp_path / "b.parts").iterdir()) == [
        "inputs.json", "part-000000.tsv"]  # fmt: skip
    monkeypatch.setattr(pr, "site_probabilities", real)
    resumed = pr.predict_sites(site_model_dir, fasta, tmp_path / "b.tsv.gz", chunk=4)
    assert resumed["resumed_chunks"] == 1
    assert (tmp_path / "a.tsv.gz").read_bytes() == (tmp_path / "b.tsv.gz").read_bytes()
    assert not (tmp_path / "b.parts").exists()


def test_ppi_sites_parquet_matches_tsv(tmp_path, site_model_dir):
    from protdistill.tasks.ppi.sites.predict import predict_sites, read_table

    fasta = tmp_path / "in.fasta"
    fasta.write_text(">x\nACDEFGHIKL\n>y\nWWYY\n")
    predict_sites(site_model_dir, fasta, tmp_path / "s.tsv.gz")
    predict_sites(site_model_dir, fasta, tmp_path / "s.parquet", plot=tmp_path / "fig")
    tsv, pq = read_table(tmp_path / "s.tsv.gz"), read_table(tmp_path / "s.parquet")
    assert [r[:3] for r in tsv] == [r[:3] for r in pq] and len(tsv) == 14
    assert max(abs(a[3] - b[3]) for a, b in zip(tsv, pq, strict=True)) < 1e-4
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == ["x.png", "y.png"]


def test_ppi_sites_cli_bad_fasta_one_line(tmp_path, site_model_dir, monkeypatch, capfd):
    from protdistill.cli.main import main

    fasta = tmp_path / "bad.fasta"
    fasta.write_text(">x\nAC1DE\n")
    argv = ["protdistill", "ppi", "sites", "--model", str(site_model_dir), "--fasta", str(fasta),
            "--out", str(tmp_path / "s.tsv.gz")]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capfd.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and "bad.fasta" in err[0] and "fix" in err[0]
    assert not (tmp_path / "s.tsv.gz").exists()
    fasta.write_text(">x\nACDE\n")
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    assert "1 proteins, 4 residues" in capfd.readouterr().out


def _tiny_sites(folder):
    """16 chains; residues of the motif WWCC are the binding site (something to learn)."""
    rng = random.Random(3)
    chains = {}
    for i in range(16):
        seq = "".join(rng.choice(LETTERS) for _ in range(rng.randint(20, 50)))
        at = rng.randrange(len(seq) - 4)
        seq = seq[:at] + "WWCC" + seq[at + 4 :]
        labels = "".join("1" if at <= j < at + 4 else "0" for j in range(len(seq)))
        chains[f"c{i}_A"] = (seq, labels, "val" if i % 4 == 0 else "train")
    write_site_dir(folder, chains)


@pytest.mark.parametrize("student", ["interaction", "resnet1d"])
def test_ppi_run_with_sites(tmp_path, ppi_files, tiny_teacher_dir, student):
    from typer.testing import CliRunner

    from protdistill import load
    from protdistill.cli.main import app
    from protdistill.tasks.ppi.sites.predict import read_table

    pairs, fasta = ppi_files
    _tiny_sites(tmp_path / "sites")
    out = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("batch_size: 8\nprogress: false\nhead_epochs: 5\nhead_crossfit: 2\n"
                   "tokens_per_batch: 512\nmap_residues: 16\nmap_bins: 4\n")  # fmt: skip
    args = ["ppi", "run", "--pairs", str(pairs), "--fasta", str(fasta), "--teacher",
            tiny_teacher_dir, "--out", str(out), "--split", "random", "--epochs", "1",
            "--student", student, "--config", str(cfg)]  # fmt: skip
    args += ["--sites", str(tmp_path / "sites")]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    sites = json.loads((out / "metrics.json").read_text())["sites"]
    assert sites["teacher_head"]["chains"] == sites["student"]["chains"] == 4
    assert 0 <= sites["student"]["auroc"] <= 1 and sites["student"]["residues_per_s"] > 0
    assert (out / "sites" / "site_model.safetensors").exists()
    # `ppi sites` and the API read the run's site model and agree
    seqs = {"x": "ACDEWWCCKLM", "y": "MKTAYIAK"}
    (tmp_path / "q.fasta").write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    query = ["--fasta", str(tmp_path / "q.fasta"), "--out", str(tmp_path / "s.tsv.gz")]
    result = CliRunner().invoke(app, ["ppi", "sites", "--model", str(out), *query])
    assert result.exit_code == 0, result.output
    rows = read_table(tmp_path / "s.tsv.gz")
    api = load(out).sites(seqs)
    assert len(rows) == 19 and [len(v) for v in api.values()] == [11, 8]
    flat = [float(x) for v in api.values() for x in v]
    assert max(abs(round(a, 4) - r[3]) for a, r in zip(flat, rows, strict=True)) < 1e-4


def test_interfaces_and_explain_use_the_run_site_model(tmp_path):
    from typer.testing import CliRunner

    from protdistill.cli.main import app
    from protdistill.distill.checkpoint import save_model

    torch.manual_seed(0)
    student = InteractionStudent(InteractionConfig(channels=16, map_dim=8, layers=2)).eval()
    run = tmp_path / "run"
    run.mkdir()
    save_model(run / "student.safetensors", student, {"student": student.cfg.model_dump()})
    site = SiteStudent(InteractionStudent(InteractionConfig(channels=16, map_dim=8, layers=2)))
    save_site_model(run / "sites", site, {"student": site.encoder.cfg.model_dump()})
    (tmp_path / "s.fasta").write_text(">x\nACDEFGHIKLMNPQRSTVWY\n>y\nMNPQRSTVWYACDEFGHIKL\n")
    (tmp_path / "p.tsv").write_text("a\tb\tlabel\tsource\nx\ty\t1\tDIPS\n")
    (tmp_path / "c.tsv").write_text("a\tb\ti\tj\tmin_dist\nx\ty\t0\t9\t4.0\nx\ty\t3\t3\t5.0\n")
    args = ["ppi", "interfaces", "--fasta", str(tmp_path / "s.fasta"), "--pairs",
            str(tmp_path / "p.tsv"), "--contacts", str(tmp_path / "c.tsv"), "--model", str(run),
            "--out", str(tmp_path / "out"), "--no-figures"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"student", "student_sites"} <= set(metrics["sources"])
    (cx,) = read_complexes(tmp_path / "s.fasta", tmp_path / "p.tsv", tmp_path / "c.tsv")
    pairing = student_map(student)
    sources = site_sources(run, pairing, weight=1.0)
    sites_only = sources["student_sites"](cx)
    assert sites_only.shape == (20, 20)
    s_a, s_b = sites_only[:, 0] - sites_only[0, 0], sites_only[0]  # s_a + s_b is the same map
    expected = combine(s_a, s_b, pairing(cx), 1.0)
    assert torch.allclose(sources["student_combined"](cx), expected, atol=1e-4)
    assert site_sources(tmp_path, pairing) == {}  # no site model: no site sources
    png = tmp_path / "fig" / "xy.png"
    args = ["ppi", "explain", "--model", str(run), "--fasta", str(tmp_path / "s.fasta"),
            "--a", "x", "--b", "y", "--out", str(png)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    info = json.loads(png.with_suffix(".json").read_text())
    assert len(info["sites"]["top_cells"]) == 2  # L/10 of 20 residues
    assert png.with_suffix(".sites.png").stat().st_size > 10_000


def _site_data(n: int, seed: int, dim: int = 6):
    rng = random.Random(seed)
    seqs = ["".join(rng.choice(LETTERS) for _ in range(rng.randint(8, 30))) for _ in range(n)]
    tokens = [encode_batch([s])[0][0][: len(s)] for s in seqs]
    labels = [[int(c in "KRDE") for c in s] for s in seqs]
    torch.manual_seed(seed)
    states = [torch.randn(len(s), dim) for s in seqs]
    return tokens, labels, states


def test_feature_kd_and_cosine_schedule_train_and_leave_the_model_unchanged_in_shape():
    from protdistill.errors import ConfigError
    from protdistill.tasks.ppi.sites.training import (
        SiteTrainConfig,
        _schedule,
        _with_feature_kd,
        fit_sites,
    )

    tokens, labels, states = _site_data(12, 0)
    cfg = SiteTrainConfig(epochs=2, residues_per_batch=64, feature_weight=1.0, schedule="cosine")
    model = site_student()
    keys = set(model.state_dict())
    with pytest.raises(ConfigError, match="residue states"):
        fit_sites(model, (tokens, labels, None), (tokens[:3], labels[:3]), cfg)
    trained, history = fit_sites(model, (tokens, labels, None, states),
                                 (tokens[:3], labels[:3]), cfg)  # fmt: skip
    assert set(trained.state_dict()) == keys  # the projector is not part of the saved model
    assert len(history["epochs"]) == 2
    # the feature term is a masked 1 - cosine in [0, 2] that trains the projector
    x, mask = encode_batch(["ACDK", "MN"])
    proj = torch.nn.Conv1d(trained.head.net[0].in_channels, 6, 1)
    logits, loss = _with_feature_kd(trained.train(), proj, x, mask,
                                    [torch.randn(4, 6), torch.randn(2, 6)])  # fmt: skip
    loss.backward()
    assert logits.shape == mask.shape and 0 <= float(loss.detach()) <= 2
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    # cosine: full rate first, half at the middle, zero at the end
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched, rates = _schedule(opt, "cosine", 10), []
    for _ in range(11):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] == 1.0 and abs(rates[5] - 0.5) < 1e-9 and rates[10] < 1e-12
