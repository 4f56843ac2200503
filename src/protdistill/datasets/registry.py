"""The pinned download sources of public PPI benchmarks (``registry.json``: facts only).

Every file of a dataset lists one or more sources (the first is tried first, the rest are
mirrors); each source is a URL at a fixed git commit with a content checksum: a sha256, a git
blob SHA-1 (``sha1(b"blob %d\\0" % size + data)``) or both. ``protdistill data fetch`` reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from protdistill.errors import ConfigError

_HEX = {"sha256": 64, "git_blob_sha1": 40}


@dataclass(frozen=True)
class Source:
    """One place a file can be downloaded from, and what its bytes must hash to."""

    url: str
    sha256: str | None = None
    git_blob_sha1: str | None = None
    bytes: int | None = None
    repo: str = ""
    commit: str = ""
    path: str = ""
    licence: str = ""
    storage: str = "git"


@dataclass(frozen=True)
class RemoteFile:
    """A file of a dataset: its name, what it holds, and its sources (primary first)."""

    file: str
    role: str
    sources: tuple[Source, ...]

    @property
    def bytes(self) -> int | None:
        """The size, where a source knows it."""
        return next((s.bytes for s in self.sources if s.bytes is not None), None)


@dataclass(frozen=True)
class Dataset:
    """A downloadable benchmark."""

    name: str
    title: str
    what: str
    licence: str
    cite: tuple[str, ...]
    files: tuple[RemoteFile, ...]

    def file(self, name: str) -> RemoteFile:
        return next(f for f in self.files if f.file == name)


def _source(raw: dict, where: str) -> Source:
    src = Source(**{k: v for k, v in raw.items() if k in Source.__dataclass_fields__})
    if not src.url or not (src.sha256 or src.git_blob_sha1):
        raise ConfigError(
            "a source needs a url and a sha256 or git_blob_sha1",
            record=where,
            fix="pin every source with its content checksum",
        )
    for key, length in _HEX.items():
        value = getattr(src, key)
        if value is not None and (len(value) != length or value.strip("0123456789abcdef")):
            raise ConfigError(
                f"{key} {value!r} is not {length} lower-case hex digits",
                record=where,
                fix="copy the checksum exactly",
            )
    return src


def _dataset(name: str, raw: dict, path: Path | str) -> Dataset:
    files = []
    for entry in raw["files"]:
        where = f"{name}/{entry['file']}"
        sources = tuple(_source(s, where) for s in entry["sources"])
        if not sources:
            raise ConfigError("no sources", path=path, record=where, fix="add a url")
        files.append(RemoteFile(entry["file"], entry.get("role", ""), sources))
    if len({f.file for f in files}) != len(files):
        raise ConfigError("a file is listed twice", path=path, record=name, fix="list it once")
    return Dataset(
        name, raw["title"], raw["what"], raw["licence"], tuple(raw["cite"]), tuple(files)
    )


def default_registry_path() -> Path:
    """The registry shipped with the package."""
    return Path(str(resources.files(__package__))) / "registry.json"


def load_registry(path: str | Path | None = None) -> dict[str, Dataset]:
    """``{name: Dataset}`` from ``path`` (default: the shipped registry), validated."""
    path = Path(path) if path is not None else default_registry_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: _dataset(name, d, path) for name, d in raw["datasets"].items()}
    except FileNotFoundError:
        raise ConfigError("registry not found", path=path, fix="check the path") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"not a dataset registry ({type(exc).__name__}: {exc})",
            path=path,
            fix="use the format of protdistill/datasets/registry.json",
        ) from None


def get_dataset(name: str, registry: dict[str, Dataset] | None = None) -> Dataset:
    """The dataset called ``name``; an unknown name is a one-line error listing the choices."""
    registry = load_registry() if registry is None else registry
    if name not in registry:
        raise ConfigError(
            f"unknown dataset {name!r}",
            record="data fetch",
            fix=f"choose one of {', '.join(sorted(registry))} (see `protdistill data list`)",
        )
    return registry[name]
