"""What every CLI module shares: turning parsed options into config overrides, echoing."""

from __future__ import annotations

import functools
import inspect
import json
import types
import typing
from pathlib import Path
from typing import Any

import typer

from protdistill.progress import verbosity


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
    """Progress messages of the library, in colour on stderr (stdout keeps the results);
    ``protdistill --quiet`` silences them."""
    if verbosity() > 0:
        typer.secho(message, fg=typer.colors.CYAN, err=True)


def _option_type(annotation: Any) -> tuple[Any, bool]:
    """The type typer parses for a config field, and whether the value is given as JSON."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _option_type(next(a for a in args if a is not type(None)))
    if origin is typing.Literal:
        return str, False
    if origin is list and args and hasattr(args[0], "model_fields"):
        return str, True  # a list of sections (e.g. training stages)
    if origin is list:
        return list[args[0] if args else str], False
    if origin is dict or annotation is dict or hasattr(annotation, "model_fields"):
        return str, True  # a mapping or a nested section
    return annotation, False


def json_option(text: str | None, flag: str) -> Any:
    """A JSON-valued option: parsed, or a usage error naming the flag (``None``: not given)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON ({exc.msg})", param_hint=flag) from exc


def config_fields(cls: type, *, helps: dict[str, str] | None = None):  # noqa: ANN201 (decorator)
    """Give a command one option per field of the pydantic config ``cls`` (``--field-name``,
    booleans as ``--x/--no-x``, dicts as JSON, help from the field's description), so every
    config field is settable from the command line. The command receives them as its first
    argument, ``options``: the overrides that were given (``None`` = not given)."""
    helps = helps or {}
    fields, json_fields = [], set()
    for name, field in cls.model_fields.items():
        kind, as_json = _option_type(field.annotation)
        flag = "--" + name.replace("_", "-")
        decls = [f"{flag}/--no-{name.replace('_', '-')}"] if kind is bool else [flag]
        text = helps.get(name) or field.description or ""
        if as_json:
            json_fields.add(name)
            text += " (JSON)"
        shown = "built in" if field.default_factory else repr(field.default)
        default = typer.Option(None, *decls, help=f"{text} (default {shown})".lstrip())
        fields.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=kind))  # fmt: skip

    def decorate(fn):  # noqa: ANN001, ANN202
        own = [p for p in inspect.signature(fn).parameters.values() if p.name != "options"]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            given = {n: kwargs.pop(n) for n in cls.model_fields if n in kwargs}
            for name in json_fields & {n for n, v in given.items() if v is not None}:
                given[name] = json_option(given[name], "--" + name.replace("_", "-"))
            return fn(overrides(given), **kwargs)

        own_names = {p.name for p in own}
        params = own + [p for p in fields if p.name not in own_names]
        command.__signature__ = inspect.Signature(params)
        return command

    return decorate


def run_log(folder: Path, *, quiet: bool = False):  # noqa: ANN201 (a Log callback)
    """A ``Log`` that appends timestamped lines to ``folder/run.log`` (created on the first
    message, after the command has validated its inputs) and, unless ``quiet``, echoes them."""
    from datetime import datetime  # lazy: start-up time

    from protdistill.distill.parallel import current_ranks  # lazy: start-up time

    def log(message: str) -> None:
        if not current_ranks().is_main:  # DDP: rank 0 reports for everyone
            return
        if not quiet:
            echo(message)
        if folder.is_dir():
            stamp = datetime.now().isoformat(timespec="seconds")
            with open(folder / "run.log", "a", encoding="utf-8") as fh:
                fh.write(f"{stamp} {message}\n")

    return log
