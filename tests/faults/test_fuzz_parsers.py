"""Fuzzed parsers: every input a user (or a damaged disk) can hand protdistill either parses or
is refused with the project's typed one-line error — never another exception, a hang or
unbounded memory. Inputs: random bytes, format-shaped text, and mutations of valid files
(flipped / inserted / deleted / duplicated bytes, cut short, gzip / bzip2 / xz wrapped).

Examples per run (recorded in docs/reliability.md): FASTA 60, pairs 60, contacts 40,
peptides 40, config YAML 60, resume files (safetensors parts + settings JSON) 40 = 300.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

import torch
from fuzz_helpers import parses_or_refuses, variants
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from protdistill.config import Config, resolve
from protdistill.io.contacts import read_complexes
from protdistill.io.fasta import read_fasta
from protdistill.io.pairs import read_pairs
from protdistill.io.peptides import read_peptides
from protdistill.io.readback import header_int, read_json, read_tensors


def fuzz(examples: int) -> settings:
    """A fixed number of examples, no deadline (the CI machine is slow and shared);
    PROTDISTILL_FUZZ_SCALE=N runs N times as many (a deeper search, by hand)."""
    return settings(
        max_examples=examples * int(os.environ.get("PROTDISTILL_FUZZ_SCALE", "1")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


FASTA = (
    b">sp|P12345|NAME_HUMAN some protein\nMKTAYIAKQR\nqisfvkshf*\n"
    b">P2 second\nACDEFGHIKLMNPQRSTVWYUOBZJX\n;comment\n>P3\nMKT\n"
)
PAIRS = b'protein_a\tprotein_b\tlabel\nP12345\tP2\t1\n"P2","P3",0\nP3 P12345 yes\n# note\n'
CONTACTS = b"a b i j min_dist\nP12345 P2 0 3 4.1\nP12345 P2 5 1 3.9\nP2 P3 2 2 5.0\n"
CHAIN_PAIRS = b"a b\nP12345 P2\nP2,P3\n"
COMPLEXES = b"a\tb\tpdb\tseq_ident\nP12345\tP2\t1abc\t0.3\nP2\tP3\t\t\n"
PEPTIDES_CSV = b"id,type,sequence\np1,amp,GLFDIVKKVV\np2,avp,KWKLFKKI\np3,amp,glfdivkkvv\n"
PEPTIDES_FASTA = b">p1 type=amp\nGLFDIVKKVV\n>p2|avp\nKWKLFKKI\n"
YAML = (
    b"lr: 0.001\nepochs: 3\nname: run\ntags: [a, b]\nkind: fast\n"
    b"inner: &i {depth: 2, width: 8}\nother: *i\nextra: {x: 1}\n"
)


def _write(folder: str, name: str, data: bytes) -> Path:
    path = Path(folder) / name
    path.write_bytes(data)
    return path


@fuzz(60)
@given(data=variants(FASTA))
def test_fasta(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "in.fasta", data)
        parses_or_refuses(lambda: read_fasta(path, max_length=100))


@fuzz(60)
@given(data=variants(PAIRS), with_fasta=st.booleans(), labels=st.booleans())
def test_pairs(data: bytes, with_fasta: bool, labels: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proteins = read_fasta(_write(tmp, "in.fasta", FASTA)) if with_fasta else None
        path = _write(tmp, "in.tsv", data)
        parses_or_refuses(lambda: read_pairs(path, proteins=proteins, require_labels=labels))


@fuzz(40)
@given(
    which=st.sampled_from(["contacts", "pairs", "complexes"]),
    data=st.sampled_from([CONTACTS, CHAIN_PAIRS, COMPLEXES]).flatmap(variants),
)
def test_contacts(which: str, data: bytes) -> None:
    files = {"contacts": CONTACTS, "pairs": CHAIN_PAIRS, "complexes": COMPLEXES, which: data}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {k: _write(tmp, f"{k}.tsv", v) for k, v in files.items()}
        fasta = _write(tmp, "chains.fasta", FASTA)
        parses_or_refuses(
            lambda: read_complexes(fasta, paths["pairs"], paths["contacts"], paths["complexes"])
        )


@fuzz(40)
@given(data=st.sampled_from([PEPTIDES_CSV, PEPTIDES_FASTA]).flatmap(variants))
def test_peptides(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "peptides.csv", data)
        parses_or_refuses(lambda: read_peptides(path, types=["amp", "avp"], max_length=30))


class _Inner(Config):
    depth: int = 1
    width: int = 4


class _Fuzzed(Config):
    lr: float = 0.01
    epochs: int = 1
    name: str = "x"
    tags: list[str] = []
    kind: Literal["fast", "slow"] = "fast"
    inner: _Inner = _Inner()
    other: _Inner = _Inner()
    extra: dict[str, int] = {}


_YAML_TEXT = st.text("&*<:-[]{}!|>'\"#%@`,? \n\tabcdeipxy0123456789.eE+~", max_size=200).map(
    str.encode
)


@fuzz(60)
@given(data=st.one_of(variants(YAML), _YAML_TEXT))
def test_config_yaml(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "config.yaml", data)
        parses_or_refuses(lambda: resolve(_Fuzzed, path))


def _resume_files() -> dict[str, bytes]:
    """A screen's resume state as it writes it: the top-K commit, a hits part, settings."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        top, hits = Path(tmp) / "topk.safetensors", Path(tmp) / "hits.safetensors"
        values, index = torch.rand(5, 3), torch.randint(-1, 5, (5, 3))
        save_file({"values": values, "index": index}, str(top), metadata={"rows_done": "2"})
        save_file({"pairs": torch.randint(0, 5, (4, 2)).int(), "prob": torch.rand(4)}, str(hits))
        settings_json = b'{"settings": {"fasta": "p.fa", "top_k": 3, "proteins": 5}}'
        return {"topk": top.read_bytes(), "hits": hits.read_bytes(), "settings": settings_json}


RESUME = _resume_files()
_FIX = "delete the .parts folder to start the screen over"
_EXPECT = {
    "topk": {"values": (torch.float32, 2), "index": (torch.int64, 2)},
    "hits": {"pairs": (torch.int32, 2), "prob": (torch.float32, 1)},
}


def _read_resume(which: str, path: Path) -> None:
    if which == "settings":
        read_json(path, fix=_FIX, keys=("settings",))
        return
    meta = ("rows_done",) if which == "topk" else ()
    _, header = read_tensors(path, fix=_FIX, expect=_EXPECT[which], metadata=meta)
    if meta:
        header_int(header, "rows_done", path, fix=_FIX)


@fuzz(40)
@given(
    case=st.sampled_from(sorted(RESUME)).flatmap(
        lambda w: st.tuples(st.just(w), variants(RESUME[w]))
    )
)
def test_resume_files(case: tuple[str, bytes]) -> None:
    which, data = case
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, which, data)
        parses_or_refuses(lambda: _read_resume(which, path))


def test_valid_files_parse() -> None:
    """The seeds of the mutations are themselves valid (else the fuzzing proves little)."""
    with tempfile.TemporaryDirectory() as tmp:
        fasta = read_fasta(_write(tmp, "in.fasta", FASTA))
        assert list(fasta) == ["P12345", "P2", "P3"] and fasta["P12345"].endswith("QISFVKSHF")
        pairs, _ = read_pairs(_write(tmp, "in.tsv", PAIRS), proteins=fasta)
        assert [(p.a, p.b, p.label) for p in pairs] == [
            ("P12345", "P2", 1.0), ("P2", "P3", 0.0), ("P3", "P12345", 1.0)
        ]  # fmt: skip
        complexes = read_complexes(
            _write(tmp, "c.fasta", FASTA), _write(tmp, "p.tsv", CHAIN_PAIRS),
            _write(tmp, "k.tsv", CONTACTS), _write(tmp, "x.tsv", COMPLEXES),
        )  # fmt: skip
        assert [c.contacts.tolist() for c in complexes] == [[[0, 3], [5, 1]], [[2, 2]]]
        peptides, report = read_peptides(_write(tmp, "p.csv", PEPTIDES_CSV))
        assert len(peptides) == 2 and report.duplicates_dropped == 1
        assert len(read_peptides(_write(tmp, "p.fa", PEPTIDES_FASTA))[0]) == 2
        cfg = resolve(_Fuzzed, _write(tmp, "c.yaml", YAML))
        assert cfg.other.width == 8 and cfg.tags == ["a", "b"]
        for which in RESUME:
            _read_resume(which, _write(tmp, which, RESUME[which]))
