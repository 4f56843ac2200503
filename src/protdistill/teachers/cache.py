"""Content-addressed on-disk store of teacher outputs, crash-safe by construction.

Layout of a cache directory::

    manifest.json                 {"format", "version", "teacher_id", "settings"}
    shard-000000.safetensors      immutable; tensors named "<key>/<field>"
    shard-000001.safetensors      ...

Every file is written atomically (temporary file + rename, :mod:`protdistill.io.atomic`), and a
shard is never modified once written, so a killed build loses at most the batch in flight; the
next build computes only what :meth:`TeacherCache.missing` reports. The index (which shard holds
which entry) is rebuilt at open from the shard headers (a few KB each). When an entry occurs in
several shards, the newest shard wins. Several processes may write to one directory at once: a
shard name is claimed with an atomic link that fails when taken, so writers never overwrite each
other's shards (a reader opened earlier simply does not see the newer shards).

Keys: :func:`sequence_key` hashes one sequence, or an ordered pair (``key(a, b) != key(b, a)``;
sort the pair first when the quantity is symmetric). Any string without ``/`` is a valid key.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rich.progress import Progress
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor

from protdistill.errors import CacheError, InputError
from protdistill.io.atomic import remove_stale_temps, save_tensors, write_json
from protdistill.teachers.shards import fingerprint, read_header

FORMAT = "protdistill-teacher-cache"
VERSION = 1
MANIFEST = "manifest.json"
#: A temporary shard older than this (seconds) was left by a killed writer; a younger one may be
#: another live process's write in progress and is left alone.
STALE_TEMP_SECONDS = 3600
_SHARD_GLOB = "shard-*.safetensors"
P = TypeVar("P")


def sequence_key(*seqs: str) -> str:
    """sha256 hex of one sequence, or of an ordered tuple of sequences joined by newlines."""
    if not seqs:
        raise InputError("sequence_key needs at least one sequence", fix="pass sequences")
    if any("\n" in s for s in seqs):
        raise InputError("sequences must not contain newlines", fix="validate the FASTA first")
    return hashlib.sha256("\n".join(seqs).encode()).hexdigest()


def _check_name(key: str, field: str) -> None:
    if not isinstance(key, str) or not key or "/" in key:
        raise InputError(
            f"invalid cache key {key!r}", fix="use a non-empty string without '/' (sequence_key)"
        )
    if not isinstance(field, str) or not field:
        raise InputError(f"invalid cache field {field!r}", fix="use a non-empty field name")


def _normalise(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Settings as they read back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(dict(settings or {}), sort_keys=True, default=str))


class TeacherCache:
    """Sharded safetensors store of teacher outputs for one teacher identity and settings.

    ``get``/``get_batch`` return CPU tensors exactly as stored. Opening a directory made with a
    different ``teacher_id`` or ``settings`` raises :class:`CacheError`. ``repair=True`` moves
    corrupt shards aside (``*.corrupt``) instead of raising, so their entries count as missing.
    """

    def __init__(
        self,
        root: str | Path,
        teacher_id: str,
        settings: Mapping[str, Any] | None = None,
        *,
        readonly: bool = False,
        repair: bool = False,
        max_open: int = 32,
    ) -> None:
        self.root = Path(root)
        self.teacher_id = teacher_id
        self.settings = _normalise(settings)
        self.readonly = readonly
        self.max_open = max(1, max_open)
        self._index: dict[tuple[str, str], str] = {}
        self._handles: OrderedDict[str, Any] = OrderedDict()
        self._next = 0
        self._open_manifest()
        if not readonly:  # an hour: a younger one may be another process's write in progress
            remove_stale_temps(self.root, older_than=STALE_TEMP_SECONDS)
        self._scan(repair)

    # ------------------------------------------------------------------ opening
    def _open_manifest(self) -> None:
        path = self.root / MANIFEST
        wanted = {
            "format": FORMAT,
            "version": VERSION,
            "teacher_id": self.teacher_id,
            "settings": self.settings,
        }
        if not path.exists():
            if self.readonly:
                raise CacheError("no teacher cache here", path=path, fix="build the cache first")
            if any(self.root.glob(_SHARD_GLOB)):
                raise CacheError(
                    "shards without a manifest",
                    path=path,
                    fix="delete the directory or restore its manifest.json",
                )
            write_json(path, wanted)
            return
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CacheError(
                f"unreadable manifest ({exc})", path=path, fix="delete the cache directory"
            ) from exc
        self._compare(path, found, wanted)

    @staticmethod
    def _compare(path: Path, found: Any, wanted: dict[str, Any]) -> None:
        fix = "use another --cache directory or delete this one"
        if not isinstance(found, dict) or found.get("format") != FORMAT:
            raise CacheError("not a protdistill teacher cache", path=path, fix=fix)
        if found.get("version") != VERSION:
            raise CacheError(
                f"cache format version {found.get('version')}, this code reads {VERSION}",
                path=path,
                fix=fix,
            )
        if found.get("teacher_id") != wanted["teacher_id"]:
            raise CacheError(
                f"cache was made by teacher {found.get('teacher_id')!r}, "
                f"not {wanted['teacher_id']!r}",
                path=path,
                fix=fix,
            )
        if found.get("settings") != wanted["settings"]:
            raise CacheError(
                f"cache was made with settings {json.dumps(found.get('settings'), sort_keys=True)}"
                f", not {json.dumps(wanted['settings'], sort_keys=True)}",
                path=path,
                fix=fix,
            )

    def _scan(self, repair: bool) -> None:
        for path in sorted(self.root.glob(_SHARD_GLOB), key=_shard_number):
            self._next = max(self._next, _shard_number(path) + 1)
            try:
                names, meta = read_header(path)
                self._check_shard_meta(path, meta)
            except CacheError:
                if not repair or self.readonly:
                    raise
                path.rename(path.with_name(path.name + ".corrupt"))
                continue
            self._add(path.name, names)

    def refresh(self) -> int:
        """Index shards written since this cache was opened (by other processes or ranks);
        returns how many entries were added."""
        before = len(self._index)
        known = set(self._index.values())
        for path in sorted(self.root.glob(_SHARD_GLOB), key=_shard_number):
            self._next = max(self._next, _shard_number(path) + 1)
            if path.name not in known:
                names, meta = read_header(path)
                self._check_shard_meta(path, meta)
                self._add(path.name, names)
        return len(self._index) - before

    def _check_shard_meta(self, path: Path, meta: Mapping[str, str]) -> None:
        if meta.get("teacher_id") != self.teacher_id:
            raise CacheError(
                f"shard was written by teacher {meta.get('teacher_id')!r}, not {self.teacher_id!r}",
                path=path,
                fix="delete this shard (its entries are recomputed by the next build)",
            )

    def _add(self, shard: str, names: Iterable[str]) -> None:
        for name in names:
            key, _, field = name.partition("/")
            self._index[(key, field)] = shard

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, item: tuple[str, str]) -> bool:
        return item in self._index

    def keys(self, field: str | None = None) -> list[str]:
        """Keys stored (for ``field`` only when given), in no particular order."""
        return sorted({k for k, f in self._index if field is None or f == field})

    def fields(self) -> list[str]:
        return sorted({f for _, f in self._index})

    def missing(self, keys: Iterable[str], field: str | Sequence[str]) -> list[str]:
        """Keys (input order, de-duplicated) lacking ``field`` (or any of several fields)."""
        wanted = [field] if isinstance(field, str) else list(field)
        out, seen = [], set()
        for key in keys:
            if key in seen:
                continue
            seen.add(key)
            if any((key, f) not in self._index for f in wanted):
                out.append(key)
        return out

    def get(self, key: str, field: str) -> Tensor:
        """The stored tensor; :class:`CacheError` when absent."""
        return self.get_batch([key], field)[0]

    def get_batch(self, keys: Sequence[str], field: str) -> list[Tensor]:
        """Tensors for ``keys`` in order; reads grouped by shard through cached mmap handles."""
        by_shard: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            shard = self._index.get((key, field))
            if shard is None:
                raise CacheError(
                    f"no entry {key}/{field}",
                    path=self.root,
                    fix="build the cache for these inputs first (missing() lists them)",
                )
            by_shard.setdefault(shard, []).append(i)
        out: list[Tensor | None] = [None] * len(keys)
        for shard, positions in by_shard.items():
            handle = self._handle(shard)
            for i in positions:
                out[i] = handle.get_tensor(f"{keys[i]}/{field}")
        return out  # type: ignore[return-value]

    def _handle(self, shard: str) -> Any:
        if shard in self._handles:
            self._handles.move_to_end(shard)
            return self._handles[shard]
        path = self.root / shard
        try:
            handle = safe_open(str(path), framework="pt")
        except Exception as exc:  # safetensors raises its own error types
            raise CacheError(
                f"cannot open shard ({exc})",
                path=path,
                fix="delete this shard (its entries are recomputed by the next build)",
            ) from exc
        self._check_content(path, handle)
        self._handles[shard] = handle
        while len(self._handles) > self.max_open:
            self._handles.popitem(last=False)
        return handle

    def _check_content(self, path: Path, handle: Any) -> None:
        """Re-hash a shard the first time this process reads it; a corrupt shard is set aside
        (renamed ``.corrupt``, its entries forgotten) so the next build recomputes them."""
        stored = (handle.metadata() or {}).get("sha256")
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        if stored is None or fingerprint(tensors) == stored:
            return
        if not self.readonly:
            path.rename(path.with_name(path.name + ".corrupt"))
            self._index = {k: v for k, v in self._index.items() if v != path.name}
        raise CacheError(
            "shard content does not match its fingerprint (corrupt file); it was set aside",
            path=path,
            fix="re-run the same command: the entries it held are recomputed",
        )

    # ------------------------------------------------------------------ writes
    def put_batch(self, entries: Mapping[str, Mapping[str, Tensor]]) -> Path | None:
        """Write ``{key: {field: tensor}}`` as one new immutable shard (atomic); return its path."""
        if self.readonly:
            raise CacheError(
                "cache opened read-only", path=self.root, fix="open with readonly=False"
            )
        tensors: dict[str, Tensor] = {}
        for key, fields in entries.items():
            for field, tensor in fields.items():
                _check_name(key, field)
                if not isinstance(tensor, Tensor):
                    raise InputError(
                        f"entry {key}/{field} is {type(tensor).__name__}, not a tensor",
                        fix="return torch tensors from the compute function",
                    )
                tensors[f"{key}/{field}"] = tensor.detach().cpu().contiguous()
        if not tensors:
            return None
        meta = {"teacher_id": self.teacher_id, "sha256": fingerprint(tensors)}
        while True:
            path = self.root / f"shard-{self._next:06d}.safetensors"
            self._next += 1
            try:
                save_tensors(path, tensors, metadata=meta, exclusive=True)
                break
            except FileExistsError:  # another writer took this number
                continue
        self._add(path.name, tensors)
        return path

    def verify(self) -> list[Path]:
        """Re-hash every shard's content against its stored fingerprint; return the bad shards."""
        bad = []
        for shard in sorted(set(self._index.values())):
            path = self.root / shard
            _, meta = read_header(path)
            if fingerprint(load_file(str(path))) != meta.get("sha256"):
                bad.append(path)
        return bad

    def compact(self, max_shard_bytes: int = 1 << 30) -> int:
        """Merge shards into fewer files of at most ``max_shard_bytes``; returns shards removed.

        New shards are written before old ones are deleted, so a crash leaves duplicates (same
        content), never losses.
        """
        old = sorted(set(self._index.values()), key=lambda s: _shard_number(Path(s)))
        if len(old) <= 1:
            return 0
        items = sorted(self._index.items(), key=lambda kv: _shard_number(Path(kv[1])))
        batch: dict[str, dict[str, Tensor]] = {}
        size = 0
        for (key, field), shard in items:
            tensor = self._handle(shard).get_tensor(f"{key}/{field}")
            nbytes = tensor.numel() * tensor.element_size()
            if batch and size + nbytes > max_shard_bytes:
                self.put_batch(batch)
                batch, size = {}, 0
            batch.setdefault(key, {})[field] = tensor
            size += nbytes
        self.put_batch(batch)
        self._handles.clear()
        for shard in old:
            (self.root / shard).unlink(missing_ok=True)
        return len(old) - len(set(self._index.values()))


def _shard_number(path: Path) -> int:
    stem = path.name.split(".")[0]
    try:
        return int(stem.removeprefix("shard-"))
    except ValueError:
        return -1


def build(
    cache: TeacherCache,
    items: Mapping[str, P],
    compute_fn: Callable[[list[P]], Sequence[Mapping[str, Tensor]]],
    fields: str | Sequence[str],
    batch_size: int = 64,
    progress: bool = False,
) -> int:
    """Compute the missing ``fields`` of ``items`` ({key: payload}) in batches; one shard each.

    ``compute_fn(payloads)`` returns one ``{field: tensor}`` per payload, in order. Resumable: a
    re-run skips what earlier (possibly killed) runs stored. Returns the number of keys computed.
    """
    wanted = [fields] if isinstance(fields, str) else list(fields)
    todo = cache.missing(items, wanted)

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("teacher cache", total=len(todo))
        for start in range(0, len(todo), batch_size):
            keys = todo[start : start + batch_size]
            results = compute_fn([items[k] for k in keys])
            if len(results) != len(keys):
                raise CacheError(
                    f"compute_fn returned {len(results)} results for {len(keys)} inputs",
                    path=cache.root,
                    fix="return one {field: tensor} mapping per input, in order",
                )
            entries = {}
            for key, result in zip(keys, results, strict=True):
                absent = [f for f in wanted if f not in result]
                if absent:
                    raise CacheError(
                        f"compute_fn gave no {absent} for key {key}",
                        path=cache.root,
                        fix=f"return every field of {wanted}",
                    )
                entries[key] = {f: result[f] for f in wanted}
            cache.put_batch(entries)
            bar.advance(task, len(keys))
    return len(todo)
