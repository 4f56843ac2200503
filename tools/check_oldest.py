"""Install protdistill with the OLDEST versions pyproject.toml allows and smoke-test it (CI).

Every runtime dependency is pinned to its lower bound (``numpy>=1.26`` -> ``numpy==1.26``); what
they pull in resolves freely. Then: the CLI answers, the quick-start example runs (train, predict,
screen, plot) and a few API / export / teacher tests pass.

Usage: python tools/check_oldest.py [--venv DIR] [--keep]
torch cannot go below 2.13 here: only that CPU wheel lies on the CI machine's disk (older torch on
PyPI is a multi-GB CUDA build), so its lower bound is also CI's version (see pyproject.toml).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
#: What the oldest environment runs besides `protdistill --help` and the quick start.
TESTS = ["tests/test_api.py", "tests/compress/test_onnx.py", "tests/teachers/test_esm.py"]


def _project(pyproject: Path) -> dict:
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]


def lowest_pins(pyproject: Path) -> list[str]:
    """``name==lower bound`` for every runtime dependency (each must have a ``>=`` bound)."""
    deps = _project(pyproject)["dependencies"]
    pins = []
    for text in deps:
        req = Requirement(text)
        lower = [s.version for s in req.specifier if s.operator == ">="]
        if len(lower) != 1:
            raise SystemExit(f"pyproject.toml: {text!r} needs exactly one '>=' lower bound")
        pins.append(f"{req.name}=={lower[0]}")
    return pins


def _run(cmd: list[str], **kw) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def check(venv: Path) -> None:
    pins = lowest_pins(ROOT / "pyproject.toml")
    constraints = venv.parent / "oldest-constraints.txt"
    constraints.write_text("\n".join(pins) + "\n", encoding="utf-8")
    print("oldest pins:", " ".join(pins), flush=True)
    _run([sys.executable, "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    # the test runners of [dev] (not the linters: they need newer rich than the bound)
    dev = _project(ROOT / "pyproject.toml")["optional-dependencies"]["dev"]
    runners = [r for r in dev if Requirement(r).name in ("pytest", "hypothesis")]
    # a wheel (not editable): package data and metadata as a user gets them
    _run([py, "-m", "pip", "install", "-q", str(ROOT), *runners, "-c", str(constraints)])
    frozen = subprocess.run([py, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    installed = {
        canonicalize_name(n): v for n, _, v in (x.partition("==") for x in frozen.splitlines())
    }
    for pin in pins:
        name, _, version = pin.partition("==")
        got = installed.get(canonicalize_name(name), "")
        if not got or Version(got) not in SpecifierSet(f"=={version}"):  # 2.13.0+cpu is ==2.13
            raise SystemExit(f"{pin} wanted, {got or 'nothing'} installed")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    with tempfile.TemporaryDirectory() as work:  # away from src/: the installed copy is tested
        _run([str(venv / "bin" / "protdistill"), "--help"], env=env, cwd=work,
             stdout=subprocess.DEVNULL)  # fmt: skip
        _run([py, str(ROOT / "docs/examples/quickstart.py"), work], env=env, cwd=work)
    _run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], env=env, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="where to build the venv (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the venv afterwards")
    args = parser.parse_args()
    start = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="protdistill-oldest-"))
    venv = args.venv or base / "venv"
    try:
        check(venv)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
            if args.venv:
                shutil.rmtree(args.venv, ignore_errors=True)
    print(f"oldest versions: OK in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
