"""Teacher cache: round trip, identity checks, crash-safe resumable builds, corruption."""

from __future__ import annotations

import os
import string
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protdistill.errors import CacheError, InputError
from protdistill.teachers.cache import (
    STALE_TEMP_SECONDS,
    TeacherCache,
    build,
    read_header,
    sequence_key,
)

TID = "tiny-wabc-c123"
SETTINGS = {"layers": [-1], "long_policy": "window", "max_residues": 1022}
SEQS = [
    "".join(string.ascii_uppercase[(i * 7 + j * 3) % 20] for j in range(5 + i % 9))
    for i in range(23)
]


def fake_teacher(seqs: list[str]) -> list[dict[str, torch.Tensor]]:
    """Deterministic stand-in for a teacher: per-residue (L, 4) and pooled (4,)."""
    out = []
    for s in seqs:
        codes = torch.tensor([float(ord(c)) for c in s])
        per = torch.stack([codes, codes.cos(), codes.sqrt(), torch.arange(len(s)).float()], 1)
        out.append({"per_residue": per, "pooled": per.mean(0)})
    return out


def items() -> dict[str, str]:
    return {sequence_key(s): s for s in SEQS}


def snapshot(cache: TeacherCache) -> dict[tuple[str, str], torch.Tensor]:
    return {(k, f): cache.get(k, f) for f in cache.fields() for k in cache.keys(f)}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_sequence_key_is_order_sensitive_sha256() -> None:
    import hashlib

    assert sequence_key("MKT") == hashlib.sha256(b"MKT").hexdigest()
    assert sequence_key("MKT", "AC") != sequence_key("AC", "MKT")
    assert sequence_key("MKT", "AC") != sequence_key("MKTAC")
    with pytest.raises(InputError):
        sequence_key("MK\nT")


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path / "c", TID, SETTINGS)
    data = fake_teacher(SEQS[:3])
    keys = [sequence_key(s) for s in SEQS[:3]]
    cache.put_batch({k: d for k, d in zip(keys, data, strict=True)})
    assert len(cache) == 6 and cache.fields() == ["per_residue", "pooled"]
    reopened = TeacherCache(tmp_path / "c", TID, dict(SETTINGS), readonly=True)
    got = reopened.get_batch(keys[::-1], "per_residue")
    for g, d in zip(got, data[::-1], strict=True):
        assert torch.equal(g, d["per_residue"]) and g.dtype == torch.float32
    assert torch.equal(reopened.get(keys[1], "pooled"), data[1]["pooled"])
    assert reopened.missing([keys[0], "nope", "nope"], "pooled") == ["nope"]
    assert reopened.missing(keys, ["pooled", "contacts"]) == keys
    with pytest.raises(CacheError, match="no entry nope/pooled"):
        reopened.get("nope", "pooled")
    with pytest.raises(CacheError, match="read-only"):
        reopened.put_batch({"k": {"f": torch.ones(1)}})


def test_newest_shard_wins_and_lru_reads(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, TID, max_open=2)
    for i in range(5):
        cache.put_batch(
            {f"k{i}": {"x": torch.full((2,), float(i))}, "same": {"x": torch.tensor([i])}}
        )
    assert cache.get("same", "x").tolist() == [4]
    got = cache.get_batch([f"k{i}" for i in (4, 0, 3, 1, 2, 0)], "x")
    assert [int(t[0]) for t in got] == [4, 0, 3, 1, 2, 0]
    assert len(cache._handles) <= 2


@pytest.mark.parametrize(
    ("teacher_id", "settings", "match"),
    [
        ("other-teacher", SETTINGS, "made by teacher 'tiny-wabc-c123', not 'other-teacher'"),
        (TID, {**SETTINGS, "layers": [3]}, "made with settings"),
    ],
)
def test_mismatched_identity_is_cache_error(tmp_path, teacher_id, settings, match) -> None:
    TeacherCache(tmp_path, TID, SETTINGS).put_batch({"a": {"f": torch.zeros(2)}})
    with pytest.raises(CacheError, match=match) as info:
        TeacherCache(tmp_path, teacher_id, settings)
    assert info.value.path == str(tmp_path / "manifest.json")
    assert "another --cache directory or delete" in str(info.value)


def test_build_matches_direct_computation(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, TID, SETTINGS)
    assert build(cache, items(), fake_teacher, ["per_residue", "pooled"], batch_size=5) == 23
    assert len(list(tmp_path.glob("shard-*.safetensors"))) == 5
    for key, expected in zip(items(), fake_teacher(SEQS), strict=True):
        assert torch.equal(cache.get(key, "pooled"), expected["pooled"])
    assert build(cache, items(), fake_teacher, ["per_residue", "pooled"], batch_size=5) == 0
    assert cache.verify() == []


class Killed(RuntimeError):
    pass


def test_killed_build_resumes_to_identical_content(tmp_path: Path) -> None:
    fields = ["per_residue", "pooled"]
    reference = TeacherCache(tmp_path / "ref", TID, SETTINGS)
    build(reference, items(), fake_teacher, fields, batch_size=4)

    calls = 0

    def dies_after_two(batch):
        nonlocal calls
        calls += 1
        if calls > 2:
            raise Killed("simulated kill")
        return fake_teacher(batch)

    root = tmp_path / "run"
    with pytest.raises(Killed):
        build(TeacherCache(root, TID, SETTINGS), items(), dies_after_two, fields, batch_size=4)
    # a kill mid-write leaves a stray temporary file behind (an old one: removed on opening);
    # a fresh one may be another live writer's shard in progress and is left alone
    stray, live = root / ".shard-000002.safetensors.x1y2.tmp", root / ".shard-9.safetensors.a.tmp"
    stray.write_bytes(b"half a shard")
    live.write_bytes(b"being written")
    old = time.time() - 2 * STALE_TEMP_SECONDS
    os.utime(stray, (old, old))
    resumed = TeacherCache(root, TID, SETTINGS)
    assert list(root.glob(".*.tmp")) == [live]
    live.unlink()
    assert len(resumed.missing(items(), fields)) == 23 - 8
    computed = []
    build(resumed, items(), lambda b: computed.extend(b) or fake_teacher(b), fields, batch_size=4)
    assert len(computed) == 15  # only the missing ones
    assert_same(snapshot(resumed), snapshot(reference))
    assert_same(snapshot(TeacherCache(root, TID, SETTINGS, readonly=True)), snapshot(reference))


def test_truncated_shard_is_named_then_repaired(tmp_path: Path) -> None:
    fields = ["per_residue", "pooled"]
    reference = TeacherCache(tmp_path / "ref", TID, SETTINGS)
    build(reference, items(), fake_teacher, fields, batch_size=6)
    root = tmp_path / "run"
    build(TeacherCache(root, TID, SETTINGS), items(), fake_teacher, fields, batch_size=6)
    shard = root / "shard-000001.safetensors"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(CacheError, match="truncated") as info:
        TeacherCache(root, TID, SETTINGS)
    assert info.value.path == str(shard) and "delete this shard" in str(info.value)
    repaired = TeacherCache(root, TID, SETTINGS, repair=True)
    assert (root / "shard-000001.safetensors.corrupt").exists()
    assert len(repaired.missing(items(), fields)) == 6
    assert build(repaired, items(), fake_teacher, fields, batch_size=6) == 6
    assert_same(snapshot(repaired), snapshot(reference))


@pytest.mark.parametrize("damage", ["garbage", "empty", "bad_header"])
def test_corrupt_shard_is_cache_error(tmp_path: Path, damage: str) -> None:
    cache = TeacherCache(tmp_path, TID)
    shard = cache.put_batch({"a": {"f": torch.arange(10.0)}})
    raw = shard.read_bytes()
    shard.write_bytes(
        {"garbage": b"\xff" * 50, "empty": b"", "bad_header": raw[:8] + b"{nope" + raw[13:]}[damage]
    )
    with pytest.raises(CacheError) as info:
        TeacherCache(tmp_path, TID)
    assert info.value.path == str(shard)


def test_flipped_data_bytes_found_by_verify(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, TID)
    shard = cache.put_batch({"a": {"f": torch.arange(10.0)}})
    raw = bytearray(shard.read_bytes())
    raw[-3] ^= 0xFF
    shard.write_bytes(bytes(raw))
    assert TeacherCache(tmp_path, TID).verify() == [shard]


def test_shard_from_other_teacher_rejected(tmp_path: Path) -> None:
    TeacherCache(tmp_path / "a", "teacher-a").put_batch({"k": {"f": torch.ones(1)}})
    TeacherCache(tmp_path / "b", "teacher-b")
    (tmp_path / "a" / "shard-000000.safetensors").rename(
        tmp_path / "b" / "shard-000000.safetensors"
    )
    with pytest.raises(CacheError, match="written by teacher 'teacher-a'"):
        TeacherCache(tmp_path / "b", "teacher-b")


def test_compact_keeps_content(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, TID, SETTINGS)
    build(cache, items(), fake_teacher, ["per_residue", "pooled"], batch_size=3)
    before = snapshot(cache)
    assert cache.compact(max_shard_bytes=1 << 20) == 7
    assert len(list(tmp_path.glob("shard-*.safetensors"))) == 1
    assert_same(snapshot(TeacherCache(tmp_path, TID, SETTINGS)), before)


def test_build_checks_compute_fn(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, TID)
    with pytest.raises(CacheError, match="no \\['pooled'\\]"):
        build(cache, items(), lambda b: [{"per_residue": torch.ones(1)} for _ in b], "pooled")
    with pytest.raises(CacheError, match="returned 1 results"):
        build(cache, items(), lambda b: [{"pooled": torch.ones(1)}], "pooled", batch_size=4)


def test_invalid_names_rejected(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, TID)
    for key, field in [("a/b", "f"), ("", "f"), ("k", "")]:
        with pytest.raises(InputError):
            cache.put_batch({key: {field: torch.ones(1)}})
    with pytest.raises(CacheError, match="no teacher cache"):
        TeacherCache(tmp_path / "absent", TID, readonly=True)


names = st.text(min_size=1, max_size=20)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    entries=st.dictionaries(
        names.filter(lambda k: "/" not in k),
        st.dictionaries(names, st.integers(0, 5), min_size=1, max_size=3),
        min_size=1,
        max_size=5,
    )
)
def test_any_key_and_field_round_trips(tmp_path_factory, entries) -> None:
    root = tmp_path_factory.mktemp("hyp")
    cache = TeacherCache(root, TID)
    tensors = {
        k: {f: torch.arange(n, dtype=torch.float16) + len(k) for f, n in fs.items()}
        for k, fs in entries.items()
    }
    cache.put_batch(tensors)
    again = TeacherCache(root, TID, readonly=True)
    names_in_shard, _ = read_header(next(root.glob("shard-*.safetensors")))
    assert len(names_in_shard) == sum(len(fs) for fs in entries.values())
    for key, fields in tensors.items():
        for field, tensor in fields.items():
            got = again.get(key, field)
            assert got.dtype == torch.float16 and torch.equal(got, tensor)


def test_two_writers_never_overwrite_each_other(tmp_path: Path) -> None:
    """Two runs sharing one cache directory (both opened before either writes) keep every entry."""
    first = TeacherCache(tmp_path / "c", TID, SETTINGS)
    second = TeacherCache(tmp_path / "c", TID, SETTINGS)
    data = fake_teacher(SEQS[:4])
    keys = [sequence_key(s) for s in SEQS[:4]]
    path_a = first.put_batch({keys[0]: data[0], keys[1]: data[1]})
    path_b = second.put_batch({keys[2]: data[2], keys[3]: data[3]})  # same next number as first
    assert path_a != path_b
    for cache, own in ((first, keys[:2]), (second, keys[2:])):
        assert [torch.equal(t, data[keys.index(k)]["pooled"]) for k, t in
                zip(own, cache.get_batch(own, "pooled"), strict=True)] == [True, True]  # fmt: skip
    merged = TeacherCache(tmp_path / "c", TID, SETTINGS, readonly=True)
    assert merged.missing(keys, "pooled") == []
    for k, t in zip(keys, merged.get_batch(keys, "pooled"), strict=True):
        assert torch.equal(t, data[keys.index(k)]["pooled"])


def test_a_corrupt_shard_is_set_aside_and_its_entries_recomputed(tmp_path):
    cache = TeacherCache(tmp_path, "teacher-x", {"layer": 6})
    shard = cache.put_batch({f"k{i}": {"pooled": torch.full((64,), float(i))} for i in range(4)})
    raw = bytearray(shard.read_bytes())
    raw[-200:-100] = bytes(b ^ 0x5A for b in raw[-200:-100])  # inside the tensor data
    shard.write_bytes(bytes(raw))
    reopened = TeacherCache(tmp_path, "teacher-x", {"layer": 6})
    with pytest.raises(CacheError, match="does not match its fingerprint"):
        reopened.get_batch(["k0", "k3"], "pooled")
    assert not shard.exists() and shard.with_name(shard.name + ".corrupt").exists()
    again = TeacherCache(tmp_path, "teacher-x", {"layer": 6})
    assert again.missing([f"k{i}" for i in range(4)], "pooled") == ["k0", "k1", "k2", "k3"]


_WRITER = """
import sys, torch
from protdistill.teachers.cache import TeacherCache
root, tid, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
cache = TeacherCache(root, tid, {"layers": [-1], "long_policy": "window", "max_residues": 1022})
for b in range(40):  # overlapping keys: both processes write k5..k44 at about the same time
    keys = [f"k{start + b + i}" for i in range(3)]
    cache.put_batch({k: {"pooled": torch.full((4,), float(k[1:]))} for k in keys})
"""


def test_two_processes_filling_one_cache_at_once_lose_and_corrupt_nothing(tmp_path) -> None:
    import subprocess
    import sys

    root = tmp_path / "c"
    TeacherCache(root, TID, SETTINGS)  # created once, as a run would before its ranks start
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(root), TID, str(start)])
             for start in (0, 5)]  # fmt: skip
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    merged = TeacherCache(root, TID, SETTINGS, readonly=True)
    keys = [f"k{i}" for i in range(5 + 40 + 2)]
    assert merged.missing(keys, "pooled") == []
    for k, t in zip(keys, merged.get_batch(keys, "pooled"), strict=True):
        assert torch.equal(t, torch.full((4,), float(k[1:])))
    assert not list(root.glob("*.corrupt")) and not list(root.glob("*.tmp"))
    assert merged.verify() == []  # every shard's content matches its fingerprint
