"""Compression after distillation: structured pruning, quantization, low rank.

``load_compressed(dir) -> (model, meta)`` rebuilds a model written by ``protdistill compress``
(the directory holds ``compression_manifest.json`` and ``model.safetensors``).
"""

from __future__ import annotations

from typing import Any


def load_compressed(path: Any, backend: str | None = None) -> Any:
    """See :func:`protdistill.compress.pipeline.load_compressed`."""
    from protdistill.compress.pipeline import load_compressed as _load

    return _load(path, backend=backend)


__all__ = ["load_compressed"]
