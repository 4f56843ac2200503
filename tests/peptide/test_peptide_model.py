"""Denoiser, guidance through the network, sampling lengths, decoder, structure features."""

from __future__ import annotations

import pytest
import torch
from peptide_helpers import SHARED, make_peptides, tiny_esm_config

from protdistill.errors import ConfigError, InputError
from protdistill.tasks.peptide.decoder import ResidueDecoder, decoder_accuracy
from protdistill.tasks.peptide.denoiser import DenoiserConfig, StructDenoiser, StructureFeatures
from protdistill.tasks.peptide.diffusion import GaussianDiffusion
from protdistill.tasks.peptide.model import StructDiff, StructDiffNet
from protdistill.tasks.peptide.sample import guided_model_fn, sample_peptides
from protdistill.tasks.peptide.structure import (
    FoldFeaturizer,
    distance_rbf,
    secondary_structure,
)

D = 8


def _cfg(**kw) -> DenoiserConfig:  # noqa: ANN003
    base = dict(embed_dim=D, d_model=16, layers=2, heads=2, num_types=3, max_length=24, dropout=0.0)
    base.update(kw)
    return DenoiserConfig(**base)


def _randomise(module: torch.nn.Module) -> torch.nn.Module:
    """Zero-initialised gates make a fresh denoiser constant; give every weight a value."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return module.eval()


def _model(**kw) -> StructDiff:  # noqa: ANN003
    net = StructDiffNet(_cfg(**kw), decoder_hidden=16)
    _randomise(net)
    lengths = {"amp": {5: 3, 9: 1}, "afp": {7: 1}, "avp": {12: 2}}
    return StructDiff(net, GaussianDiffusion(50, "cosine", "x0"), ["amp", "afp", "avp"], lengths)


def _inputs(b: int = 3, n: int = 7):  # noqa: ANN202
    x = torch.randn(b, n, D)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, 5:] = False
    return x, torch.tensor([3, 10, 40][:b]), torch.tensor([0, 1, 2][:b]), mask


def test_denoiser_shapes_padding_and_conditioning() -> None:
    den = _randomise(StructDenoiser(_cfg()))
    x, t, types, mask = _inputs()
    out = den(x, t, types, mask)
    assert out.prediction.shape == x.shape
    assert (out.prediction[0, 5:] == 0).all()
    x2 = x.clone()
    x2[0, 5:] = 99.0  # padded positions never leak into real ones
    torch.testing.assert_close(den(x2, t, types, mask).prediction, out.prediction)
    other = den(x, t, torch.tensor([2, 0, 1]), mask).prediction
    assert not torch.allclose(other, out.prediction)  # the type conditions the output
    later = den(x, t + 5, types, mask).prediction
    assert not torch.allclose(later, out.prediction)  # so does the timestep


def test_structure_features_change_the_prediction_and_absent_equals_none() -> None:
    den = _randomise(StructDenoiser(_cfg(pair_dim=1)))
    x, t, types, mask = _inputs()
    pair = torch.rand(3, 7, 7, 1)
    with_struct = den(x, t, types, mask, StructureFeatures(pair=pair)).prediction
    without = den(x, t, types, mask).prediction
    assert not torch.allclose(with_struct, without)
    absent = StructureFeatures(pair=pair, present=torch.zeros(3, dtype=torch.bool))
    torch.testing.assert_close(den(x, t, types, mask, absent).prediction, without)


def test_fresh_denoiser_output_is_zero_and_gradients_reach_every_layer() -> None:
    den = StructDenoiser(_cfg(pair_dim=1))
    x, t, types, mask = _inputs()
    out = den(x, t, types, mask, StructureFeatures(pair=torch.rand(3, 7, 7, 1))).prediction
    assert (out == 0).all()  # adaLN-zero start
    out.pow(2).sum().backward() if out.requires_grad else None
    loss = GaussianDiffusion(50).loss(
        lambda xt, tt, _: den(xt, tt, types, mask).prediction, x, mask
    )
    loss.backward()
    assert den.final.weight.grad is not None and den.final.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("pair_dim", [0, 1])
def test_guidance_scale_one_is_conditional_and_zero_unconditional(pair_dim: int) -> None:
    model = _model(pair_dim=pair_dim)
    den = model.net.denoiser
    x, t, types, mask = _inputs()
    null = torch.full_like(types, den.null_type)
    prev = torch.randn_like(x) if pair_dim else None
    feats = den.structure_head(prev, mask) if pair_dim else None
    cond = den(x, t, types, mask, feats).prediction
    uncond = den(x, t, null, mask, feats).prediction
    assert not torch.allclose(cond, uncond)
    for scale, expected in ((1.0, cond), (0.0, uncond), (2.5, uncond + 2.5 * (cond - uncond))):
        got = guided_model_fn(model, types, mask, scale, structure=True)(x, t, prev)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_guidance_applies_only_inside_its_interval() -> None:
    model = _model()
    den = model.net.denoiser
    x, _, types, mask = _inputs()
    fn = guided_model_fn(model, types, mask, 3.0, structure=False, interval=(10, 20))
    for step, guided in ((9, False), (10, True), (19, True), (20, False)):
        t = torch.full((3,), step)
        cond = den(x, t, types, mask).prediction
        uncond = den(x, t, torch.full_like(types, den.null_type), mask).prediction
        want = uncond + 3.0 * (cond - uncond) if guided else cond
        torch.testing.assert_close(fn(x, t, None), want, atol=1e-5, rtol=1e-5)
    full = sample_peptides(model, "amp", 6, steps=5, guidance=3.0, seed=1)
    assert full == sample_peptides(model, "amp", 6, steps=5, guidance=3.0, seed=1,
                                   guidance_interval=(0.0, 1.0))  # fmt: skip
    assert full != sample_peptides(model, "amp", 6, steps=5, guidance=3.0, seed=1,
                                   guidance_interval=(0.5, 1.0))  # fmt: skip
    for bad in ((0.5, 0.5), (-0.1, 0.5), (0.2, 1.5)):
        with pytest.raises(ConfigError, match="guidance interval"):
            sample_peptides(model, "amp", 2, steps=2, guidance_interval=bad)


def test_guidance_rescale_reaches_the_sampler_and_is_checked() -> None:
    model = _model()
    x, t, types, mask = _inputs()
    plain = guided_model_fn(model, types, mask, 3.0, structure=False)(x, t, None)
    scaled = guided_model_fn(model, types, mask, 3.0, structure=False, rescale=1.0)(x, t, None)
    assert not torch.allclose(plain, scaled)
    base = sample_peptides(model, "amp", 6, steps=5, guidance=3.0, seed=1)
    assert base == sample_peptides(model, "amp", 6, steps=5, guidance=3.0, seed=1,
                                   guidance_rescale=0.0)  # fmt: skip
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="guidance rescale"):
            sample_peptides(model, "amp", 2, steps=2, guidance_rescale=bad)


def test_self_conditioning_reads_the_previous_estimate_and_none_adds_nothing() -> None:
    den = _randomise(StructDenoiser(_cfg(self_condition=True)))
    x, t, types, mask = _inputs()
    est = torch.randn_like(x)
    plain = den(x, t, types, mask).prediction
    torch.testing.assert_close(den(x, t, types, mask, None, torch.zeros_like(x)).prediction, plain)
    own = den(x, t, types, mask, None, est).prediction
    assert not torch.allclose(own, plain)
    padded = est.clone()
    padded[0, 5:] = 99.0  # an estimate at padded positions never reaches real ones
    torch.testing.assert_close(den(x, t, types, mask, None, padded).prediction, own)
    own.pow(2).sum().backward()
    assert den.self_cond.weight.grad.abs().sum() > 0
    assert "self_cond.weight" not in StructDenoiser(_cfg()).state_dict()  # off by default


def test_sampler_feeds_the_previous_estimate_to_a_self_conditioning_model() -> None:
    model = _model(self_condition=True)
    den = model.net.denoiser
    x, t, types, mask = _inputs()
    prev = torch.randn_like(x)
    null = torch.full_like(types, den.null_type)
    cond = den(x, t, types, mask, None, prev).prediction
    uncond = den(x, t, null, mask, None, prev).prediction
    got = guided_model_fn(model, types, mask, 2.0, structure=False)(x, t, prev)
    torch.testing.assert_close(got, uncond + 2.0 * (cond - uncond), atol=1e-5, rtol=1e-5)
    first = guided_model_fn(model, types, mask, 1.0, structure=False)(x, t, None)
    torch.testing.assert_close(first, den(x, t, types, mask).prediction)
    seqs = sample_peptides(model, "avp", 4, steps=4, seed=3)
    assert seqs == sample_peptides(model, "avp", 4, steps=4, seed=3)
    assert all(len(s) == 12 for s in seqs)


@pytest.mark.parametrize("length", [1, 5, 24])
def test_samples_respect_the_requested_length(length: int) -> None:
    model = _model(pair_dim=1)
    seqs = sample_peptides(model, "afp", 6, length=length, steps=4, guidance=2.0, batch_size=4)
    assert len(seqs) == 6 and all(len(s) == length for s in seqs)
    assert all(set(s) <= set("ACDEFGHIKLMNPQRSTVWY") for s in seqs)


def test_drawn_lengths_follow_the_type_and_sampling_is_seeded() -> None:
    model = _model()
    a = sample_peptides(model, "amp", 12, steps=3, sampler="ddpm", seed=3)
    assert {len(s) for s in a} <= {5, 9}
    assert a == sample_peptides(model, "amp", 12, steps=3, sampler="ddpm", seed=3)
    assert a != sample_peptides(model, "amp", 12, steps=3, sampler="ddpm", seed=4)
    with pytest.raises(InputError, match="unknown peptide type"):
        sample_peptides(model, "xyz", 2, steps=2)
    with pytest.raises(ConfigError, match="exceeds"):
        sample_peptides(model, "amp", 2, length=25, steps=2)


def _shifted_by_padding(den: StructDenoiser, x, t, types):  # noqa: ANN001, ANN202
    """Predictions for ``x`` alone and for ``x`` after two padded positions (real part)."""
    mask = torch.ones(x.shape[:2], dtype=torch.bool)
    alone = den(x, t, types, mask).prediction
    pad = torch.randn(x.shape[0], 2, x.shape[2])
    later = den(torch.cat([pad, x], 1), t, types, torch.cat([~mask[:, :2], mask], 1))
    return alone, later.prediction[:, 2:]


def test_relative_positions_see_offsets_only_and_absolute_positions_see_the_index() -> None:
    x, t, types, _ = _inputs()
    rel = _randomise(StructDenoiser(_cfg(relative_positions=3, absolute_positions=False)))
    alone, later = _shifted_by_padding(rel, x, t, types)
    torch.testing.assert_close(later, alone)  # a motif is the same wherever the window starts
    both = _randomise(StructDenoiser(_cfg(relative_positions=3)))
    alone, later = _shifted_by_padding(both, x, t, types)
    assert not torch.allclose(later, alone)
    bias = rel.relative_bias(7, x.device)
    assert bias.shape == (2, 2, 7, 7)  # (layers, heads, query, key)
    torch.testing.assert_close(bias[:, :, 0, 4], bias[:, :, 1, 5])  # same offset, same bias
    torch.testing.assert_close(bias[:, :, 0, 5], bias[:, :, 0, 6])  # clipped beyond +-3
    assert not torch.allclose(bias[:, :, 0, 1], bias[:, :, 1, 0])  # direction matters
    rel(x, t, types, _inputs()[3]).prediction.pow(2).sum().backward()
    assert rel.relative.weight.grad.abs().sum() > 0
    names = StructDenoiser(_cfg()).state_dict()
    assert "pos.weight" in names and not any(k.startswith("relative") for k in names)  # default


def test_bundle_save_load_round_trip(tmp_path) -> None:
    model = _model(pair_dim=1)
    model.meta["teacher"] = "tiny"
    path = model.save(tmp_path / "model.safetensors")
    loaded = StructDiff.load(path)
    assert loaded.types == model.types and loaded.lengths == model.lengths
    assert loaded.diffusion.objective == "x0" and loaded.meta["teacher"] == "tiny"
    a = sample_peptides(model, "avp", 3, steps=3, seed=1)
    assert a == sample_peptides(loaded, "avp", 3, steps=3, seed=1)


def _fit_decoder(x, mask, seqs, steps: int = 300) -> ResidueDecoder:  # noqa: ANN001
    torch.manual_seed(0)
    dec = ResidueDecoder(x.shape[-1], 64)
    opt = torch.optim.Adam(dec.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = dec.loss(x, mask, seqs, noise=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return dec.eval()


def _embed(teacher, seqs):  # noqa: ANN001, ANN202
    from protdistill.teachers.esm import stack_padded

    x, mask = stack_padded([e.per_residue for e in teacher.embed(seqs)])
    mu, sd = x[mask].mean(0), x[mask].std(0)
    return (x - mu) / sd * mask[..., None], mask


def test_decoder_round_trip_on_tiny_teacher_embeddings(tiny_teacher_dir) -> None:
    from protdistill.teachers.esm import EsmTeacher

    teacher = EsmTeacher(tiny_teacher_dir)
    seqs = [s for _, s in make_peptides(30)]
    x, mask = _embed(teacher, seqs)
    dec = _fit_decoder(x[:60], mask[:60], seqs[:60])
    acc = decoder_accuracy(dec, x[60:], mask[60:], seqs[60:])
    assert acc > 0.9  # real (held-out) embeddings decode back to their residues
    assert decoder_accuracy(ResidueDecoder(x.shape[-1]), x[60:], mask[60:], seqs[60:]) < 0.3


@pytest.mark.shared
def test_decoder_round_trip_on_the_stand_in_teacher() -> None:
    model_dir = SHARED / "models" / "esm2_t6_8M_standin"
    if not model_dir.is_dir():
        pytest.skip(f"../shared absent: {model_dir} not found")
    from protdistill.teachers.esm import EsmTeacher

    teacher = EsmTeacher(model_dir)
    seqs = [s for _, s in make_peptides(40, seed=1)]
    x, mask = _embed(teacher, seqs)
    dec = _fit_decoder(x[:90], mask[:90], seqs[:90], steps=200)
    assert decoder_accuracy(dec, x[90:], mask[90:], seqs[90:]) > 0.9


def test_secondary_structure_of_ideal_helix_and_strand() -> None:
    i = torch.arange(12, dtype=torch.float32)
    helix = torch.stack([2.3 * torch.cos(i * 1.745), 2.3 * torch.sin(i * 1.745), 1.5 * i], -1)
    strand = torch.stack([3.3 * i, 0.9 * (i % 2), torch.zeros(12)], -1)
    assert secondary_structure(helix)[:8, 0].all()
    assert secondary_structure(strand)[:8, 1].all()
    rbf = distance_rbf(torch.tensor([4.0, 30.0]))
    assert rbf.shape == (2, 4) and rbf[0, 0] == 1.0 and rbf[1].max() < 1e-3


def test_esmfold_features_with_a_tiny_random_folding_model() -> None:
    from transformers import EsmForProteinFolding

    sm = dict(
        sequence_dim=16,
        pairwise_dim=8,
        ipa_dim=8,
        resnet_dim=8,
        num_heads_ipa=2,
        num_qk_points=2,
        num_v_points=2,
        num_blocks=1,
        num_transition_layers=1,
        num_resnet_blocks=1,
    )
    trunk = dict(
        num_blocks=1,
        sequence_state_dim=32,
        pairwise_state_dim=16,
        sequence_head_width=16,
        pairwise_head_width=8,
        max_recycles=1,
        structure_module=sm,
    )
    cfg = tiny_esm_config(is_folding_model=True, esmfold_config=dict(trunk=trunk, fp16_esm=False))
    torch.manual_seed(0)
    fold = FoldFeaturizer(EsmForProteinFolding(cfg))
    feats = fold.features(["GLFDIVKKVV", "ACDK"])
    for (pair, residue), n in zip(feats, (10, 4), strict=True):
        assert pair.shape == (n, n, 4) and residue.shape == (n, 4)
        assert ((pair >= 0) & (pair <= 1)).all() and ((residue >= 0) & (residue <= 1)).all()
        torch.testing.assert_close(pair, pair.transpose(0, 1))
        torch.testing.assert_close(residue[:, 1:].sum(-1), torch.ones(n))


def test_teacher_projection_re_embeds_decoded_samples(tiny_teacher_dir) -> None:
    from protdistill.tasks.peptide.sample import teacher_projector
    from protdistill.teachers.esm import EsmTeacher

    teacher = EsmTeacher(tiny_teacher_dir)
    model = _model(embed_dim=32)
    model.meta["teacher"] = teacher.identity
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6], dtype=torch.bool)
    z = torch.randn(2, 6, 32) * mask[..., None]
    out = teacher_projector(model, teacher, mask)(z)
    seqs = model.net.decode(z, mask).sequences()
    assert [len(s) for s in seqs] == [4, 6] and out.shape == z.shape
    assert (out[0, 4:] == 0).all()
    for row, emb in enumerate(teacher.embed(seqs)):
        want = model.net.standardise(emb.per_residue.float())
        torch.testing.assert_close(out[row, : len(seqs[row])], want)
    model.meta["teacher"] = "another-teacher"
    with pytest.raises(ConfigError, match="not the model's teacher"):
        teacher_projector(model, teacher, mask)


def test_projected_sampling_is_seeded_and_needs_the_teacher(tiny_teacher_dir) -> None:
    from protdistill.teachers.esm import EsmTeacher

    teacher = EsmTeacher(tiny_teacher_dir)
    model = _model(embed_dim=32)
    with pytest.raises(ConfigError, match="needs the teacher"):
        sample_peptides(model, "amp", 2, steps=3, project_below=0.5)
    kw = dict(steps=4, seed=2, teacher=teacher, temperature=1.2)
    a = sample_peptides(model, "amp", 5, project_below=0.5, **kw)
    assert {len(s) for s in a} <= {5, 9}
    assert a == sample_peptides(model, "amp", 5, project_below=0.5, **kw)
    assert a != sample_peptides(model, "amp", 5, project_below=0.0, **kw)
