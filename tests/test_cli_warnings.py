"""Other packages' warnings are hidden unless `protdistill --verbose`; protdistill's own show."""

from __future__ import annotations

import warnings

import pytest
from typer.testing import CliRunner

from protdistill.cli.main import app
from protdistill.progress import set_verbosity


def _shown_after(*root_flags: str) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")  # as a plain python process starts
        try:
            assert CliRunner().invoke(app, [*root_flags, "ppi", "--help"]).exit_code == 0
        finally:
            set_verbosity(1)
        for module in ("torch.utils._pytree", "lightning.pytorch.core", "protdistill.tasks.x"):
            warnings.warn_explicit(f"from {module}", FutureWarning, "f.py", 1, module=module)
    return [str(w.message) for w in seen]


@pytest.mark.parametrize("flags", [(), ("--quiet",)])
def test_third_party_warnings_are_hidden(flags) -> None:
    assert _shown_after(*flags) == ["from protdistill.tasks.x"]


def test_verbose_shows_every_warning() -> None:
    shown = _shown_after("--verbose")
    assert shown == ["from torch.utils._pytree", "from lightning.pytorch.core",
                     "from protdistill.tasks.x"]  # fmt: skip
