"""Best of m: the model's own typicality score and the sampler's selection by it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.errors import ConfigError
from protdistill.tasks.peptide.denoiser import DenoiserConfig
from protdistill.tasks.peptide.diffusion import GaussianDiffusion
from protdistill.tasks.peptide.model import StructDiff, StructDiffNet
from protdistill.tasks.peptide.sample import sample_peptides
from protdistill.tasks.peptide.typicality import best_of, denoising_error

PEPTIDES = ["ACDKLW", "GGKLLKKLLKGG", "WDWDWE", "MKV", "PPGQQSTNRRHAC"]


@pytest.fixture(scope="module")
def teacher(tiny_teacher_dir):  # noqa: ANN001, ANN201
    from protdistill.teachers.esm import EsmTeacher

    return EsmTeacher(tiny_teacher_dir)


@pytest.fixture(scope="module")
def model(teacher) -> StructDiff:  # noqa: ANN001
    cfg = DenoiserConfig(embed_dim=32, d_model=16, layers=1, heads=2, num_types=2, max_length=20)
    net = StructDiffNet(cfg, decoder_hidden=16)
    gen = torch.Generator().manual_seed(0)
    for param in net.parameters():  # untrained outputs are zero
        param.data = torch.randn(param.shape, generator=gen) * 0.3
    lengths = {"amp": {6: 2, 9: 1}, "avp": {12: 1}}
    out = StructDiff(net, GaussianDiffusion(50, "cosine", "x0"), ["amp", "avp"], lengths)
    out.meta["teacher"] = teacher.identity
    return out


def test_a_peptides_score_is_seeded_by_it_alone_and_depends_on_its_label(model, teacher) -> None:
    together = denoising_error(model, PEPTIDES, "amp", teacher)
    alone = [denoising_error(model, [s], "amp", teacher, batch_size=1)[0] for s in PEPTIDES]
    assert together.shape == (5,) and (together > 0).all()
    torch.testing.assert_close(torch.tensor(together), torch.tensor(alone), rtol=1e-4, atol=1e-6)
    reordered = denoising_error(model, PEPTIDES[::-1], "amp", teacher, batch_size=2)
    torch.testing.assert_close(torch.tensor(reordered[::-1].copy()), torch.tensor(together),
                               rtol=1e-4, atol=1e-6)  # fmt: skip
    assert not torch.allclose(torch.tensor(denoising_error(model, PEPTIDES, "avp", teacher)),
                              torch.tensor(together))  # fmt: skip
    other_seed = denoising_error(model, PEPTIDES, "amp", teacher, seed=1)
    assert not torch.allclose(torch.tensor(other_seed), torch.tensor(together))


def test_the_score_follows_the_denoisers_error(model, teacher, monkeypatch) -> None:
    """0 for a denoiser that recovers the embedding exactly (x0 objective), > 0 otherwise."""
    from types import SimpleNamespace

    from protdistill.teachers.windows import stack_padded

    emb, _ = stack_padded([e.per_residue for e in teacher.embed(["ACDKLW"])])
    target = model.net.standardise(emb.float())
    assert denoising_error(model, ["ACDKLW"], "amp", teacher)[0] > 0.01
    exact = lambda x, *_: SimpleNamespace(prediction=target.expand_as(x))  # noqa: E731
    monkeypatch.setattr(model.net.denoiser, "forward", exact)
    assert denoising_error(model, ["ACDKLW"], "amp", teacher)[0] == pytest.approx(0, abs=1e-9)
    monkeypatch.setattr(model.net.denoiser, "forward", lambda x, *_: SimpleNamespace(
        prediction=target.expand_as(x) + 0.5))  # fmt: skip
    assert denoising_error(model, ["ACDKLW"], "amp", teacher)[0] == pytest.approx(0.25, rel=1e-5)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3))
def test_best_of_keeps_the_lowest_error_of_each_group(model, teacher, per, groups) -> None:
    pool = [PEPTIDES[(i * 3 + g) % 5] + "K" * g for g in range(groups) for i in range(per)]
    err = denoising_error(model, pool, "amp", teacher).reshape(groups, per)
    kept = best_of(model, pool, per, "amp", teacher)
    assert kept == [pool[g * per + int(err[g].argmin())] for g in range(groups)]
    if per > 1:
        with pytest.raises(ValueError, match=f"are not groups of {per}"):
            best_of(model, [*pool, "AAA"], per, "amp", teacher)


def test_best_of_m_sampling_keeps_lengths_is_seeded_and_needs_the_teacher(model, teacher) -> None:
    with pytest.raises(ConfigError, match="best-of-m selection needs the teacher"):
        sample_peptides(model, "amp", 3, steps=3, candidates=2)
    with pytest.raises(ConfigError, match="candidates 0"):
        sample_peptides(model, "amp", 3, steps=3, candidates=0, teacher=teacher)
    kw = dict(steps=4, seed=5, teacher=teacher, sampler="ddim", batch_size=5)
    plain = sample_peptides(model, "amp", 8, **kw)
    counted: list[int] = []
    best = sample_peptides(model, "amp", 8, candidates=3, progress=counted.append, **kw)
    assert sum(counted) == 8 and len(counted) == 5  # kept peptides, not candidates
    assert [len(s) for s in best] == [len(s) for s in plain]  # same drawn lengths, in order
    assert best == sample_peptides(model, "amp", 8, candidates=3, **kw)
    assert best != plain
    drawn = sample_peptides(model, "amp", 8, candidates=1, **kw)
    assert drawn == plain  # candidates 1 is the plain sampler
    pool = sample_peptides(model, "amp", 24, **{**kw, "seed": 9})
    mean = denoising_error(model, pool, "amp", teacher).mean()
    assert denoising_error(model, best, "amp", teacher).mean() < mean
