"""What every CLI module shares: turning parsed options into config overrides, echoing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def overrides(options: dict[str, Any], *, drop: tuple[str, ...] = ("config",)) -> dict[str, Any]:
    """Config overrides from a command's parsed options: paths as strings, empty lists as unset
    (``None`` means "not given", so the config file or the default applies)."""
    out = {}
    for name, value in options.items():
        if name in drop:
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, list):
            value = [str(v) if isinstance(v, Path) else v for v in value] or None
        out[name] = value
    return out


def echo(message: str) -> None:
    """Progress messages of the library, in colour on stderr (stdout keeps the results)."""
    typer.secho(message, fg=typer.colors.CYAN, err=True)
