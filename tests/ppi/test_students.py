"""Pair students: shapes, symmetry, padding invariance, gradients, map binning."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.alphabet import encode_batch
from protdistill.students import build_student, count_parameters
from protdistill.students.outputs import PairHead
from protdistill.tasks.ppi.common.maps import bin_matrix, bin_student_map, pad_maps, pool_map

SEQ_A = ["MKVLAAGIWWKKRDEST" * 3, "ACDEFGHIK"]
SEQ_B = ["PPGGSTQNRK" * 2, "MNQWYYFFHHKLAS" * 4]


@pytest.fixture(params=["resnet1d", "interaction"])
def student(request):
    torch.manual_seed(0)
    return build_student({"kind": request.param}).eval()


def _forward(model, seqs_a, seqs_b, pad_to: int = 0):
    ta, ma = encode_batch(seqs_a)
    tb, mb = encode_batch(seqs_b)
    if pad_to:
        ta = torch.nn.functional.pad(ta, (0, pad_to))
        ma = torch.nn.functional.pad(ma, (0, pad_to))
    return model(ta, ma, tb, mb)


def test_symmetric_score(student) -> None:
    ab, ba = _forward(student, SEQ_A, SEQ_B), _forward(student, SEQ_B, SEQ_A)
    assert ab.logits.shape == (2, 2)
    torch.testing.assert_close(ab.logits, ba.logits, atol=1e-5, rtol=0)


def test_extra_padding_changes_nothing(student) -> None:
    torch.testing.assert_close(
        _forward(student, SEQ_A, SEQ_B).logits,
        _forward(student, SEQ_A, SEQ_B, pad_to=13).logits,
        atol=1e-5,
        rtol=0,
    )


def test_sizes_and_gradients(student) -> None:
    n = count_parameters(student)
    assert 100_000 < n < 1_000_000
    student.train()
    out = _forward(student, SEQ_A, SEQ_B)
    out.logits.sum().backward()
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), scale=st.floats(0.5, 1e3))
def test_pair_head_ignores_feature_scale(seed, scale) -> None:
    """Max-pooled products reach the hundreds on real data; the head must not see the scale
    (without the LayerNorm every hidden unit of the old ReLU head died: constant predictions)."""
    torch.manual_seed(seed)
    head = PairHead(24, 16, dropout=0.0).eval()
    features = torch.randn(5, 24) + 0.1
    torch.testing.assert_close(head(scale * features), head(features), atol=1e-4, rtol=1e-4)


def test_interaction_map_shape_mask_and_transpose() -> None:
    torch.manual_seed(0)
    model = build_student({"kind": "interaction"}).eval()
    ab, ba = _forward(model, SEQ_A, SEQ_B), _forward(model, SEQ_B, SEQ_A)
    la, lb = max(map(len, SEQ_A)), max(map(len, SEQ_B))
    assert ab.interaction_map.shape == (2, la, lb)
    torch.testing.assert_close(ab.interaction_map, ba.interaction_map.transpose(1, 2))
    assert (ab.interaction_map[1, len(SEQ_A[1]) :] <= -1e3).all()


def test_bin_matrix_averages_only_covered_residues() -> None:
    bins = bin_matrix([10, 3], padded=12, map_residues=8, bins=4)
    assert bins.shape == (2, 4, 12)
    torch.testing.assert_close(bins[0].sum(1), torch.ones(4))
    assert bins[0, :, 8:].abs().sum() == 0  # beyond map_residues
    assert bins[1, 3].abs().sum() == 0 and bins[1, :, 3:].abs().sum() == 0  # short protein


def test_pool_map_matches_student_binning() -> None:
    residue_map = torch.rand(10, 7)
    pooled = pool_map(residue_map, map_residues=8, bins=4)
    assert pooled.shape == (4, 4)
    torch.testing.assert_close(pooled[0, 0], residue_map[:2, :2].mean())
    batch = bin_student_map(residue_map[None], bin_matrix([10], 10, 8, 4), bin_matrix([7], 7, 8, 4))
    torch.testing.assert_close(batch[0], pooled)
    maps, ma, mb = pad_maps([pooled, pooled[:2, :3]], 4)
    assert maps.shape == (2, 4, 4) and ma[1].sum() == 2 and mb[1].sum() == 3


class _FixedMap(torch.nn.Module):
    """A 'student' whose interaction map is fixed: logit(probs) on every pair."""

    def __init__(self, probs: torch.Tensor) -> None:
        super().__init__()
        self.probs = probs

    def forward(self, tokens_a, mask_a, tokens_b, mask_b):
        from protdistill.students.outputs import PairOutput

        logits = torch.logit(self.probs).expand(len(tokens_a), -1, -1)
        return PairOutput(
            logits=torch.zeros(len(tokens_a), 2), features=logits, interaction_map=logits
        )


def test_map_agreement_scores_pattern_not_level() -> None:
    from protdistill.io.pairs import Pair
    from protdistill.tasks.ppi.common.data import PairDataset, collate_pairs
    from protdistill.tasks.ppi.common.maps import map_agreement

    torch.manual_seed(0)
    probs = torch.rand(6, 5) * 0.5 + 0.01
    seqs = {"A": "MKVLAA", "B": "PPGGS", "C": "MKV"}
    pairs = [Pair("A", "B", 1), Pair("C", "B", 0)]
    maps = [3 * probs.clone() / 2, torch.zeros(0, 0)]  # proportional teacher; pair 2 has no map
    items = [PairDataset(pairs, seqs, max_residues=8, teacher_maps=maps)[i] for i in range(2)]
    batch = collate_pairs(items, map_residues=8, map_bins=8)
    same = map_agreement(_FixedMap(probs), [batch])
    assert same["pairs"] == 1
    assert same["pearson_r"] == pytest.approx(1.0, abs=1e-5)
    assert same["spatial_kl"] == pytest.approx(0.0, abs=1e-6)
    assert same["spatial_kl_flat_map"] > 0.01
    flat = map_agreement(_FixedMap(torch.full((6, 5), 0.2)), [batch])
    assert flat["spatial_kl"] == pytest.approx(flat["spatial_kl_flat_map"], abs=1e-6)
    assert flat["pearson_r"] == pytest.approx(0.0, abs=1e-5)


def test_old_student_checkpoint_gives_a_clear_error(tmp_path) -> None:
    """A student saved before the LayerNorm head (keys ``classifier.*``) must not half-load."""
    from protdistill.distill.checkpoint import save_model
    from protdistill.errors import CheckpointError
    from protdistill.tasks.ppi.run.student import load_student

    model = build_student({"kind": "resnet1d"})
    state = {
        k.replace("head.classifier.", "classifier."): v
        for k, v in model.state_dict().items()
        if not k.startswith("head.norm.")
    }
    path = tmp_path / "student.safetensors"
    save_model(path, state, {"student": {"kind": "resnet1d"}})
    with pytest.raises(CheckpointError, match="retrain"):
        load_student(path)


def test_swapped_pairs_keep_their_teacher_embeddings() -> None:
    from protdistill.io.pairs import Pair
    from protdistill.tasks.ppi.common.data import PairDataset, collate_pairs

    seqs = {"A": "MKVLAA", "B": "PPGGSW"}
    emb = {"A": torch.zeros(4), "B": torch.ones(4)}
    ds = PairDataset([Pair("A", "B", 1)], seqs, max_residues=8, teacher_embeddings=emb, swap_rate=1)
    batch = collate_pairs([ds[0]])
    # swapped: B's tokens come first, and so does B's embedding
    from protdistill.alphabet import encode

    assert torch.equal(batch["tokens_a"][0], encode(seqs["B"]))
    assert torch.equal(batch["teacher_emb_a"][0], emb["B"])
    assert torch.equal(batch["teacher_emb_b"][0], emb["A"])


def test_feature_kd_term_trains_student_and_projector() -> None:
    from protdistill.distill.trainer import TrainConfig
    from protdistill.tasks.ppi.run.module import PpiModule

    torch.manual_seed(0)
    model = build_student({"kind": "resnet1d", "channels": [8, 8], "hidden": 8})
    module = PpiModule(model, TrainConfig(), alpha=0.0, temperature=1.0, feature_weight=2.0,
                       teacher_dim=5)  # fmt: skip
    ta, ma = encode_batch(SEQ_A)
    tb, mb = encode_batch(SEQ_B)
    batch = {
        "tokens_a": ta, "mask_a": ma, "tokens_b": tb, "mask_b": mb,
        "label": torch.tensor([1, 0]),
        "teacher_emb_a": torch.randn(2, 5), "teacher_emb_b": torch.randn(2, 5),
    }  # fmt: skip
    terms = module.step(batch, "train")
    torch.testing.assert_close(terms["loss"], terms["ce"] + 2.0 * terms["feature"])
    terms["loss"].backward()
    assert module.projector.proj.weight.grad.abs().sum() > 0
    assert model.encoder.stem.weight.grad.abs().sum() > 0


def test_ranking_kd_term_teaches_the_teachers_within_batch_order() -> None:
    from protdistill.distill.losses import ranking_kd
    from protdistill.distill.trainer import TrainConfig
    from protdistill.errors import ConfigError
    from protdistill.tasks.ppi.run.module import PpiModule

    torch.manual_seed(0)
    model = build_student({"kind": "resnet1d", "channels": [8, 8], "head": "factorised"}).eval()
    module = PpiModule(model, TrainConfig(), alpha=0.0, temperature=1.0, rank_weight=3.0,
                       teacher_scores=lambda r, c: 4 * r @ c.T)  # fmt: skip
    seqs_a, seqs_b = SEQ_A + SEQ_A[:1], SEQ_B + ["MKWWLLPP" * 4]
    emb = torch.randn(6, 5)
    emb[2] = emb[0]  # the first protein again: never ranked against itself
    (ta, ma), (tb, mb) = encode_batch(seqs_a), encode_batch(seqs_b)
    batch = {
        "tokens_a": ta,
        "mask_a": ma,
        "tokens_b": tb,
        "mask_b": mb,
        "label": torch.tensor([1, 0, 1]),
        "teacher_emb_a": emb[:3],
        "teacher_emb_b": emb[3:],
    }
    terms = module.step(batch, "train")
    torch.testing.assert_close(terms["loss"], terms["ce"] + 3.0 * terms["rank"])
    out = model(ta, ma, tb, mb)
    z = torch.cat([out.embedding_a, out.embedding_b])
    distinct = ~torch.eye(6, dtype=torch.bool)
    distinct[0, 2] = distinct[2, 0] = False
    want = ranking_kd(
        model.head.score(z, z), 4 * emb @ emb.T, distinct, centre_columns=True, standardise=True
    )
    torch.testing.assert_close(terms["rank"], want)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        opt.zero_grad()
        module.step(batch, "train")["rank"].backward()
        opt.step()
    assert module.step(batch, "train")["rank"] < 0.5 * terms["rank"]
    with pytest.raises(ConfigError, match="Siamese"):
        PpiModule(build_student({"kind": "interaction"}), TrainConfig(), alpha=0.0,
                  temperature=1.0, rank_weight=1.0, teacher_scores=torch.mul)  # fmt: skip


@pytest.mark.parametrize(("probs_scale", "expected"), [("flat", 1.0), ("teacher", 0.0)])
def test_spatial_map_term_is_relative_to_a_flat_map(probs_scale, expected) -> None:
    from protdistill.distill.trainer import TrainConfig
    from protdistill.io.pairs import Pair
    from protdistill.tasks.ppi.common.data import PairDataset, collate_pairs
    from protdistill.tasks.ppi.run.module import PpiModule

    torch.manual_seed(1)
    teacher = torch.rand(6, 5) * 0.5 + 0.01
    probs = torch.full((6, 5), 0.3) if probs_scale == "flat" else teacher / 2
    seqs = {"A": "MKVLAA", "B": "PPGGS"}
    ds = PairDataset([Pair("A", "B", 1)], seqs, max_residues=8, teacher_maps=[teacher])
    batch = collate_pairs([ds[0]], map_residues=8, map_bins=8)
    module = PpiModule(_FixedMap(probs), TrainConfig(), alpha=0.0, temperature=1.0, map_weight=3.0)
    terms = module.step(batch, "train")
    assert terms["map"].item() == pytest.approx(expected, abs=1e-5)
    torch.testing.assert_close(terms["loss"], terms["ce"] + 3.0 * terms["map"])


@pytest.mark.parametrize("kind", ["resnet1d", "interaction"])
def test_encoder_lr_scale_reaches_exactly_the_encoder_of_each_student(kind) -> None:
    from protdistill.tasks.ppi.common.config import PpiConfig
    from protdistill.tasks.ppi.run.student import student_config
    from protdistill.tasks.ppi.run.train import ENCODER_PREFIXES, train_config

    cfg = PpiConfig(student=kind, encoder_lr_scale=0.1)
    names = [f"student.{n}" for n, _ in build_student(student_config(cfg)).named_parameters()]
    scales = train_config(cfg).lr_scales
    assert set(scales) == set(ENCODER_PREFIXES[kind]) and set(scales.values()) == {0.1}
    encoder = [n for n in names if n.startswith(tuple(scales))]
    assert encoder and len(encoder) < len(names)  # the pair head keeps the full rate
    assert not any("head" in n for n in encoder)
    assert train_config(PpiConfig(student=kind)).lr_scales == {}


@settings(max_examples=25, deadline=None)
@given(
    pool=st.sampled_from(["max", "mean", "max+mean"]),
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    pad=st.integers(0, 12),
)
def test_every_pooling_ignores_padding_and_keeps_the_width(pool, lengths, pad) -> None:
    from protdistill.students.resnet1d import ResNet1DConfig, SiameseResNet1D

    torch.manual_seed(0)
    model = SiameseResNet1D(ResNet1DConfig(pool=pool, channels=[8, 8], embed_dim=8)).eval()
    letters = "ACDEFGHIKLMNPQRSTVWY"
    seqs = ["".join(letters[(i * 7 + j) % 20] for j in range(n)) for i, n in enumerate(lengths)]
    tokens, mask = encode_batch(seqs)
    padded = torch.nn.functional.pad(tokens, (0, pad))
    padded_mask = torch.nn.functional.pad(mask, (0, pad))
    padded[:, tokens.shape[1] :] = 3  # garbage under the mask must not matter
    with torch.no_grad():
        plain, more = model.embed(tokens, mask), model.embed(padded, padded_mask)
    assert plain.shape == (len(seqs), model.embedding_dim)
    torch.testing.assert_close(plain, more, rtol=1e-5, atol=1e-5)


def test_mean_pooling_is_the_mean_of_the_unmasked_positions() -> None:
    from protdistill.students.outputs import masked_pool

    x = torch.tensor([[[1.0, 3.0, 100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert masked_pool(x, mask, "mean").item() == 2.0
    assert masked_pool(x, mask, "max").item() == 3.0
    assert masked_pool(x, mask, "max+mean").item() == 5.0
