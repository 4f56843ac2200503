"""Write constraints.txt: the exact version of every package in protdistill's dependency closure
(runtime + the given extras) as installed in the current environment — the versions CI runs.

Usage: python tools/freeze_constraints.py [--extras dev,docs] [--out constraints.txt]
Run it in the project's venv after changing a dependency; CI installs with `-c constraints.txt`.
"""

from __future__ import annotations

import argparse
import re
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

#: A version whose local label names a build that only a local wheel has (torch's "+cpu") is
#: written without the label: `torch==2.13.0` still takes the CPU wheel where it lies on disk.
LOCAL_LABEL = re.compile(r"\+.*$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def roots(pyproject: Path, extras: set[str]) -> list[str]:
    """The requirements pyproject.toml declares: runtime plus ``extras``."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    return project["dependencies"] + [r for e in sorted(extras) for r in optional[e]]


def closure(requirements: list[str]) -> dict[str, str]:
    """Installed name -> version of ``requirements`` and what they require, recursively."""
    found: dict[str, str] = {}
    todo = [(Requirement(r).name, frozenset(Requirement(r).extras)) for r in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        dist = metadata.distribution(name)
        found[_norm(dist.metadata["Name"])] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            try:
                metadata.distribution(req.name)
            except metadata.PackageNotFoundError:
                continue  # an optional dependency this platform does not install
            todo.append((req.name, frozenset(req.extras)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default="dev,docs", help="comma-separated extras to include")
    parser.add_argument("--out", default="constraints.txt")
    args = parser.parse_args()
    extras = {e for e in args.extras.split(",") if e}
    pins = closure(roots(Path(__file__).parents[1] / "pyproject.toml", extras))
    lines = [f"{name}=={LOCAL_LABEL.sub('', version)}" for name, version in sorted(pins.items())]
    header = (
        '# The exact versions CI installs (`pip install -e ".[dev]" -c constraints.txt`): the\n'
        "# dependency closure of protdistill[" + ",".join(sorted(extras)) + "], written by\n"
        "# tools/freeze_constraints.py from a working venv. pyproject.toml keeps the ranges.\n"
    )
    Path(args.out).write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} pins to {args.out}")


if __name__ == "__main__":
    main()
