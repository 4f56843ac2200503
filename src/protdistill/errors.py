"""Typed errors. Every error names the file, the record and the fix; the CLI prints one line."""

from __future__ import annotations

from pathlib import Path


class ProtdistillError(Exception):
    """Base error: ``path: record: message (fix: ...)``."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        record: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.record = record
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.path, self.record) if p)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} (fix: {self.fix})" if self.fix else text


class InputError(ProtdistillError):
    """Malformed or invalid user data (FASTA, TSV, CSV, corpus)."""


class ConfigError(ProtdistillError):
    """Invalid configuration value or file."""


class CacheError(ProtdistillError):
    """Teacher cache is corrupt or was made by another teacher/settings."""


class CheckpointError(ProtdistillError):
    """Missing, corrupt or incompatible checkpoint."""


class ModelError(ProtdistillError):
    """Unsupported model, layer or architecture mismatch."""
