"""Capture intermediate outputs of any ``nn.Module`` by module path, with forward hooks.

>>> with FeatureCapture(model, ["encoder.layer.1", "encoder.layer.2:0"]) as cap:
...     model(tokens)
>>> cap.features["encoder.layer.1"]  # (B, L, D)

A path is a name from ``model.named_modules()`` (``""`` is the model itself), optionally followed by
``":selector"`` choosing what to keep from the module's output:

- no selector: the output if it is a tensor, else the first tensor found in it (tuple/list items,
  ``Mapping`` / ``ModelOutput`` values or dataclass fields, in order, searched depth-first);
- ``":<int>"``: that item of a tuple/list, or of a ``ModelOutput`` (as ``to_tuple()`` orders it);
- ``":<name>"``: that key of a mapping / ``ModelOutput`` or that attribute of a dataclass.

A module called several times in one forward pass (shared weights) keeps its *last* output. The
model is never edited; hooks are removed on exit, also when the forward pass raises.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from protdistill.errors import ModelError

__all__ = ["FeatureCapture", "resolve_module", "select_output"]


def resolve_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at ``path`` (``""`` = model); unknown → ModelError listing close names."""
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    close = difflib.get_close_matches(path, list(modules), n=5, cutoff=0.5)
    hint = f"close matches: {', '.join(close)}" if close else "list them with model.named_modules()"
    raise ModelError(
        f"no module at path {path!r} in {type(model).__name__}",
        record=path,
        fix=f"use a module path; {hint}",
    )


def _first_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, Mapping):
        items: Iterable[Any] = value.values()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = (getattr(value, f.name) for f in dataclasses.fields(value))
    elif isinstance(value, (tuple, list)):
        items = value
    else:
        return None
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def select_output(output: Any, selector: str | None, path: str = "") -> Tensor:
    """Pick the tensor named by ``selector`` (see module docs) out of a module's ``output``."""
    if selector is None:
        found = _first_tensor(output)
    elif selector.lstrip("-").isdigit():
        index = int(selector)
        seq = output.to_tuple() if hasattr(output, "to_tuple") else output
        if not isinstance(seq, (tuple, list)) or not -len(seq) <= index < len(seq):
            raise ModelError(
                f"output of type {type(output).__name__} has no item {index}",
                record=path,
                fix="choose an index within the module's output tuple",
            )
        found = seq[index]
    elif isinstance(output, Mapping):
        found = output.get(selector)
    else:
        found = getattr(output, selector, None)
    if not isinstance(found, Tensor):
        raise ModelError(
            f"selector {selector!r} finds no tensor in output of type {type(output).__name__}",
            record=path,
            fix="use 'path:<index>' or 'path:<field name>' naming a tensor output",
        )
    return found


def _split(path: str) -> tuple[str, str | None]:
    module_path, sep, selector = path.partition(":")
    return module_path, (selector if sep else None)


class FeatureCapture:
    """Context manager capturing module outputs by path into ``.features[path]``.

    ``paths`` are validated at construction (unknown path → :class:`ModelError` listing close
    matches). ``detach=True`` stores detached tensors (e.g. for a frozen teacher); by default the
    captured tensors keep their graph so losses on them train the student.
    """

    def __init__(self, model: nn.Module, paths: Iterable[str], detach: bool = False) -> None:
        self.model = model
        self.paths = list(dict.fromkeys(paths))
        self.detach = detach
        self.features: dict[str, Tensor] = {}
        self._handles: list[RemovableHandle] = []
        self._targets = [(p, resolve_module(model, _split(p)[0]), _split(p)[1]) for p in self.paths]

    def _hook(self, path: str, selector: str | None):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            tensor = select_output(output, selector, path)
            self.features[path] = tensor.detach() if self.detach else tensor

        return hook

    def clear(self) -> None:
        """Forget captured features (they are overwritten by each forward pass anyway)."""
        self.features.clear()

    def __enter__(self) -> FeatureCapture:
        if self._handles:
            raise ModelError("FeatureCapture is already active", fix="do not nest the same capture")
        for path, module, selector in self._targets:
            self._handles.append(module.register_forward_hook(self._hook(path, selector)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
