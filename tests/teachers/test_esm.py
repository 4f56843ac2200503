"""ESM-2 teacher on a tiny random model (fast) plus one integration test on the stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from transformers import EsmForMaskedLM, EsmModel, EsmTokenizer

from protdistill.errors import InputError, ModelError
from protdistill.teachers.esm import (
    EsmTeacher,
    crop_pair,
    stack_padded,
    window_starts,
)
from protdistill.testing import ESM_VOCAB, tiny_esm_config

torch.set_num_threads(2)
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
STANDIN = SHARED / "models" / "esm2_t6_8M_standin"
SEQS = ["MKTAYIAKQRQISFVK", "ACDEFGHIKLMNPQRSTVWY", "MQIF", "GGSWKLL"]
ATOL = 1e-5


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> EsmTokenizer:
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(ESM_VOCAB) + "\n")
    return EsmTokenizer(vocab_file=str(vocab))


@pytest.fixture(scope="module")
def model() -> EsmModel:
    torch.manual_seed(0)
    return EsmModel(tiny_esm_config(), add_pooling_layer=False).eval()


def make(model: EsmModel, tokenizer: EsmTokenizer, **kw) -> EsmTeacher:
    return EsmTeacher.from_model(model, tokenizer, name="tiny", **kw)


def manual_hidden(model: EsmModel, tokenizer: EsmTokenizer, seq: str) -> torch.Tensor:
    """Last hidden state of one unpadded sequence, residues only: (L, D)."""
    ids = torch.tensor([[0, *tokenizer.convert_tokens_to_ids(list(seq)), 2]])
    with torch.inference_mode():
        return model(ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0, 1:-1]


def test_model_is_frozen(model, tokenizer) -> None:
    teacher = make(model, tokenizer)
    assert not teacher.model.training
    assert not any(p.requires_grad for p in teacher.model.parameters())
    assert teacher.lm_head is None and teacher.hidden_size == 32 and teacher.num_layers == 2


def test_pooling_excludes_specials_and_padding(model, tokenizer) -> None:
    out = make(model, tokenizer).embed(SEQS)
    for seq, emb in zip(SEQS, out, strict=True):
        manual = manual_hidden(model, tokenizer, seq)
        assert emb.per_residue.shape == (len(seq), 32)
        torch.testing.assert_close(emb.per_residue, manual, atol=ATOL, rtol=1e-4)
        torch.testing.assert_close(emb.pooled, manual.mean(0), atol=ATOL, rtol=1e-4)
        assert emb.span == (0, len(seq))
        # including CLS/EOS would give a different mean
        ids = torch.tensor([[0, *tokenizer.convert_tokens_to_ids(list(seq)), 2]])
        with torch.inference_mode():
            full = model(ids).last_hidden_state[0].mean(0)
        assert (full - emb.pooled).abs().max() > 1e-3


@pytest.mark.parametrize("budget", [24, 64, 8192])
def test_results_independent_of_batch_composition(model, tokenizer, budget) -> None:
    teacher = make(model, tokenizer, tokens_per_batch=budget)
    alone = [make(model, tokenizer).embed([s])[0] for s in SEQS]
    mixed = teacher.embed(SEQS)
    reordered = teacher.embed(SEQS[::-1])[::-1]
    for a, b, c in zip(alone, mixed, reordered, strict=True):
        torch.testing.assert_close(a.per_residue, b.per_residue, atol=ATOL, rtol=0)
        torch.testing.assert_close(a.per_residue, c.per_residue, atol=ATOL, rtol=0)
    con_alone = [teacher.contacts([s])[0] for s in SEQS]
    for a, b in zip(con_alone, teacher.contacts(SEQS), strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    att_alone = [teacher.attentions([s])[0] for s in SEQS]
    for seq, a, b in zip(SEQS, att_alone, teacher.attentions(SEQS), strict=True):
        assert b.shape == (2, 4, len(seq), len(seq))
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


@pytest.mark.parametrize("sort", [True, False])
def test_batches_respect_token_budget(model, tokenizer, sort) -> None:
    teacher = make(model, tokenizer, tokens_per_batch=40, sort_by_length=sort)
    pieces, _ = teacher._pieces(SEQS * 3, None)
    seen = []
    for batch in teacher._batches(pieces):
        width = max(len(pieces[j].seq) for j in batch) + 2
        assert len(batch) == 1 or len(batch) * width <= 40
        seen += batch
    assert sorted(seen) == list(range(len(pieces)))
    assert (seen == list(range(len(pieces)))) is not sort
    out = teacher.embed(SEQS)
    assert [e.per_residue.shape[0] for e in out] == [len(s) for s in SEQS]


def test_layers_selection(model, tokenizer) -> None:
    teacher = make(model, tokenizer)
    emb = teacher.embed(SEQS[:2], layers=[0, -1])
    assert emb[0].per_residue.shape == (2, len(SEQS[0]), 32)
    assert emb[0].pooled.shape == (2, 32)
    assert emb[0].layers == (0, 2)
    last = teacher.embed(SEQS[:2])[0]
    torch.testing.assert_close(emb[0].per_residue[1], last.per_residue)
    assert not torch.allclose(emb[0].per_residue[0], last.per_residue)
    with pytest.raises(ModelError, match="layer 5"):
        teacher.embed(SEQS[:1], layers=5)


def test_invalid_residue_names_record(model, tokenizer) -> None:
    with pytest.raises(InputError, match=r"P42.*'\*' at position 3"):
        make(model, tokenizer).embed(["MK*A"], ids=["P42"])
    with pytest.raises(InputError, match="empty"):
        make(model, tokenizer).embed([""])


LONG = ("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEK" * 2)[:40]


def test_long_policy_error(model, tokenizer) -> None:
    teacher = make(model, tokenizer, max_residues=16, window_overlap=4, long_policy="error")
    with pytest.raises(InputError, match="long1.*40 residues exceed the model limit of 16"):
        teacher.embed([SEQS[2], LONG], ids=["short", "long1"])
    assert teacher.embed([SEQS[2]])[0].per_residue.shape == (4, 32)


def test_long_policy_crop_keeps_first_residues(model, tokenizer) -> None:
    teacher = make(model, tokenizer, max_residues=16, long_policy="crop", window_overlap=4)
    emb = teacher.embed([LONG])[0]
    assert emb.per_residue.shape == (16, 32) and emb.span == (0, 16)
    torch.testing.assert_close(emb.per_residue, manual_hidden(model, tokenizer, LONG[:16]))
    assert teacher.contacts([LONG])[0].shape == (16, 16)


def test_long_policy_window_averages_overlaps(model, tokenizer) -> None:
    teacher = make(model, tokenizer, max_residues=16, window_overlap=4, long_policy="window")
    assert window_starts(40, 16, 4) == [0, 12, 24]
    emb = teacher.embed([LONG])[0]
    assert emb.per_residue.shape == (40, 32) and emb.span == (0, 40)
    w = [manual_hidden(model, tokenizer, LONG[s : s + 16]) for s in (0, 12, 24)]
    torch.testing.assert_close(emb.per_residue[:12], w[0][:12], atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(
        emb.per_residue[12:16], (w[0][12:] + w[1][:4]) / 2, atol=ATOL, rtol=1e-4
    )
    torch.testing.assert_close(emb.per_residue[28:], w[2][4:], atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(emb.pooled, emb.per_residue.mean(0))
    con = teacher.contacts([LONG])[0]
    first = teacher.contacts([LONG[:16]])[0]
    assert con.shape == (40, 40)
    torch.testing.assert_close(con[:12, :12], first[:12, :12], atol=ATOL, rtol=0)
    assert con[0, 39] == 0 and con[39, 0] == 0  # never in one window


@given(length=st.integers(1, 3000), window=st.integers(2, 1022), data=st.data())
def test_window_starts_cover_everything(length: int, window: int, data) -> None:
    overlap = data.draw(st.integers(0, window - 1))
    starts = window_starts(length, window, overlap)
    covered = set()
    for s in starts:
        assert s >= 0 and (s + window <= length or (s == 0 and length <= window))
        covered.update(range(s, min(s + window, length)))
    assert covered == set(range(length))
    assert all(b - a <= window - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_pair_map_is_block_of_joined_contacts(model, tokenizer) -> None:
    teacher = make(model, tokenizer)
    a, b, linker = SEQS[0], SEQS[1], "G" * 5
    block = teacher.pair_map(a, b, linker=linker)
    full = teacher.contacts([a + linker + b])[0]
    assert block.shape == (len(a), len(b))
    torch.testing.assert_close(block, full[: len(a), len(a) + 5 :], atol=ATOL, rtol=0)
    batched = teacher.pair_maps([(a, b), (b, SEQS[2])], linker=linker)
    torch.testing.assert_close(batched[0].map, block, atol=ATOL, rtol=0)
    assert batched[1].map.shape == (len(b), len(SEQS[2]))
    assert batched[1].range_a == (0, len(b)) and batched[1].range_b == (0, len(SEQS[2]))


def test_pair_map_crops_when_too_long(model, tokenizer) -> None:
    teacher = make(model, tokenizer, max_residues=30, window_overlap=4, long_policy="crop")
    a, b = SEQS[1], SEQS[0]  # 20 + 5 + 16 > 30
    pm = teacher.pair_maps([(a, b)], linker="G" * 5)[0]
    assert pm.range_a == (0, 12) and pm.range_b == (0, 13)
    full = teacher.contacts([a[:12] + "G" * 5 + b[:13]])[0]
    torch.testing.assert_close(pm.map, full[:12, 17:], atol=ATOL, rtol=0)
    strict = make(model, tokenizer, max_residues=30, window_overlap=4, long_policy="error")
    with pytest.raises(InputError, match="exceeds the model limit of 30"):
        strict.pair_map(a, b, linker="G" * 5)


@given(la=st.integers(1, 3000), lb=st.integers(1, 3000), budget=st.integers(2, 1000))
def test_crop_pair_fits_budget(la: int, lb: int, budget: int) -> None:
    (a0, na), (b0, nb) = crop_pair(la, lb, budget)
    assert a0 == b0 == 0 and 1 <= na <= la and 1 <= nb <= lb
    assert na + nb <= budget or (la + lb <= budget)
    if la + lb <= budget:
        assert (na, nb) == (la, lb)
    elif min(la, lb) <= budget // 2:
        assert na + nb == budget and min(na, nb) == min(la, lb)


def test_identity_tracks_weights_and_files(model, tokenizer, tmp_path) -> None:
    first = make(model, tokenizer).identity
    assert first == make(model, tokenizer).identity and first.startswith("tiny-w")
    other = EsmModel(tiny_esm_config(), add_pooling_layer=False)
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.encoder.layer[0].attention.self.query.weight[0, 0] += 1e-3
    assert make(other, tokenizer).identity != first
    model.save_pretrained(tmp_path / "a")
    tokenizer.save_pretrained(tmp_path / "a")
    other.save_pretrained(tmp_path / "b")
    tokenizer.save_pretrained(tmp_path / "b")
    ta, tb = EsmTeacher(tmp_path / "a"), EsmTeacher(tmp_path / "b")
    assert ta.identity.startswith("a-w") and ta.identity[2:] != tb.identity[2:]
    assert ta.lm_head is None
    torch.testing.assert_close(
        ta.embed(SEQS[:1])[0].pooled, make(model, tokenizer).embed(SEQS[:1])[0].pooled
    )


def test_lm_head_detected(tokenizer, tmp_path) -> None:
    torch.manual_seed(1)
    EsmForMaskedLM(tiny_esm_config()).save_pretrained(tmp_path / "mlm")
    tokenizer.save_pretrained(tmp_path / "mlm")
    teacher = EsmTeacher(tmp_path / "mlm")
    assert teacher.lm_head is not None
    assert isinstance(teacher.model, EsmModel)
    assert teacher.embed(["MKT"])[0].per_residue.shape == (3, 32)


def test_missing_model_is_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="cannot load"):
        EsmTeacher(tmp_path / "nothing-here")


def test_stack_padded() -> None:
    x, mask = stack_padded([torch.ones(3, 2), torch.ones(1, 2)])
    assert x.shape == (2, 3, 2) and mask.tolist() == [[True] * 3, [True, False, False]]
    assert x[1, 1:].abs().sum() == 0


@pytest.mark.shared
@pytest.mark.skipif(not STANDIN.is_dir(), reason=f"stand-in teacher not found at {STANDIN}")
def test_standin_teacher_embeds() -> None:
    teacher = EsmTeacher(STANDIN)
    assert "fd58a302282394f4" in teacher.identity and teacher.lm_head is None
    seqs = [
        "MKTAYIAKQRQISFVKSHFSRQ",
        "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDG",
        "ACDEW",
    ]
    out = teacher.embed(seqs)
    assert [e.per_residue.shape for e in out] == [(len(s), 320) for s in seqs]
    assert all(e.pooled.shape == (320,) and torch.isfinite(e.pooled).all() for e in out)
    assert teacher.contacts(seqs[:1])[0].shape == (22, 22)


@pytest.mark.parametrize("precision", ["bf16", "16"])
def test_reduced_precision_is_close_named_and_float32_out(model, tokenizer, precision) -> None:
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPV" * 3]
    full = make(model, tokenizer)
    low = make(model, tokenizer, precision=precision)
    assert low.identity == f"{full.identity}-p{precision}"  # caches never mix precisions
    for a, b in zip(full.embed(seqs), low.embed(seqs), strict=True):
        assert b.per_residue.dtype == torch.float32
        cos = torch.nn.functional.cosine_similarity(a.per_residue, b.per_residue, dim=-1)
        assert cos.min() > 0.98 and not torch.equal(a.per_residue, b.per_residue)
    with pytest.raises(ModelError, match="unknown teacher precision"):
        make(model, tokenizer, precision="8")


def test_reduced_precision_gets_its_own_cache_directory(model, tokenizer, tmp_path) -> None:
    from protdistill.tasks.ppi.common.config import PpiConfig
    from protdistill.tasks.ppi.run.teacher import embed_proteins

    seqs = {"A": "MKTAYIAKQRQISFVKSHFSRQ", "B": "GSHMLEDPVGSHM"}
    for precision in ("32", "bf16"):
        cfg = PpiConfig(pairs="p", fasta="f", cache=str(tmp_path), teacher_precision=precision)
        teacher = make(model, tokenizer, precision=precision)
        embed_proteins(cfg, tmp_path / "run", seqs, teacher)
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("embed-")]) == 2
