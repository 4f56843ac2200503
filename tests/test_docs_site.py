"""The documentation site's generated pages (tools/cli_reference.py, tools/mkdocs_hooks.py) and
the benchmark layout they point at: benchmarks/results/<area>/, referenced paths that exist."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
AREAS = {"ppi", "screening", "interfaces", "scale", "semcom", "esm-students", "peptide", "compress"}


def _tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli_reference = _tool("cli_reference")
hooks = _tool("mkdocs_hooks")


def _toy_app() -> typer.Typer:
    app = typer.Typer(help="Toy root.")
    grp = typer.Typer(help="Toy group.")
    app.add_typer(grp, name="grp")

    @grp.command("go")
    def go(
        model: Path = typer.Argument(..., help="Model <dir>."),
        mode: str = typer.Option("a", help="a|b, written to <out>."),
    ) -> None:
        """Go somewhere."""

    @app.command("top")
    def top(n: int = typer.Option(3, help="How many.")) -> None:
        """Top-level command."""

    return app


def test_cli_reference_lists_every_command_with_its_parameters() -> None:
    page = cli_reference.render(_toy_app(), name="toy")
    headings = re.findall(r"^## `(.+)`$", page, flags=re.M)
    assert headings == ["toy", "toy top", "toy grp", "toy grp go"]  # the order --help lists
    go = page.split("## `toy grp go`")[1]
    assert "Go somewhere." in go
    assert "toy grp go [OPTIONS]" in go
    rows = [line for line in go.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and "| argument |" in rows[0] and "`--mode" in rows[1]
    # a help text's pipe does not split the cell, and <out> is text, not an HTML tag
    assert rows[1].count(" | ") == 2 and "a\\|b" in rows[1] and "&lt;out&gt;" in rows[1]
    # the group's table links to the command's heading anchor
    assert "[`toy grp go`](#toy-grp-go)" in page


def test_cli_reference_of_the_real_app_covers_the_documented_commands() -> None:
    from protdistill.cli.main import app

    page = cli_reference.render(app)
    for path in ("protdistill ppi run", "protdistill ppi screen", "protdistill compress"):
        assert f"## `{path}`" in page
    run = page.split("## `protdistill ppi run`")[1].split("\n## ")[0]
    assert "`--out <path>`" in run and "`--teacher" in run


@pytest.mark.parametrize(
    ("text", "source_dir", "page", "expected"),
    [
        ("[a](docs/scale.md)", "", "index.md", "[a](scale.md)"),
        ("[a](BENCHMARKS.md)", "", "index.md", "[a](benchmarks/index.md)"),
        ("[p](docs/benchmarks/ppi.md#x-y)", "", "benchmarks/index.md", "[p](ppi.md#x-y)"),
        ("![m](docs/img/a.png)", "", "benchmarks/index.md", "![m](../img/a.png)"),
        ("[f](../../BENCHMARKS.md)", "docs/benchmarks", "benchmarks/ppi.md", "[f](index.md)"),
        ("[c](../src/protdistill/cli/main.py)", "docs", "architecture.md", "c"),
        ("[w](https://example.org/a.md)", "", "index.md", "[w](https://example.org/a.md)"),
        ("[h](#quick-start)", "", "index.md", "[h](#quick-start)"),
    ],
)
def test_site_links_rewrites_repository_links_for_the_site(
    text: str, source_dir: str, page: str, expected: str
) -> None:
    assert hooks.site_links(f"see {text}.", source_dir, page) == f"see {expected}."


def test_home_page_is_the_readme_through_its_quick_start() -> None:
    readme = "# t\n\nintro [b](BENCHMARKS.md)\n\n## Quick start\n\nrun it\n\n## Layout\n\nmore\n"
    home = hooks.home_page(readme)
    assert "run it" in home and "## Layout" not in home and "more" not in home
    assert "[b](benchmarks/index.md)" in home
    with pytest.raises(ValueError, match="Quick start"):
        hooks.home_page("# t\n\n## Install\n")
    real = hooks.home_page((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "## Quick start" in real and "## What a run leaves behind" not in real


def test_benchmark_results_live_in_one_folder_per_area() -> None:
    results = ROOT / "benchmarks" / "results"
    loose = [p.name for p in results.iterdir() if p.is_file()]
    assert loose == []
    assert {p.name for p in results.iterdir() if p.is_dir()} <= AREAS
    # every area's detailed log exists and the front page links it
    front = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    for area in AREAS:
        assert (ROOT / "docs" / "benchmarks" / f"{area}.md").is_file()
        assert f"(docs/benchmarks/{area}.md" in front


def _referenced_results(text: str) -> set[str]:
    return {m.rstrip(".,") for m in re.findall(r"benchmarks/results/[A-Za-z0-9_./-]*", text)}


def test_every_referenced_result_path_exists() -> None:
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").rglob("*.md"))]
    existing = [p.relative_to(ROOT).as_posix() for p in (ROOT / "benchmarks/results").rglob("*")]
    missing = []
    for path in files:
        for ref in _referenced_results(path.read_text(encoding="utf-8")):
            if ref.endswith("/") and ref.rstrip("/").split("/")[-1] in AREAS | {"results"}:
                continue  # a folder (`benchmarks/results/<area>/`)
            if not any(e == ref or e.startswith(ref) for e in existing):
                missing.append(f"{path.relative_to(ROOT)}: {ref}")
    assert missing == []


def test_benchmark_scripts_write_into_an_area_folder() -> None:
    pattern = re.compile(r'"results" / "([a-z-]+)"|"benchmarks/results/([a-z-]+)[/"]')
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        for match in pattern.finditer(script.read_text(encoding="utf-8")):
            assert (match.group(1) or match.group(2)) in AREAS, script.name
