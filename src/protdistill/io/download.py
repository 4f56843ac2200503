"""Verified downloads: resume a ``<name>.part`` with HTTP Range, check the pinned checksum, then
rename it to ``<name>``; a mirror is tried when a source fails. A file under its final name is
always complete and verified (standard library only: urllib)."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from protdistill.datasets.registry import RemoteFile, Source
from protdistill.errors import ProtdistillError
from protdistill.progress import Log, Meter, no_log

CHUNK = 1 << 16
TIMEOUT_S = 60.0
_LFS_POINTER = b"version https://git-lfs"


class DownloadError(ProtdistillError):
    """A file could not be downloaded (offline, refused, HTTP error, cut off)."""


class ChecksumError(DownloadError):
    """Downloaded bytes differ from the pinned checksum."""


def checksums(path: str | Path) -> dict[str, str]:
    """``{"sha256": …, "git_blob_sha1": …}`` of a file, in one streamed pass."""
    path = Path(path)
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            sha256.update(block)
            blob.update(block)
    return {"sha256": sha256.hexdigest(), "git_blob_sha1": blob.hexdigest()}


def verify(path: str | Path, source: Source, name: str | None = None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` hashes to every checksum ``source`` pins."""
    path = Path(path)
    got = checksums(path)
    for kind in ("sha256", "git_blob_sha1"):
        expected = getattr(source, kind)
        if expected and got[kind] != expected:
            with path.open("rb") as fh:
                pointer = fh.read(len(_LFS_POINTER)) == _LFS_POINTER
            hint = " (the server sent a Git LFS pointer, not the data)" if pointer else ""
            raise ChecksumError(
                f"{kind} mismatch{hint}: expected {expected}, got {got[kind]} "
                f"({path.stat().st_size:,} bytes from {source.url})",
                path=name or path.name,
                fix="re-run the command to download it again; if it persists the source "
                "changed: report it (the partial file was deleted)",
            )


def download_file(
    remote: RemoteFile,
    dest: str | Path,
    *,
    log: Log = no_log,
    show: bool = False,
    timeout: float = TIMEOUT_S,
) -> Source:
    """Download ``remote`` to ``dest`` and return the source whose checksum it matched (a
    ``dest`` that exists and verifies is kept). Sources are tried in order; a cut-off download
    leaves ``dest.part`` for the next call to resume. Raises :class:`DownloadError` /
    :class:`ChecksumError` naming the file; ``dest`` never holds unverified bytes."""
    dest = Path(dest)
    if dest.exists():  # from an earlier, interrupted fetch: keep it if it still verifies
        for source in remote.sources:
            try:
                verify(dest, source, remote.file)
                return source
            except ChecksumError:
                continue
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    failures: list[DownloadError] = []
    for i, source in enumerate(remote.sources):
        if i:
            log(f"{remote.file}: {failures[-1].message}; trying mirror {source.url}")
        try:
            _fetch_verified(source, part, remote.file, log=log, show=show, timeout=timeout)
        except DownloadError as exc:
            failures.append(exc)
            continue
        os.replace(part, dest)  # verified: only now does it get its final name
        return source
    raise _combined(remote, failures)


def _fetch_verified(
    source: Source, part: Path, name: str, *, log: Log, show: bool, timeout: float
) -> None:
    """``part`` holds ``source``'s verified bytes; a resumed part that fails the checksum (it
    may hold another source's bytes) is downloaded once more from the start."""
    resumed = part.exists() and part.stat().st_size > 0
    _fetch(source, part, name, show=show, timeout=timeout, log=log)
    try:
        verify(part, source, name)
    except ChecksumError:
        part.unlink(missing_ok=True)
        if not resumed:
            raise
        log(f"{name}: the resumed part did not verify; downloading it again")
        _fetch(source, part, name, show=show, timeout=timeout, log=log)
        try:
            verify(part, source, name)
        except ChecksumError:
            part.unlink(missing_ok=True)
            raise


def _fetch(source: Source, part: Path, name: str, *, show: bool, timeout: float, log: Log) -> None:
    """Append the rest of ``source.url`` to ``part`` (from its current size, by HTTP Range)."""
    offset = part.stat().st_size if part.exists() else 0
    if source.bytes is not None and offset > source.bytes:
        part.unlink()  # longer than the file can be: not a prefix of it
        offset = 0
    if source.bytes is not None and offset == source.bytes:
        return  # complete already: only the checksum is left
    request = urllib.request.Request(source.url, headers={"User-Agent": "protdistill"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
        log(f"{name}: resuming at {offset:,} bytes")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing past the end: the part may be complete
            return
        raise _http_error(exc, source, name) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _offline(exc, source, name) from None
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the Range header: start again
        elif offset and not response.headers.get("Content-Range", "").startswith(
            f"bytes {offset}-"
        ):
            raise DownloadError(
                f"the server answered another byte range ({response.headers.get('Content-Range')})",
                path=name,
                fix=f"delete {part} and re-run",
            )
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else (source.bytes or 0)
        meter = Meter(total, name, "bytes", show=show)
        meter.advance(offset)
        try:
            _copy(response, part, offset, meter)
        except (OSError, http.client.HTTPException) as exc:  # cut off: keep the part to resume
            raise DownloadError(
                f"download cut off at {part.stat().st_size:,} bytes ({exc})",
                path=name,
                fix="re-run the same command: it resumes where it stopped",
            ) from None
        finally:
            meter.close()


def _copy(response, part: Path, offset: int, meter: Meter) -> None:  # noqa: ANN001 (urllib)
    part.parent.mkdir(parents=True, exist_ok=True)
    with part.open("r+b" if offset else "wb") as out:
        out.seek(offset)
        out.truncate()
        while block := response.read(CHUNK):
            out.write(block)
            meter.advance(len(block))
    expected = response.headers.get("Content-Length")
    if expected is not None and part.stat().st_size != offset + int(expected):
        raise OSError(f"got {part.stat().st_size - offset:,} of {int(expected):,} bytes")


def _http_error(exc: urllib.error.HTTPError, source: Source, name: str) -> DownloadError:
    return DownloadError(
        f"HTTP {exc.code} {exc.reason} from {source.url}",
        path=name,
        fix="the pinned URL may have moved: report it, or pass --registry with a mirror",
    )


def _offline(exc: BaseException, source: Source, name: str) -> DownloadError:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        what = "timed out"
    elif isinstance(reason, ConnectionRefusedError):
        what = "connection refused"
    elif isinstance(reason, socket.gaierror):
        what = "host not found"
    else:
        what = str(reason)
    host = source.url.split("/")[2] if "//" in source.url else source.url
    return DownloadError(
        f"cannot reach {host} ({what}): offline?",
        path=name,
        fix="check the network connection (or proxy) and re-run: finished files are kept",
    )


def _combined(remote: RemoteFile, failures: list[DownloadError]) -> DownloadError:
    """One error for a file every source failed: the checksum one wins, else the primary's."""
    if len(failures) == 1:
        return failures[0]
    first = next((f for f in failures if isinstance(f, ChecksumError)), failures[0])
    others = dict.fromkeys(f.message for f in failures if f is not first)
    said = "the same" if list(others) == [first.message] else "; ".join(others)
    return type(first)(f"{first.message} (mirror: {said})", path=remote.file, fix=first.fix)
