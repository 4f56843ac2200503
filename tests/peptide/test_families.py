"""Peptide families: k-means sub-types of a type, their sampling proportions and the bundle."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protdistill.errors import ConfigError
from protdistill.io.peptides import Peptide
from protdistill.tasks.peptide.config import ModelConfig, PeptideTrainConfig
from protdistill.tasks.peptide.data import PeptideSplit
from protdistill.tasks.peptide.denoiser import DenoiserConfig
from protdistill.tasks.peptide.diffusion import GaussianDiffusion
from protdistill.tasks.peptide.families import family_counts, family_split
from protdistill.tasks.peptide.model import StructDiff, StructDiffNet
from protdistill.tasks.peptide.sample import sample_peptides
from protdistill.tasks.peptide.train import train_structdiff


def _two_cluster_split() -> tuple[PeptideSplit, dict[str, torch.Tensor]]:
    """avp peptides whose embeddings sit around +5 (names 'P…') or -5 ('N…'); amp around 0."""
    g = torch.Generator().manual_seed(0)
    emb, train, val = {}, [], []
    for i in range(24):
        sign = 1 if i % 2 else -1
        seq = ("P" if sign > 0 else "N") + "A" * (i + 1)
        emb[seq] = sign * 5 + torch.randn(i + 2, 4, generator=g)
        (val if i >= 20 else train).append(Peptide(seq, "avp"))
    for i in range(6):
        seq = "K" * (i + 2)
        emb[seq] = torch.randn(i + 2, 4, generator=g)
        train.append(Peptide(seq, "amp"))
    return PeptideSplit(train, val, ["amp", "avp"]), emb


def test_families_follow_the_embedding_clusters_and_leave_other_types_alone() -> None:
    split, emb = _two_cluster_split()
    labelled, families = family_split(split, emb, {"avp": 2})
    assert families == {"avp": ["avp/0", "avp/1"]}
    assert labelled.types == ["amp", "avp/0", "avp/1"]
    by_seq = {p.sequence: p.type for p in labelled.train + labelled.val}
    assert {by_seq[s] for s in by_seq if s.startswith("K")} == {"amp"}
    pos = {by_seq[s] for s in by_seq if s.startswith("P")}
    neg = {by_seq[s] for s in by_seq if s.startswith("N")}
    assert len(pos) == len(neg) == 1 and pos != neg  # held-out peptides join their cluster
    assert [p.sequence for p in labelled.train] == [p.sequence for p in split.train]
    assert family_split(split, emb, {"avp": 2})[0] == labelled  # seeded
    assert family_split(split, emb, {}) == (split, {})


@pytest.mark.parametrize("families", [{"avp": 21}, {"afp": 2}])
def test_too_few_peptides_or_an_unknown_type_is_one_config_error(families) -> None:
    split, emb = _two_cluster_split()
    with pytest.raises(ConfigError, match="model.families asks for") as err:
        family_split(split, emb, families)
    assert "types: amp, avp" in str(err.value) and err.value.fix


def test_a_family_count_below_two_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 2 families"):
        ModelConfig(families={"avp": 1})


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 500), weights=st.lists(st.integers(1, 300), min_size=1, max_size=12))
def test_family_counts_sum_to_n_and_stay_within_one_of_the_share(n, weights) -> None:
    counts = family_counts(n, weights)
    assert sum(counts) == n and len(counts) == len(weights)
    assert all(abs(c - n * w / sum(weights)) < 1 for c, w in zip(counts, weights, strict=True))


def _family_model() -> StructDiff:
    cfg = DenoiserConfig(embed_dim=8, d_model=16, layers=1, heads=2, num_types=3, max_length=24)
    net = StructDiffNet(cfg, decoder_hidden=16).eval()
    lengths = {"amp": {9: 1}, "avp/0": {5: 3}, "avp/1": {12: 1}}
    types = ["amp", "avp/0", "avp/1"]
    families = {"avp": ["avp/0", "avp/1"]}
    return StructDiff(net, GaussianDiffusion(50, "cosine", "x0"), types, lengths, {}, families)


def test_a_type_samples_its_families_in_training_proportions(tmp_path) -> None:
    model = _family_model()
    seqs = sample_peptides(model, "avp", 8, steps=3, seed=2)
    assert sorted(len(s) for s in seqs) == [5] * 6 + [12] * 2
    assert seqs == sample_peptides(model, "avp", 8, steps=3, seed=2)
    assert seqs[:6] == sample_peptides(model, "avp/0", 6, steps=3, seed=2)  # family 0: seed 2
    assert {len(s) for s in sample_peptides(model, "avp/1", 3, steps=3)} == {12}
    assert model.type_names() == ["amp", "avp", "avp/0", "avp/1"]
    loaded = StructDiff.load(model.save(tmp_path / "model.safetensors"))
    assert loaded.families == model.families
    assert sample_peptides(loaded, "avp", 8, steps=3, seed=2) == seqs


def test_training_with_families_conditions_on_them_and_keeps_the_split_by_type(
    tmp_path, tiny_teacher_dir, peptide_csv
) -> None:
    model = {"d_model": 16, "layers": 1, "heads": 2, "decoder_hidden": 32, "families": {"avp": 3}}
    cfg = PeptideTrainConfig(
        data=str(peptide_csv), teacher=tiny_teacher_dir, timesteps=50, model=model,
        stages=[{"epochs": 1, "structure": False}], out=str(tmp_path / "run"),
        cache=str(tmp_path / "cache"), progress=False,
        train={"batch_size": 16, "progress": False},
    )  # fmt: skip
    train_structdiff(cfg)
    bundle = StructDiff.load(tmp_path / "run" / "model.safetensors")
    assert bundle.families == {"avp": ["avp/0", "avp/1", "avp/2"]}
    assert bundle.types == ["afp", "amp", "avp/0", "avp/1", "avp/2"]
    assert bundle.net.denoiser.cfg.num_types == 5
    assert sum(sum(bundle.lengths[f].values()) for f in bundle.families["avp"]) > 0
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["types"] == ["afp", "amp", "avp"]  # evaluation stays by type
    assert len(sample_peptides(bundle, "avp", 5, steps=2, structure=False)) == 5
    # the same run directory with other families is another network: one line, nothing written
    other = cfg.model_copy(update={"model": cfg.model.model_copy(update={"families": {}})})
    with pytest.raises(ConfigError, match=r"families \{'avp': 3\} -> \{\}"):
        train_structdiff(other)
    assert yaml.safe_load((tmp_path / "run" / "split.json").read_text()) == split
