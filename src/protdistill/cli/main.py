"""`protdistill` console entry point: one command group per task."""

from __future__ import annotations

import importlib
import sys

import typer

from protdistill import __version__
from protdistill.errors import ProtdistillError

app = typer.Typer(
    name="protdistill",
    help="Distil protein language models (ESM-2) into small, fast, interpretable students.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module in protdistill.cli, attribute, name, help): groups are typer apps, commands functions.
_GROUPS = [
    (
        "ppi",
        "app",
        "ppi",
        "Protein-protein interaction distillation: run, train, evaluate, explain.",
    ),
    ("peptide", "app", "peptide", "StructDiff peptide generation: train, sample, evaluate."),
    ("semcom", "app", "semcom", "Semantic communication (DeepSC-style) teacher models."),
]
_COMMANDS = [
    (
        "distill",
        "distill",
        "distill",
        "Distil a teacher into a smaller student (full/encoder/decoder).",
    ),
    (
        "semcom",
        "analyze",
        "analyze",
        "Transmitter/receiver knowledge-gap analysis across SNR and T.",
    ),
    (
        "compress",
        "compress",
        "compress",
        "Prune, quantize or low-rank factorise a trained student.",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"protdistill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """protdistill command line."""


def _register() -> None:
    for module, attr, name, help_ in _GROUPS:
        try:
            mod = importlib.import_module(f"protdistill.cli.{module}")
        except ModuleNotFoundError:
            continue
        if hasattr(mod, attr):
            app.add_typer(getattr(mod, attr), name=name, help=help_)
    for module, attr, name, help_ in _COMMANDS:
        try:
            mod = importlib.import_module(f"protdistill.cli.{module}")
        except ModuleNotFoundError:
            continue
        if hasattr(mod, attr):
            app.command(name=name, help=help_)(getattr(mod, attr))


_register()


def main() -> None:
    """Run the CLI; library errors become one red line and exit code 2, never a traceback."""
    try:
        app()
    except ProtdistillError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted: completed work is saved; re-run to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
