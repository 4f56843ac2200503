"""`protdistill` console entry point: one command group per task."""

from __future__ import annotations

import errno
import importlib
import signal
import sys
import threading
import traceback

import typer

from protdistill import __version__
from protdistill.errors import ProtdistillError
from protdistill.progress import set_verbosity, verbosity

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
    ("data", "app", "data", "Public PPI benchmarks: list them, fetch one (pinned, verified)."),
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
    ("export", "export", "export", "Export a trained student to ONNX (fp32 or INT8)."),
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
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Library logs and warnings; a traceback with each error."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", help="No progress messages (results and errors still print)."
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        min=1,
        help="CPU threads for torch (default: all cores; use 1 per job "
        "when several jobs share a small machine).",
    ),
) -> None:
    """protdistill command line."""
    if verbose and quiet:
        raise typer.BadParameter("choose --verbose or --quiet, not both")
    set_verbosity(2 if verbose else 0 if quiet else 1)
    if not verbose:
        _hide_third_party_warnings()
    if threads:
        import torch  # lazy: start-up time (the command itself imports it anyway)

        torch.set_num_threads(threads)


def _hide_third_party_warnings() -> None:
    """Other packages' warnings (Lightning's `_pytree ... LeafSpec` deprecation in every run)
    are noise to a user: shown only with ``--verbose``. protdistill's own warnings still show."""
    import warnings  # lazy: only when the CLI starts

    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"protdistill(\.|$)")


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


#: Exit code of an interrupted command (128 + SIGINT), as typer returns it.
INTERRUPTED = 130
#: Exit code of a command stopped by SIGTERM (128 + 15): a scheduler's or `kill`'s request.
TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so it stops like a Ctrl-C: files are written
    atomically, so what finished is kept and a re-run resumes."""


_sigterm: list[bool] = [False]  # set by the handler: typer turns every interrupt into 130


def _on_sigterm(signum: int, frame: object) -> None:
    _sigterm[0] = True
    raise Terminated


#: What to do about the OS errors a command can meet while writing or reading its files.
_OS_FIXES = {
    errno.ENOSPC: "free disk space or write elsewhere, then re-run the same command (finished "
    "work is kept)",
    errno.EDQUOT: "free space in your quota, then re-run the same command (finished work is kept)",
    errno.EACCES: "make it writable or choose another location, then re-run the same command",
    errno.EPERM: "make it writable or choose another location, then re-run the same command",
    errno.EROFS: "choose a location on a writable file system, then re-run the same command",
}


def os_error_line(exc: OSError) -> str:
    """``path: what the system said (fix: ...)`` for an OSError, on one line."""
    where = ": ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    what = (exc.strerror or str(exc) or type(exc).__name__).replace("\n", " ")
    fix = _OS_FIXES.get(exc.errno, "check the path and its permissions, then re-run the command")
    return f"{where + ': ' if where else ''}{what} (fix: {fix})"


def main() -> None:
    """Run the CLI; library errors become one red line and exit code 2, never a traceback; an
    interrupt (Ctrl-C) says that finished work is kept and exits 130.

    Click's standalone mode is off because it ends a Ctrl-C silently (typer) or with a bare
    "Aborted!"; usage errors and ``--help`` are handled here the way it would.
    """
    _sigterm[0] = False
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(standalone_mode=False)
    except ProtdistillError as exc:
        if verbosity() > 1:  # --verbose: where it came from, for a bug report
            traceback.print_exception(exc, file=sys.stderr)
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except OSError as exc:  # the system refused (a full disk, a permission): one line, exit 1
        if verbosity() > 1:
            traceback.print_exception(exc, file=sys.stderr)
        typer.secho(f"error: {os_error_line(exc)}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        code = INTERRUPTED
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.TyperException as exc:  # usage errors: message + usage line, exit 2
        exc.show()
        code = getattr(exc, "exit_code", 2)
    if code == INTERRUPTED and _sigterm[0]:
        code = TERMINATED
    if code in (INTERRUPTED, TERMINATED):
        what = "interrupted" if code == INTERRUPTED else "terminated (SIGTERM)"
        typer.secho(f"{what}: completed work is saved; re-run the same command to resume",
                    fg=typer.colors.YELLOW, err=True)  # fmt: skip
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
