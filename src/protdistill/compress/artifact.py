"""A compressed model directory: written by :func:`save_compressed`, rebuilt by
:func:`load_compressed` from its base architecture plus a JSON manifest (nothing is pickled).

OUT/
  compression_manifest.json   base model description, steps applied, replaced-module specs
  model.safetensors           weights (plain tensors; int8 + float scales for quantized layers)
  compression_report.json     per-stage weights, MB, latency, throughput, ratios, metric
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from torch import nn
from transformers import EsmConfig, EsmModel

from protdistill.compress.int8 import QuantConv1d, QuantLinear
from protdistill.compress.lowrank import LowRankLinear
from protdistill.compress.specs import apply_specs, module_spec
from protdistill.compress.task import Task
from protdistill.distill.checkpoint import load_model_state, save_model
from protdistill.errors import CheckpointError
from protdistill.io.atomic import write_json, write_text
from protdistill.students import build_student

MANIFEST = "compression_manifest.json"
WEIGHTS = "model.safetensors"
REPORT = "compression_report.json"
FORMAT = "protdistill-compressed"

_ATTRS = ("num_attention_heads", "all_head_size")


def diff_specs(base: nn.Module, model: nn.Module) -> dict[str, dict[str, Any]]:
    """Specs turning the fresh ``base`` architecture into ``model``'s, in pre-order (a replaced
    module is recorded before any of its own children that were replaced later)."""
    kinds = (nn.Linear, nn.Conv1d, nn.BatchNorm1d, nn.Identity, QuantLinear, QuantConv1d)
    kinds = kinds + (LowRankLinear,)
    shadow = copy.deepcopy(base)
    specs: dict[str, dict[str, Any]] = {}
    for path, m in model.named_modules():
        try:
            old = shadow.get_submodule(path)
        except AttributeError:
            old = None
        attrs = {a: getattr(m, a) for a in _ATTRS if hasattr(m, a)}
        if old is not None and attrs and attrs != {a: getattr(old, a, None) for a in attrs}:
            specs[path] = {"type": "attrs", "values": attrs}
            apply_specs(shadow, {path: specs[path]})
        if not isinstance(m, kinds):
            continue
        spec = module_spec(m)
        same = old is not None and type(old) is type(m) and module_spec(old) == spec
        if not same:
            specs[path] = spec
            apply_specs(shadow, {path: spec})
    return specs


def build_base(base: dict[str, Any]) -> nn.Module:
    """A fresh (uncompressed) model from a manifest's ``base`` entry."""
    if base.get("kind") == "ppi_student":
        return build_student(base["meta"]["student"])
    if base.get("kind") == "esm":
        config = EsmConfig.from_dict(base["config"])
        config._attn_implementation = "eager"
        return EsmModel(config, add_pooling_layer=False)
    raise CheckpointError(
        f"unknown base model kind {base.get('kind')!r}",
        record="base.kind",
        fix="re-run compress with this protdistill version",
    )


def save_compressed(
    out: str | Path, model: nn.Module, task: Task, steps: list[dict[str, Any]]
) -> Path:
    """Write ``OUT/model.safetensors`` then ``OUT/compression_manifest.json`` (the manifest last,
    so a directory with a manifest always has matching weights)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = task.meta.get("compression", {}).get("steps", [])
    manifest = {
        "format": FORMAT,
        "version": 1,
        "base": task.base,
        "steps": previous + steps,
        "modules": diff_specs(build_base(task.base), model),
        "weights": WEIGHTS,
    }
    meta = {k: v for k, v in task.meta.items() if k != "compression"}
    save_model(out / WEIGHTS, model, {**meta, "compression": {"steps": manifest["steps"]}})
    split_path = getattr(task, "split_path", None)
    if split_path is not None and split_path.resolve() != (out / "split.json").resolve():
        # the held-out split travels with the model, so re-compressing never tunes on test pairs
        write_text(out / "split.json", split_path.read_text(encoding="utf-8"))
    write_json(out / MANIFEST, manifest)
    return out


def load_compressed(path: str | Path, backend: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild a compressed model from its directory: ``(model in eval mode, meta)``.

    ``meta`` is the original model's metadata (e.g. ``student`` and ``ppi`` for PPI students) with
    ``meta["compression"] = {"steps": [...], "base": {...}}``. ``backend`` overrides the INT8
    backend (``native`` / ``reference``).
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(
            "no compression manifest here", path=manifest_path, fix="pass a `compress --out` dir"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"corrupt manifest ({exc.msg})", path=manifest_path, fix="re-run compress"
        ) from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != 1:
        raise CheckpointError(
            "unknown manifest format or version", path=manifest_path, fix="re-run compress"
        )
    weights = manifest.get("weights", WEIGHTS)
    if not isinstance(weights, str) or Path(weights).name != weights or weights in ("", ".", ".."):
        raise CheckpointError(  # a manifest is data: it may not point the read outside its folder
            f"the manifest names weights {weights!r} outside its folder", path=manifest_path,
            fix="re-run compress; the directory was modified",
        )  # fmt: skip
    state, meta = load_model_state(path / weights)
    model = apply_specs(build_base(manifest["base"]), manifest["modules"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"weights do not match the manifest ({' '.join(str(exc).split())[:300]})",
            path=path / WEIGHTS,
            fix="re-run compress; the directory was modified",
        ) from exc
    if backend is not None:
        for m in model.modules():
            if isinstance(m, (QuantLinear, QuantConv1d)):
                m.backend = backend
    meta = dict(meta)
    meta["compression"] = {"steps": manifest["steps"], "base": manifest["base"]}
    return model.eval(), meta
