"""Module surgery shared by every compression step: find, replace and describe sub-modules."""

from __future__ import annotations

from torch import nn

from protdistill.errors import ModelError


def get_module(model: nn.Module, path: str) -> nn.Module:
    """The sub-module at dotted ``path`` (``""`` is the model itself)."""
    try:
        return model.get_submodule(path)
    except AttributeError as exc:
        raise ModelError(
            f"no module {path!r} in {type(model).__name__}",
            record=path,
            fix="the manifest was written for another architecture; re-run compress",
        ) from exc


def set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the sub-module at dotted ``path``."""
    parent_path, _, name = path.rpartition(".")
    setattr(get_module(model, parent_path), name, module)


def weighted_kinds(model: nn.Module) -> str:
    """Comma-separated class names of the layers that own parameters (for error messages)."""
    kinds = {
        type(m).__name__ for m in model.modules() if next(m.parameters(False), None) is not None
    }
    return ", ".join(sorted(kinds)) or "none"
