"""`protdistill data`: list and fetch pinned public PPI benchmarks (thin: parse, call, print)."""

from __future__ import annotations

from pathlib import Path

import typer

from protdistill.progress import verbosity

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

REGISTRY = typer.Option(
    None, "--registry", help="a registry JSON of your own (the shipped one's format), e.g. mirrors"
)


def _echo(msg: str) -> None:
    if verbosity() > 0:
        typer.echo(msg, err=True)


def _size(files) -> str:  # noqa: ANN001 (RemoteFile tuple)
    known = [f.bytes for f in files if f.bytes is not None]
    text = f"{sum(known) / 1e6:,.1f} MB"
    unknown = len(files) - len(known)
    return f">= {text} (+{unknown} unsized)" if unknown else text


@app.command("list")
def list_(registry: Path | None = REGISTRY) -> None:
    """The datasets `data fetch` can download: name, files, size, licence and what each is."""
    from rich.console import Console  # lazy: start-up time
    from rich.table import Table

    from protdistill.datasets.registry import load_registry

    table = Table(title="protdistill data fetch NAME [--to DIR]")
    for column in ("name", "files", "size", "licence", "what it is"):
        table.add_column(column, overflow="fold")
    for name, ds in load_registry(registry).items():
        table.add_row(name, str(len(ds.files)), _size(ds.files), ds.licence, ds.what)
    Console(width=140).print(table)


@app.command()
def fetch(
    name: str = typer.Argument(..., help="dataset name (see `protdistill data list`)"),
    to: Path | None = typer.Option(None, "--to", help="target folder (default: data/NAME)"),
    registry: Path | None = REGISTRY,
    timeout: float = typer.Option(60.0, help="seconds to wait for a server before giving up"),
) -> None:
    """Download NAME at its pinned commit, verify every file, convert it to pairs + FASTA.

    Resumable: re-run the same command after an interruption. Never overwrites a folder."""
    from protdistill.io.dataset_fetch import fetch_dataset  # lazy: start-up time

    report = fetch_dataset(
        name, to, registry=registry, log=_echo, show=verbosity() > 0, timeout=timeout
    )
    for note in report.notes:
        typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"{name} -> {report.folder}: {', '.join(report.files)}")
    typer.echo(f"licence and citation: {report.folder / 'README.md'}")
