"""`protdistill data list / fetch`: pinned, resumable, verified downloads converted to the project's
layout, tested against a local HTTP server on 127.0.0.1 serving small generated fixtures (never
the internet, never the real datasets)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from fetch_helpers import checksums_of, start_server, stop_server

from protdistill.cli.main import main
from protdistill.io.dataset_fetch import fetch_dataset
from protdistill.io.download import DownloadError
from protdistill.io.fasta import read_fasta
from protdistill.io.pairs import read_pairs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def server():
    srv = start_server()
    yield srv
    stop_server(srv)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- fixtures: tiny datasets in each source's own format -----------------------------------

SEQ = {
    f"P{i:05d}": "MKTAYIAKQRQISFVKSHFSRQ"[: 10 + i % 12] + "ACDEFGHIKL"[i % 10] for i in range(40)
}


def _bernett_files(drop: str | None = None) -> dict[str, bytes]:
    ids = sorted(SEQ)
    files = {}
    for split, lo in (("0", 0), ("1", 10), ("2", 20)):
        group = ids[lo : lo + 10]  # protein-disjoint splits, as the real ones
        pos = [(group[i], group[i + 1]) for i in range(0, 8, 2)]
        neg = [(group[i], group[i + 3]) for i in range(0, 6)]
        for kind, rows in (("pos", pos), ("neg", neg)):
            text = "".join(f"{a} {b}\n" for a, b in rows)
            files[f"Intra{split}_{kind}_rr.txt"] = text.encode()
    fasta = "".join(f">{k}\n{v}\n" for k, v in reversed(SEQ.items()) if k != drop)
    files["human_swissprot_oneliner.fasta"] = fasta.encode()
    return files


def _dscript_files() -> dict[str, bytes]:
    files = {}
    for s, species in enumerate(("human", "mouse", "fly", "worm", "yeast", "ecoli")):
        ids = [f"{9000 + s}.{k}" for k in sorted(SEQ)[s * 5 : s * 5 + 6]]
        one = "1" if species == "human" else "1.0"
        zero = "0" if species == "human" else "0.0"
        rows = [(ids[0], ids[1], one), (ids[2], ids[3], zero), (ids[4], ids[5], zero)]
        files[f"{species}_test.tsv"] = "".join(f"{a}\t{b}\t{c}\n" for a, b, c in rows).encode()
        files[f"{species}.fasta"] = "".join(
            f">{i} desc\n{SEQ[i.split('.')[1]][:6]}\n{SEQ[i.split('.')[1]][6:]}\n" for i in ids
        ).encode()  # wrapped FASTA with descriptions
    files["human_train.tsv"] = files["human_test.tsv"]
    return files


def _guo_files() -> dict[str, bytes]:
    ids = sorted(SEQ)[:8]
    actions = "".join(f"{ids[i]}\t{ids[i + 1]}\t{i % 2}\n" for i in range(7))
    dictionary = "".join(f"{i}\t{SEQ[i]}\n" for i in ids)
    return {"protein.actions.tsv": actions.encode(), "protein.dictionary.tsv": dictionary.encode()}


FIXTURES = {"bernett": _bernett_files, "dscript": _dscript_files, "guo-yeast": _guo_files}


def _source(url: str, data: bytes, kind: str = "sha256") -> dict:
    digest = checksums_of(data)
    return {
        "url": url,
        "repo": "owner/repo",
        "commit": COMMIT,
        "path": url.rsplit("/", 1)[1],
        "bytes": len(data),
        kind: digest[kind],
        "licence": "MIT",
    }


def _registry(
    tmp_path: Path,
    server,
    name: str,
    files: dict[str, bytes],
    *,
    mirror=None,
    primary_url=None,
    kind="sha256",
) -> Path:
    """Serve ``files`` under /NAME/ and write a registry pinning them (checksums computed here)."""
    entries = []
    for file, data in files.items():
        server.files[f"/{name}/{file}"] = data
        url = (primary_url or f"{server.url}/{name}/") + file
        sources = [_source(url, data, kind)]
        if mirror is not None:
            server.files[f"/mirror/{file}"] = data
            sources.append(_source(f"{mirror}/mirror/{file}", data, "git_blob_sha1"))
        entries.append({"file": file, "role": "fixture", "sources": sources})
    reg = {
        "format": 1,
        "datasets": {
            name: {
                "title": f"{name} fixture",
                "what": "tiny",
                "licence": "MIT",
                "cite": ["Someone 2024"],
                "files": entries,
            }
        },
    }
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(reg))
    return path


def _cli(monkeypatch, capfd, *args: str) -> tuple[int, list[str], str]:
    monkeypatch.setattr("sys.argv", ["protdistill", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    out = capfd.readouterr()
    return info.value.code, out.err.strip().splitlines(), out.out


def _one_line_error(code: int, err: list[str], *words: str) -> str:
    assert code == 2, err
    assert sum(line.startswith("error: ") for line in err) == 1, err
    assert not any("Traceback" in line for line in err), err
    line = next(line for line in err if line.startswith("error: "))
    for word in words:
        assert word in line, (word, line)
    return line


# --- end to end ------------------------------------------------------------------------------


def test_bernett_fetch_end_to_end_reads_back_with_the_project_readers(tmp_path, server) -> None:
    files = _bernett_files()
    reg = _registry(tmp_path, server, "bernett", files)
    report = fetch_dataset("bernett", tmp_path / "data" / "bernett", registry=reg)
    out = tmp_path / "data" / "bernett"
    assert sorted(report.files) == [
        "README.md",
        "sequences.fasta",
        "test.tsv",
        "train.tsv",
        "val.tsv",
    ]
    seqs = read_fasta(out / "sequences.fasta")
    for split, intra in (("train", "1"), ("val", "0"), ("test", "2")):
        lines = (out / f"{split}.tsv").read_text().splitlines()
        assert lines[0] == "protein_a\tprotein_b\tlabel"
        pos = files[f"Intra{intra}_pos_rr.txt"].decode().splitlines()
        neg = files[f"Intra{intra}_neg_rr.txt"].decode().splitlines()
        expected = [p.replace(" ", "\t") + "\t1" for p in pos]
        expected += [n.replace(" ", "\t") + "\t0" for n in neg]
        assert lines[1:] == expected  # label from the file name, positives first
        pairs, _ = read_pairs(out / f"{split}.tsv", proteins=seqs)
        assert len(pairs) == len(expected)
    used = {
        p
        for s in ("train", "val", "test")
        for line in (out / f"{s}.tsv").read_text().splitlines()[1:]
        for p in line.split("\t")[:2]
    }
    assert list(seqs) == sorted(used)  # only the proteins the pairs name, sorted
    assert all(seqs[k] == SEQ[k] for k in seqs)
    readme = (out / "README.md").read_text()
    assert COMMIT in readme and "Someone 2024" in readme and "MIT" in readme
    assert not (tmp_path / "data" / ".bernett.fetch").exists()  # staging cleaned up


def test_dscript_labels_1_and_1_0_become_1_per_species_folder(tmp_path, server) -> None:
    reg = _registry(tmp_path, server, "dscript", _dscript_files())
    fetch_dataset("dscript", tmp_path / "ds", registry=reg)
    for species in ("human", "mouse", "fly", "worm", "yeast", "ecoli"):
        rows = (tmp_path / "ds" / species / "test.tsv").read_text().splitlines()
        assert [r.split("\t")[2] for r in rows[1:]] == ["1", "0", "0"]
        seqs = read_fasta(tmp_path / "ds" / species / "sequences.fasta")
        assert len(seqs) == 6 and all("." in k for k in seqs)  # descriptions dropped, unwrapped
    assert (tmp_path / "ds" / "human" / "train.tsv").exists()
    assert not (tmp_path / "ds" / "mouse" / "train.tsv").exists()


def test_guo_yeast_pairs_keep_the_source_rows_without_header(tmp_path, server) -> None:
    files = _guo_files()
    reg = _registry(tmp_path, server, "guo-yeast", files)
    fetch_dataset("guo-yeast", tmp_path / "g", registry=reg)
    assert (tmp_path / "g" / "pairs.tsv").read_bytes() == files["protein.actions.tsv"]
    assert read_fasta(tmp_path / "g" / "sequences.fasta") == dict(sorted(SEQ.items())[:8])


def test_cli_fetch_prints_the_folder_and_its_files(tmp_path, server, monkeypatch, capfd) -> None:
    reg = _registry(tmp_path, server, "guo-yeast", _guo_files())
    code, err, out = _cli(
        monkeypatch, capfd, "data", "fetch", "guo-yeast", "--to", tmp_path / "g", "--registry", reg
    )
    assert code == 0, err
    assert "pairs.tsv, sequences.fasta" in out and str(tmp_path / "g") in out


def test_data_list_shows_every_shipped_dataset(monkeypatch, capfd) -> None:
    code, err, out = _cli(monkeypatch, capfd, "data", "list")
    assert code == 0, err
    for name in ("bernett", "dscript", "guo-yeast"):
        assert re.search(rf"│ {name} +│ +\d+ +│", out), out
    assert "GPL-3.0" in out and "Apache-2.0" in out


# --- resume, corruption, offline, mirrors ----------------------------------------------------


@pytest.mark.parametrize("ignore_range", [False, True])
def test_truncated_part_is_resumed_with_range(tmp_path, server, ignore_range) -> None:
    files = _guo_files()
    reg = _registry(tmp_path, server, "guo-yeast", files)
    server.ignore_range = ignore_range
    data = files["protein.dictionary.tsv"]
    part = tmp_path / ".g.fetch" / "downloads" / "protein.dictionary.tsv.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:100])  # an earlier run cut off after 100 bytes
    fetch_dataset("guo-yeast", tmp_path / "g", registry=reg)
    assert ("/guo-yeast/protein.dictionary.tsv", "bytes=100-") in server.requests
    sent = server.sent["/guo-yeast/protein.dictionary.tsv"]
    assert sent == (len(data) if ignore_range else len(data) - 100)
    assert read_fasta(tmp_path / "g" / "sequences.fasta") == dict(sorted(SEQ.items())[:8])


def test_cut_off_download_keeps_the_part_and_the_rerun_resumes(tmp_path, server) -> None:
    files = _guo_files()
    reg = _registry(tmp_path, server, "guo-yeast", files)
    path = "/guo-yeast/protein.dictionary.tsv"
    server.cut[path] = 50
    with pytest.raises(DownloadError, match="cut off at 50 bytes"):
        fetch_dataset("guo-yeast", tmp_path / "g", registry=reg)
    downloads = tmp_path / ".g.fetch" / "downloads"
    assert (downloads / "protein.dictionary.tsv.part").stat().st_size == 50
    assert not (downloads / "protein.dictionary.tsv").exists()  # never a half file by its name
    assert not (tmp_path / "g").exists()
    fetch_dataset("guo-yeast", tmp_path / "g", registry=reg)
    assert server.requests[-1] == (path, "bytes=50-")
    assert server.sent[path] == len(files["protein.dictionary.tsv"])  # every byte sent once
    assert server.sent["/guo-yeast/protein.actions.tsv"] == len(files["protein.actions.tsv"])


@pytest.mark.parametrize("kind", ["sha256", "git_blob_sha1"])
def test_corrupted_file_is_a_one_line_checksum_error_and_no_file(
    tmp_path, server, monkeypatch, capfd, kind
) -> None:
    files = _guo_files()
    reg = _registry(tmp_path, server, "guo-yeast", files, kind=kind)
    good = files["protein.actions.tsv"]
    server.files["/guo-yeast/protein.actions.tsv"] = good[:-2] + b"9\n"  # one label flipped
    expected = checksums_of(good)[kind]
    code, err, _ = _cli(
        monkeypatch,
        capfd,
        "--quiet",
        "data",
        "fetch",
        "guo-yeast",
        "--to",
        tmp_path / "g",
        "--registry",
        reg,
    )
    _one_line_error(
        code,
        err,
        "protein.actions.tsv",
        f"{kind} mismatch",
        expected,
        checksums_of(good[:-2] + b"9\n")[kind],
        "fix:",
    )
    assert not (tmp_path / "g").exists()
    left = [p.name for p in (tmp_path / ".g.fetch").rglob("*") if p.is_file()]
    assert not any(n.startswith("protein.actions") for n in left), left


def test_refused_connection_is_a_one_line_offline_error(
    tmp_path, server, monkeypatch, capfd
) -> None:
    port = _closed_port()
    reg = _registry(
        tmp_path, server, "guo-yeast", _guo_files(), primary_url=f"http://127.0.0.1:{port}/x/"
    )
    code, err, _ = _cli(
        monkeypatch,
        capfd,
        "--quiet",
        "data",
        "fetch",
        "guo-yeast",
        "--to",
        tmp_path / "g",
        "--registry",
        reg,
    )
    _one_line_error(code, err, "connection refused", "offline", "fix:")
    assert not (tmp_path / "g").exists() and not (tmp_path / ".g.fetch").exists()
    code, err, _ = _cli(
        monkeypatch,
        capfd,
        "--quiet",
        "data",
        "fetch",
        "guo-yeast",
        "--to",
        tmp_path / "new" / "g",
        "--registry",
        reg,
    )
    assert code == 2 and not (tmp_path / "new").exists()  # no empty folder left behind


def test_unknown_name_lists_the_choices(monkeypatch, capfd) -> None:
    code, err, _ = _cli(monkeypatch, capfd, "data", "fetch", "bernet")
    _one_line_error(code, err, "unknown dataset 'bernet'", "bernett", "dscript", "guo-yeast")


def test_existing_target_is_refused_and_untouched(tmp_path, server, monkeypatch, capfd) -> None:
    reg = _registry(tmp_path, server, "guo-yeast", _guo_files())
    target = tmp_path / "g"
    target.mkdir()
    (target / "mine.txt").write_text("keep me\n")
    code, err, _ = _cli(
        monkeypatch, capfd, "data", "fetch", "guo-yeast", "--to", target, "--registry", reg
    )
    _one_line_error(code, err, str(target), "not empty", "fix:")
    assert [p.name for p in target.iterdir()] == ["mine.txt"]
    assert (target / "mine.txt").read_text() == "keep me\n"
    assert server.requests == []  # refused before downloading anything


def test_mirror_is_used_when_the_primary_fails(tmp_path, server) -> None:
    files = _guo_files()
    port = _closed_port()
    reg = _registry(
        tmp_path,
        server,
        "guo-yeast",
        files,
        mirror=server.url,
        primary_url=f"http://127.0.0.1:{port}/x/",
    )
    report = fetch_dataset("guo-yeast", tmp_path / "g", registry=reg)
    assert (tmp_path / "g" / "pairs.tsv").read_bytes() == files["protein.actions.tsv"]
    assert all("/mirror/" in s.url for s in report.used.values())
    assert all(s.git_blob_sha1 and not s.sha256 for s in report.used.values())


def test_corrupt_primary_falls_back_to_a_good_mirror(tmp_path, server) -> None:
    files = _guo_files()
    reg = _registry(tmp_path, server, "guo-yeast", files, mirror=server.url)
    server.files["/guo-yeast/protein.dictionary.tsv"] = b"version https://git-lfs pointer\n"
    report = fetch_dataset("guo-yeast", tmp_path / "g", registry=reg)
    assert "/mirror/" in report.used["protein.dictionary.tsv"].url
    assert "/mirror/" not in report.used["protein.actions.tsv"].url
    assert "/mirror/" in (tmp_path / "g" / "README.md").read_text()


def test_fasta_without_a_protein_drops_its_pairs_and_says_so(
    tmp_path, server, monkeypatch, capfd
) -> None:
    missing = sorted(SEQ)[12]  # in the train split, like Q96PU5 in Bernett's FASTA
    reg = _registry(tmp_path, server, "bernett", _bernett_files(drop=missing))
    code, err, _ = _cli(
        monkeypatch,
        capfd,
        "--quiet",
        "data",
        "fetch",
        "bernett",
        "--to",
        tmp_path / "b",
        "--registry",
        reg,
    )
    assert code == 0, err
    note = next(line for line in err if line.startswith("note: "))
    assert "train.tsv" in note and missing in note and "dropped" in note
    assert missing not in (tmp_path / "b" / "train.tsv").read_text()
    assert missing in (tmp_path / "b" / "README.md").read_text()
