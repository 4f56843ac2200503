"""The house rules of docs/architecture.md, checked on the source tree (no imports executed)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "protdistill"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[tuple[Path, ast.Module, list[str]]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        out.append((path, ast.parse(text), text.splitlines()))
    return out


def _functions(tree: ast.Module):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_no_file_over_the_yardstick() -> None:
    long = [
        f"{p.relative_to(SRC)}: {len(lines)}"
        for p, _, lines in _modules()
        if len(lines) > MAX_FILE_LINES
    ]
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_over_the_yardstick() -> None:
    long = [
        f"{p.relative_to(SRC)}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1})"
        for p, tree, _ in _modules()
        for f in _functions(tree)
        if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_function_local_imports_are_only_commented_lazy_ones() -> None:
    """An import inside a function must say why (``# lazy: ...`` for start-up time); one that
    dodges an import cycle is a layering bug (lint-imports checks the layers themselves)."""
    hidden = []
    for path, tree, lines in _modules():
        for func in _functions(tree):
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    block = lines[func.lineno - 1 : node.lineno]
                    if not any("# lazy" in line for line in block):
                        hidden.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not hidden, f"uncommented function-local imports: {hidden}"


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """The checks above see a long function and an uncommented local import."""
    tree = ast.parse("def f():\n    import os\n" + "    x = 1\n" * 70)
    (func,) = _functions(tree)
    assert func.end_lineno - func.lineno + 1 > MAX_FUNCTION_LINES
    assert any(isinstance(n, ast.Import) for n in ast.walk(func))
