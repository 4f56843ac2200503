"""The CLI reference page, walked from the typer app: every group and command with its usage,
help, arguments and options (the same help records `--help` prints), in the CLI's own order.

Used by tools/mkdocs_hooks.py at build time (so the page cannot drift from the code);
`python tools/cli_reference.py` prints it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import typer

# typer (>= 0.29) vendors click: commands and contexts are typed loosely and found by duck typing.


def _cell(text: str, code: bool = False) -> str:
    """One Markdown table cell: one line; outside a code span, pipes escaped and `<x>` as text."""
    text = " ".join(text.split())
    return text if code else _text(text.replace("|", "\\|"))


def _text(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _params_table(command: Any, ctx: typer.Context) -> list[str]:
    rows = []
    for param in command.params:
        record = param.get_help_record(ctx)
        if record is None or getattr(param, "hidden", False):
            continue
        kind = "argument" if param.param_type_name == "argument" else "option"
        rows.append(f"| `{_cell(record[0], code=True)}` | {kind} | {_cell(record[1])} |")
    if not rows:
        return []
    return ["| parameter | kind | help |", "|---|---|---|", *rows, ""]


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def _walk(command: Any, ctx: typer.Context) -> Iterator[tuple[Any, typer.Context]]:
    yield command, ctx
    if _is_group(command):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, sub.context_class(sub, info_name=name, parent=ctx))


def _section(command: Any, ctx: typer.Context) -> list[str]:
    path = ctx.command_path
    lines = [f"## `{path}`", ""]
    if command.help:
        lines += [_text(inspect.cleandoc(command.help)), ""]
    usage = command.get_usage(ctx).strip()
    lines += ["```text", usage.removeprefix("Usage: "), "```", ""]
    if _is_group(command):
        subs = [(n, command.get_command(ctx, n)) for n in command.list_commands(ctx)]
        lines += ["| command | what it does |", "|---|---|"]
        lines += [
            f"| [`{path} {n}`](#{_anchor(f'{path} {n}')}) | {_cell(c.get_short_help_str(200))} |"
            for n, c in subs
            if c is not None and not c.hidden
        ]
        lines.append("")
    return lines + _params_table(command, ctx)


def _anchor(path: str) -> str:
    """The heading id mkdocs' toc gives `## `path``: lower case, spaces to hyphens."""
    return path.lower().replace(" ", "-")


def render(app: typer.Typer, name: str = "protdistill") -> str:
    """Markdown for every command of ``app``, depth first in the order `--help` lists them."""
    root = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        f"Generated from the `{name}` command tree when the site is built; `{name} COMMAND "
        "--help` prints the same text. Options shared by every command go before the command "
        f"(`{name} --threads 1 ppi run …`).",
        "",
    ]
    for command, ctx in _walk(root, root.context_class(root, info_name=name)):
        lines += _section(command, ctx)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    from protdistill.cli.main import app

    print(render(app), end="")
