"""The shipped registry of pinned sources (consistent, and equal to ../shared's pins where they
are here), the checksums that verify downloads, and the label parsing of the converters."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from fetch_helpers import checksums_of, start_server, stop_server
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.datasets.registry import Source, default_registry_path, load_registry
from protdistill.errors import InputError
from protdistill.io.dataset_convert import label_from_filename, parse_label, read_fasta_raw
from protdistill.io.dataset_fetch import fetch_dataset
from protdistill.io.download import ChecksumError, checksums, verify

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def server():
    srv = start_server()
    yield srv
    stop_server(srv)


# --- checksums and label parsing ------------------------------------------------------------


def test_git_blob_sha1_matches_git_for_known_blobs(tmp_path) -> None:
    known = {
        b"": "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",  # `git hash-object` values
        b"hello\n": "ce013625030ba8dba906f756967f9e9ca394464a",
    }
    for data, blob in known.items():
        (tmp_path / "f").write_bytes(data)
        assert checksums(tmp_path / "f")["git_blob_sha1"] == blob


@settings(max_examples=50, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=3000),
    at=st.integers(0, 10**6),
    kind=st.sampled_from(["sha256", "git_blob_sha1"]),
)
def test_verify_accepts_the_bytes_and_rejects_any_changed_byte(
    tmp_path_factory, data, at, kind
) -> None:
    path = tmp_path_factory.mktemp("v") / "f"
    path.write_bytes(data)
    src = Source(url="http://x/f", **{kind: checksums_of(data)[kind]})
    verify(path, src)
    bad = bytearray(data)
    bad[at % len(data)] ^= 1
    path.write_bytes(bytes(bad))
    with pytest.raises(ChecksumError, match="expected"):
        verify(path, src)


@given(value=st.sampled_from(["1", "0", "1.0", "0.0", "1.00", " 1 "]))
def test_labels_one_and_zero_in_any_spelling(value) -> None:
    assert parse_label(value) == (1 if float(value) == 1 else 0)


@given(text=st.text(max_size=6))
def test_any_other_text_is_not_a_label(text) -> None:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value in (0.0, 1.0):
        assert parse_label(text) == value
    else:
        with pytest.raises(InputError, match="not 0 or 1"):
            parse_label(text)


@given(
    split=st.integers(0, 9),
    kind=st.sampled_from(["pos", "neg"]),
    ext=st.sampled_from([".txt", ".tsv", ""]),
)
def test_bernett_label_comes_from_the_file_name(split, kind, ext) -> None:
    assert label_from_filename(f"Intra{split}_{kind}_rr{ext}") == (kind == "pos")
    with pytest.raises(InputError):
        label_from_filename(f"Intra{split}_rr{ext}")


@given(
    seqs=st.dictionaries(
        st.from_regex(r"[A-Z][0-9A-Z]{5}", fullmatch=True),
        st.text("ACDEFGHIKLMNPQRSTVWY", min_size=1, max_size=150),
        max_size=8,
    ),
    width=st.integers(1, 80),
    uniprot=st.booleans(),
)
def test_source_fasta_reader_unwraps_and_takes_the_accession(
    tmp_path_factory, seqs, width, uniprot
) -> None:
    path = tmp_path_factory.mktemp("f") / "x.fasta"
    text = ""
    for name, seq in seqs.items():
        head = f"sp|{name}|{name}_HUMAN" if uniprot else name
        lines = [seq[i : i + width] for i in range(0, len(seq), width)]
        text += f">{head} some description\n" + "\n".join(lines) + "\n"
    path.write_text(text)
    assert read_fasta_raw(path) == seqs


# --- the shipped registry -------------------------------------------------------------------


def test_shipped_registry_is_internally_consistent() -> None:
    registry = load_registry()
    assert set(registry) == {"bernett", "dscript", "guo-yeast"}
    for ds in registry.values():
        names = [f.file for f in ds.files]
        assert len(names) == len(set(names)) and ds.cite and ds.licence
        for remote in ds.files:
            for src in remote.sources:
                assert src.url.startswith("https://") and src.sha256 or src.git_blob_sha1
                assert re.fullmatch(r"[0-9a-f]{40}", src.commit) and src.commit in src.url
                if src.storage == "git-lfs":  # a blob SHA-1 of an LFS file is the pointer's
                    assert src.git_blob_sha1 is None and src.sha256
    bernett = {f.file for f in registry["bernett"].files}
    assert {f"Intra{i}_{k}_rr.txt" for i in "012" for k in ("pos", "neg")} < bernett
    dscript = {f.file for f in registry["dscript"].files}
    assert {f"{s}_test.tsv" for s in ("mouse", "fly", "worm", "yeast", "ecoli")} < dscript
    fasta = registry["bernett"].file("human_swissprot_oneliner.fasta")
    assert fasta.sources[0].repo == "Wang-lab-UCSD/TUnA"  # the copy that has Q96PU5


@pytest.mark.skipif(not (SHARED / "fetch").exists(), reason="../shared/data/fetch is not here")
def test_shipped_registry_agrees_with_the_shared_pins() -> None:
    pins = json.loads((SHARED / "fetch" / "pins.json").read_text())
    by_url = {p["url"]: p for p in pins}
    used = set()
    for ds in load_registry().values():
        for remote in ds.files:
            for src in remote.sources:
                pin = by_url[src.url]
                assert (pin["file"], pin["repo"], pin["commit"], pin["path"]) == (
                    remote.file,
                    src.repo,
                    src.commit,
                    src.path,
                )
                assert (src.sha256, src.bytes) == (pin["sha256"], pin["bytes"])
                lfs = pin["storage"] == "git-lfs"
                assert src.git_blob_sha1 == (None if lfs else pin["git_blob_sha1"])
                used.add(src.url)
    unused = {p["file"] for p in pins if p["url"] not in used}
    assert unused == {"yeast_dedup.fasta", "ecoli_dedup.fasta"}  # optional wrapped variants


def _shared_sources() -> dict[str, bytes]:
    """The real source files, rebuilt byte for byte from ../shared's converted copies."""
    ppi = SHARED / "ppi"
    records = [
        r.split("\n", 1)
        for r in (ppi / "guo_yeast" / "sequences.fasta").read_text().lstrip(">").split("\n>")
    ]
    files = {
        "protein.actions.tsv": (ppi / "guo_yeast" / "pairs.tsv").read_bytes(),
        "protein.dictionary.tsv": "".join(f"{a}\t{b.strip()}\n" for a, b in records).encode(),
    }
    for split, intra in (("train", "1"), ("val", "0")):
        rows = [
            r.split("\t") for r in (ppi / "bernett" / f"{split}.tsv").read_text().splitlines()[1:]
        ]
        for kind, label in (("pos", "1"), ("neg", "0")):
            files[f"Intra{intra}_{kind}_rr.txt"] = "".join(
                f"{a} {b}\n" for a, b, lab in rows if lab == label
            ).encode()
    return files


@pytest.mark.skipif(not (SHARED / "ppi" / "bernett").exists(), reason="../shared/data is not here")
def test_real_files_rebuilt_from_shared_match_the_pinned_sha256(tmp_path) -> None:
    registry = load_registry()
    files = {
        **{f.file: f for f in registry["bernett"].files},
        **{f.file: f for f in registry["guo-yeast"].files},
    }
    for name, data in _shared_sources().items():
        assert hashlib.sha256(data).hexdigest() == files[name].sources[0].sha256, name


@pytest.mark.skipif(
    not (SHARED / "ppi" / "guo_yeast").exists(), reason="../shared/data is not here"
)
def test_fetching_the_real_guo_yeast_reproduces_the_shared_copy(tmp_path, server) -> None:
    """The shipped pins, served locally: the fetched folder equals ../shared's, byte for byte."""
    raw = json.loads(default_registry_path().read_text())
    entry = raw["datasets"]["guo-yeast"]
    real = _shared_sources()
    for remote in entry["files"]:
        for i, src in enumerate(remote["sources"]):
            src["url"] = f"{server.url}/{i}/{remote['file']}"
            server.files[f"/{i}/{remote['file']}"] = real[remote["file"]]
    (tmp_path / "reg.json").write_text(json.dumps({"datasets": {"guo-yeast": entry}}))
    fetch_dataset("guo-yeast", tmp_path / "g", registry=tmp_path / "reg.json")
    for name in ("pairs.tsv", "sequences.fasta"):
        assert (tmp_path / "g" / name).read_bytes() == (
            SHARED / "ppi" / "guo_yeast" / name
        ).read_bytes()
