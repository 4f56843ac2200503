"""``protdistill data fetch``: download a pinned benchmark, verify it, convert it to the project's
layout and move the finished folder into place in one rename.

Work happens in a hidden sibling, ``.NAME.fetch/`` beside the target: verified downloads and
``.part`` files stay there across interrupted runs (the next run resumes), and the target appears
only complete. An existing non-empty target is never touched."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from protdistill.datasets.registry import Dataset, Source, get_dataset, load_registry
from protdistill.errors import InputError
from protdistill.io.dataset_convert import CONVERTERS
from protdistill.io.download import TIMEOUT_S, download_file
from protdistill.io.lock import run_lock
from protdistill.progress import Log, no_log


@dataclass
class FetchReport:
    """What a fetch produced: the folder, its files and anything the reader must know."""

    name: str
    folder: Path
    files: list[str] = field(default_factory=list)
    used: dict[str, Source] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def default_target(name: str) -> Path:
    """Where ``data fetch NAME`` writes without ``--to``: ``data/NAME``."""
    return Path("data") / name


def _refuse_existing(to: Path) -> None:
    if to.is_file() or (to.is_dir() and any(to.iterdir())):
        raise InputError(
            "target exists and is not empty; nothing was downloaded or changed",
            path=to,
            fix="choose another --to, or move or delete that folder first",
        )


def fetch_dataset(
    name: str,
    to: str | Path | None = None,
    *,
    registry: str | Path | None = None,
    log: Log = no_log,
    show: bool = False,
    timeout: float = TIMEOUT_S,
) -> FetchReport:
    """Download dataset ``name`` (from ``registry``, default the shipped one) into ``to``
    (default ``data/NAME``) in the project's layout, with a README naming its sources."""
    dataset = get_dataset(name, load_registry(registry))
    to = Path(to) if to is not None else default_target(name)
    _refuse_existing(to)
    staging = to.parent / f".{to.name}.fetch"
    report = FetchReport(name, to)
    parent_existed = to.parent.exists()
    try:
        _fetch_into(dataset, to, staging, report, log=log, show=show, timeout=timeout)
    finally:  # keep downloads for the next run to resume; drop folders holding none
        if staging.is_dir() and not any(p.is_file() for p in staging.rglob("*")):
            shutil.rmtree(staging, ignore_errors=True)
            if not parent_existed and not any(to.parent.iterdir()):
                to.parent.rmdir()
    shutil.rmtree(staging, ignore_errors=True)
    return report


def _fetch_into(
    dataset: Dataset,
    to: Path,
    staging: Path,
    report: FetchReport,
    *,
    log: Log,
    show: bool,
    timeout: float,
) -> None:
    with run_lock(staging):
        raw = staging / "downloads"
        for remote in dataset.files:
            log(f"{remote.file} ({_size(remote.bytes)})")
            report.used[remote.file] = download_file(
                remote, raw / remote.file, log=log, show=show, timeout=timeout
            )
        out = staging / "out"
        shutil.rmtree(out, ignore_errors=True)  # a conversion an earlier run did not finish
        _convert(dataset, raw, out, report)
        report.files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        report.files.append("README.md")
        (out / "README.md").write_text(readme(dataset, report), encoding="utf-8")
        _refuse_existing(to)  # again: another process may have filled it meanwhile
        if to.is_dir():
            to.rmdir()  # empty
        os.rename(out, to)


def _convert(dataset: Dataset, raw: Path, out: Path, report: FetchReport) -> None:
    convert = CONVERTERS.get(dataset.name)
    out.mkdir(parents=True)
    if convert is None:  # a custom registry's dataset: delivered as downloaded
        for remote in dataset.files:
            shutil.copyfile(raw / remote.file, out / remote.file)
        return
    report.notes += convert(raw, out)


def _size(n: int | None) -> str:
    return "size unknown" if n is None else f"{n / 1e6:,.1f} MB"


def readme(dataset: Dataset, report: FetchReport) -> str:
    """The README of a fetched folder: what it is, where each file came from, licence, cite."""
    used = [report.used.get(f.file, f.sources[0]) for f in dataset.files]
    licence = ", ".join(dict.fromkeys(s.licence for s in used if s.licence)) or "see below"
    lines = [
        f"# {dataset.title}",
        "",
        dataset.what,
        "",
        f"Fetched by `protdistill data fetch {dataset.name}`. Licence of the copies fetched: "
        f"{licence} (per file below; the dataset: {dataset.licence}).",
        "",
        "## Sources (each verified against its pinned checksum)",
        "",
        "| file | role | source (repository @ commit: path) | checksum | licence |",
        "|---|---|---|---|---|",
    ]
    for remote, src in zip(dataset.files, used, strict=True):
        where = f"[{src.repo} @ {src.commit}: {src.path}]({src.url})" if src.repo else src.url
        check = f"sha256 {src.sha256}" if src.sha256 else f"git blob {src.git_blob_sha1}"
        lines.append(f"| {remote.file} | {remote.role} | {where} | {check} | {src.licence} |")
    lines += ["", "## Files", ""] + [f"- `{f}`" for f in report.files]
    lines += ["", "## Cite", ""] + [f"- {c}" for c in dataset.cite]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"
