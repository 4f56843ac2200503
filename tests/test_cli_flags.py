"""Every config field of every command is a flag, and every command the README shows parses."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shlex
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from protdistill.cli.main import app

README = Path(__file__).resolve().parents[1] / "README.md"

#: Config fields that are not (yet) flags of the command that resolves the config. The test fails
#: when a new field has no flag AND when a listed field gets one (then drop it here): the list
#: only shrinks. Reasons / plan: issue 46, item 4.
KNOWN_GAPS: dict[str, set[str]] = {
    # scale: set through --devices / --num-nodes / --accelerator (a nested config)
    "ppi screen": {"scale"},
}  # fmt: skip


def _leaves(command, path=()):
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield " ".join(path), command


def _name_in(fn, dotted: str):
    """The object ``dotted`` names inside ``fn``: a module global or a name ``fn`` imports."""
    head, *rest = dotted.split(".")
    scope = dict(fn.__globals__)
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(fn)))):
        for alias in getattr(node, "names", []) if isinstance(node, ast.ImportFrom) else []:
            if (alias.asname or alias.name) == head:
                module = importlib.import_module(node.module)
                try:
                    scope[head] = getattr(module, alias.name)
                except AttributeError:  # a submodule not imported by its package
                    scope[head] = importlib.import_module(f"{node.module}.{alias.name}")
    value = scope[head]
    for part in rest:
        value = getattr(value, part)
    return value


def config_of(callback) -> type | None:
    """The pydantic config a command resolves: the class given to ``config_fields`` (found in
    the wrapper's closure) or the first argument of its ``resolve(...)`` call."""
    fn = callback
    while True:
        cls = inspect.getclosurevars(fn).nonlocals.get("cls")
        if isinstance(cls, type) and hasattr(cls, "model_fields"):
            return cls
        if not hasattr(fn, "__wrapped__"):
            break
        fn = fn.__wrapped__
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(fn)))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "resolve":
            return _name_in(fn, ast.unparse(node.args[0]))
    return None


def test_every_config_field_is_a_flag() -> None:
    gaps, resolved = {}, set()
    for name, command in _leaves(typer.main.get_command(app)):
        cls = config_of(command.callback)
        if cls is None:
            continue
        resolved.add(name)
        params = {p.name for p in command.params}
        missing = set(cls.model_fields) - params
        if missing:
            gaps[name] = missing
    assert {"compress", "distill", "ppi run", "ppi train", "ppi screen"} <= resolved
    assert gaps == KNOWN_GAPS


def test_compress_onnx_and_lowrank_flags_reach_the_config(tmp_path, monkeypatch) -> None:
    import protdistill.api.compress as api_compress

    seen = {}

    def fake(cfg, log):  # noqa: ANN001, ANN202 - stands in for the compression itself
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr(api_compress, "compress_model", fake)
    args = ["compress", str(tmp_path), "--out", str(tmp_path / "c"), "--onnx",
            "--lowrank-min-params", "128", "--method", "lowrank"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert cfg.onnx is True and cfg.lowrank_min_params == 128 and cfg.method == ["lowrank"]
    result = CliRunner().invoke(app, [*args[:3], "--no-onnx"])
    assert result.exit_code == 0 and seen["cfg"].onnx is False


def readme_commands(text: str) -> list[str]:
    """Each `protdistill ...` command of the README's command table and shell blocks, with
    placeholders kept ("ppi embed / teacher / train" becomes three commands)."""
    found = []
    for line in text.splitlines():
        if line.startswith("| `protdistill"):
            for cell in re.findall(r"`(protdistill [^`]*)`", re.split(r"(?<!\\)\|", line)[1]):
                found += _expand(cell.replace(r"\|", "|"))
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for part in block.replace("\\\n", " ").split("&&"):
            if part.strip().startswith("protdistill"):
                found.append(part.strip())
    return found


def _expand(cell: str) -> list[str]:
    """``protdistill ppi embed / teacher / train`` -> one command per name."""
    if " / " not in cell or "--" in cell:
        return [cell]
    first, *others = cell.split(" / ")
    stem = first.rsplit(" ", 1)[0]
    return [first] + [f"{stem} {name.strip()}" for name in others]


def _arguments(command: str) -> list[str]:
    """The README's notation as argv: optional parts kept, ``a|b`` -> ``a``, ``…`` dropped."""
    text = command.replace("[", " ").replace("]", " ").replace("…", " ").replace("...", " ")
    words = shlex.split(text)
    return [w.split("|")[0] if "|" in w else w for w in words][1:]


def _parse(argv: list[str]) -> None:
    """Parse ``argv`` into the command's context (types, required options), running nothing. A
    placeholder (``K``, ``P``) given to a numeric option is read as ``1``."""
    command = typer.main.get_command(app)
    while hasattr(command, "commands") and argv and argv[0] in command.commands:
        command = command.commands[argv.pop(0)]
    assert not hasattr(command, "commands"), f"no such command: {argv}"
    for _ in range(len(argv) + 1):
        try:
            command.make_context(command.name, list(argv))
            return
        except typer.BadParameter as exc:
            at = [i + 1 for i, a in enumerate(argv[:-1]) if a in getattr(exc.param, "opts", ())]
            if not at or not re.fullmatch(r"[A-Z]+", argv[at[0]]):
                raise
            argv[at[0]] = "1"


def test_readme_commands_are_listed() -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    names = {" ".join(_arguments(c)[:2]) for c in commands}
    assert {"ppi run", "ppi screen", "ppi train", "semcom train"} <= names
    assert any("--onnx" in c and "compress" in c for c in commands)


@pytest.mark.parametrize("command", readme_commands(README.read_text(encoding="utf-8")))
def test_every_readme_command_parses(command) -> None:
    argv = _arguments(command)
    if any(a.startswith("--") for a in argv):
        _parse(argv)  # the documented options, as documented
    else:
        result = CliRunner().invoke(app, [*argv, "--help"])
        assert result.exit_code == 0, (command, result.output)


class _Captured(Exception):
    pass


@pytest.mark.parametrize(
    ("target", "args", "expected"),
    [
        ("protdistill.cli.peptide._sample",
         ["peptide", "sample", "--type", "amp", "--eta", "0.5", "--batch-size", "7",
          "--by-type", '{"amp": {"guidance": 3}}'],
         {"eta": 0.5, "batch_size": 7}),
        ("protdistill.tasks.peptide.pipeline.evaluate_file",
         ["peptide", "evaluate", "s.fasta", "--fd-max", "40", "--max-compare", "9", "--seed", "3"],
         {"fd_max": 40, "max_compare": 9, "seed": 3}),
        ("protdistill.api.distill.run_distill",
         ["distill", "--snr-min", "2", "--val-sentences", "9", "--logit-weight", "0",
          "--no-progress"],
         {"snr_min": 2.0, "val_sentences": 9, "logit_weight": 0.0, "progress": False}),
        ("protdistill.tasks.peptide.train.train_structdiff",
         ["peptide", "train", "--types", "amp,afp", "--timesteps", "10", "--balance-types",
          "--stages", '[{"epochs": 2}, {"epochs": 5}]', "--epochs", "3"],
         {"types": ["amp", "afp"], "timesteps": 10, "balance_types": True}),
        ("protdistill.tasks.semcom.train.train_teacher",
         ["semcom", "train", "--n-heads", "2", "--d-ff", "32", "--min-words", "3",
          "--split-seed", "5", "--no-progress"],
         {"n_heads": 2, "d_ff": 32, "min_words": 3, "split_seed": 5, "progress": False}),
    ],
)  # fmt: skip
def test_new_flags_reach_their_config(monkeypatch, target, args, expected) -> None:
    module, name = target.rsplit(".", 1)
    seen = {}

    def capture(cfg, *rest, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen["cfg"] = rest[0] if name == "evaluate_file" else cfg
        raise _Captured

    monkeypatch.setattr(importlib.import_module(module), name, capture)
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, _Captured), result.output
    assert {k: getattr(seen["cfg"], k) for k in expected} == expected
    if "--epochs" in args:  # the shortcut sets every stage given by --stages
        assert [stage.epochs for stage in seen["cfg"].stages] == [3, 3]
