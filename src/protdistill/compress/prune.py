"""Structured pruning: whole conv channels, hidden Linear units and attention heads are removed
(the layers are rebuilt smaller), never just masked.

Prunable groups are found, not hard-coded:

* **chains** (via torch.fx, in each module that owns the layers): ``Conv1d -> [BatchNorm1d] ->
  [element-wise activation / dropout] -> Conv1d`` and ``Linear -> [act / dropout] -> Linear``,
  where the first layer's output flows only into the second. Its output channels are the units.
* **ESM layers** (transformers ``EsmLayer``): attention heads (rows of query / key / value, columns
  of the attention output projection) and feed-forward units (intermediate / output dense).

Importance: ``l1`` (unit's incoming x outgoing weight L1 norms; with a BatchNorm, |gamma| replaces
the incoming norm as in network slimming) or ``taylor`` (first-order Taylor |sum w * dL/dw| over the
unit's weights, accumulated on calibration batches).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import Tensor, nn
from torch.fx.passes.shape_prop import ShapeProp

from protdistill.compress.surgery import get_module, set_module, weighted_kinds
from protdistill.errors import ConfigError, ModelError

IMPORTANCE = ("l1", "taylor")
_ELEMENTWISE = (
    nn.ReLU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.ELU,
    nn.ReLU6,
    nn.Hardswish,
    nn.Mish,
    nn.Dropout,
    nn.Identity,
)
_ELEMENTWISE_FUNCS = {"relu", "gelu", "silu", "tanh", "sigmoid", "leaky_relu", "elu", "dropout"}
#: Binary ops that keep channels independent when the other operand broadcasts over channels.
_BROADCAST_FUNCS = {
    operator.mul,
    operator.truediv,
    torch.mul,
    torch.div,
    "mul",
    "div",
    "masked_fill",
}


@dataclass
class Group:
    """Units pruned together. ``producers`` lose output rows, ``consumers`` input columns."""

    name: str
    units: int
    unit_size: int = 1
    producers: list[str] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)
    heads: str | None = None  # module whose num_attention_heads / all_head_size follow the units


# ----------------------------------------------------------------------------- discovery
def _broadcasts_over_channels(node, cur, channel_dim: int) -> bool:
    """``node`` is mul / div / masked_fill of ``cur`` by operands of size 1 on the channel dim
    (shapes from ShapeProp on real inputs; unknown shapes never qualify)."""
    if node.target not in _BROADCAST_FUNCS or not node.args or node.args[0] is not cur:
        return False
    for other in list(node.args[1:]) + list(node.kwargs.values()):
        if isinstance(other, (int, float, bool)):
            continue
        meta = getattr(other, "meta", {}).get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            return False
        shape, ndim = tuple(meta.shape), len(cur.meta["tensor_meta"].shape)
        dim = channel_dim % ndim
        padded = (1,) * (ndim - len(shape)) + shape
        if len(padded) != ndim or padded[dim] != 1:
            return False
    return "tensor_meta" in cur.meta


def _is_elementwise(node, cur, modules: dict[str, nn.Module], channel_dim: int) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(node.target), _ELEMENTWISE)
    if node.op not in ("call_function", "call_method"):
        return False
    name = getattr(node.target, "__name__", str(node.target))
    if name in _ELEMENTWISE_FUNCS:
        return True
    return _broadcasts_over_channels(node, cur, channel_dim)


def _trace(parent: nn.Module, example: tuple | None):
    try:
        gm = torch.fx.symbolic_trace(parent)
    except Exception:  # untraceable: its layers are simply not pruned
        return None
    if example is not None:
        try:
            with torch.no_grad():
                ShapeProp(gm).propagate(*example)
        except Exception:  # no shapes: only module-level element-wise links are followed
            pass
    return gm.graph


def _chains(path: str, parent: nn.Module, example: tuple | None = None) -> list[Group]:
    children = dict(parent.named_children())
    if not any(isinstance(m, (nn.Conv1d, nn.Linear)) for m in children.values()):
        return []
    graph = _trace(parent, example)
    if graph is None:
        return []
    counts: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            counts[node.target] = counts.get(node.target, 0) + 1
    prefix = f"{path}." if path else ""
    groups = []
    for node in graph.nodes:
        first = children.get(node.target) if node.op == "call_module" else None
        if type(first) not in (nn.Conv1d, nn.Linear) or counts[node.target] != 1:
            continue
        if isinstance(first, nn.Conv1d) and first.groups != 1:
            continue
        norms, cur = [], node
        while len(cur.users) == 1:
            nxt = next(iter(cur.users))
            mod = children.get(nxt.target) if nxt.op == "call_module" else None
            if type(mod) is type(first) and counts[nxt.target] == 1:
                if getattr(mod, "groups", 1) == 1:
                    groups.append(
                        Group(
                            name=f"{prefix}{node.target}",
                            units=_out_dim(first),
                            producers=[f"{prefix}{node.target}"],
                            norms=norms,
                            consumers=[f"{prefix}{nxt.target}"],
                        )
                    )
                break
            if isinstance(mod, nn.BatchNorm1d) and isinstance(first, nn.Conv1d):
                if counts[nxt.target] != 1:
                    break
                norms = norms + [f"{prefix}{nxt.target}"]
            elif not _is_elementwise(nxt, cur, children, 1 if isinstance(first, nn.Conv1d) else -1):
                break
            cur = nxt
    return groups


def _esm_groups(path: str, layer: nn.Module) -> list[Group]:
    attn = layer.attention.self
    heads = attn.num_attention_heads
    return [
        Group(
            name=f"{path}.attention.heads",
            units=heads,
            unit_size=attn.attention_head_size,
            producers=[f"{path}.attention.self.{n}" for n in ("query", "key", "value")],
            consumers=[f"{path}.attention.output.dense"],
            heads=f"{path}.attention.self",
        ),
        Group(
            name=f"{path}.ffn",
            units=layer.intermediate.dense.out_features,
            producers=[f"{path}.intermediate.dense"],
            consumers=[f"{path}.output.dense"],
        ),
    ]


def capture_inputs(
    model: nn.Module, run_example: Callable[[nn.Module], object] | None
) -> dict[str, tuple]:
    """Positional inputs of the first call of every module (for shape propagation)."""
    if run_example is None:
        return {}
    seen: dict[str, tuple] = {}

    def hook(path: str):
        def record(_m: nn.Module, args: tuple, kwargs: dict) -> None:
            if path not in seen and not kwargs:
                seen[path] = tuple(a.detach() if isinstance(a, Tensor) else a for a in args)

        return record

    handles = [
        m.register_forward_pre_hook(hook(p), with_kwargs=True) for p, m in model.named_modules()
    ]
    try:
        with torch.no_grad():
            model.eval()
            run_example(model)
    finally:
        for h in handles:
            h.remove()
    return seen


def find_groups(
    model: nn.Module, run_example: Callable[[nn.Module], object] | None = None
) -> list[Group]:
    """Every prunable group of ``model`` (see the module docstring). ``run_example(model)`` runs
    one example batch so that masks and other broadcast operands can be checked by shape."""
    examples = capture_inputs(model, run_example)
    groups: list[Group] = []
    for path, module in model.named_modules():
        if type(module).__name__ == "EsmLayer":
            groups.extend(_esm_groups(path, module))
        elif not type(module).__module__.startswith("transformers."):
            groups.extend(_chains(path, module, examples.get(path)))
    return groups


def _out_dim(m: nn.Module) -> int:
    return m.out_channels if isinstance(m, nn.Conv1d) else m.out_features


# ----------------------------------------------------------------------------- importance
def _per_unit(t: Tensor, dim: int, group: Group) -> Tensor:
    """Sum |t| over everything but ``dim``, then over each unit's ``unit_size`` slice."""
    t = t.abs().transpose(0, dim).reshape(t.shape[dim], -1).sum(1)
    return t.view(group.units, group.unit_size).sum(1)


def l1_importance(model: nn.Module, group: Group) -> Tensor:
    """(units,) incoming x outgoing L1 norms; with BatchNorm the incoming norm is |gamma|."""
    with torch.no_grad():
        if group.norms and get_module(model, group.norms[-1]).affine:
            incoming = _per_unit(get_module(model, group.norms[-1]).weight, 0, group)
        else:
            incoming = sum(
                _per_unit(get_module(model, p).weight, 0, group) for p in group.producers
            )
        outgoing = sum(_per_unit(get_module(model, c).weight, 1, group) for c in group.consumers)
    return incoming * outgoing


def taylor_importance(
    model: nn.Module, groups: list[Group], loss_batches: Iterable[Callable[[nn.Module], Tensor]]
) -> dict[str, Tensor]:
    """(units,) first-order Taylor scores per group: per batch |sum w * grad| over each unit's
    weights, summed over batches. Each item of ``loss_batches`` maps the model to a loss."""
    scores = {g.name: torch.zeros(g.units) for g in groups}
    model.train()
    n = 0
    for loss_fn in loss_batches:
        model.zero_grad(set_to_none=True)
        loss_fn(model).backward()
        for g in groups:
            total = torch.zeros(g.units)
            for path, dim in [(p, 0) for p in g.producers + g.norms] + [
                (c, 1) for c in g.consumers
            ]:
                mod = get_module(model, path)
                for name, p in mod.named_parameters(recurse=False):
                    if p.grad is None or (name == "bias" and dim == 1):
                        continue
                    prod = (p.detach() * p.grad).transpose(0, dim)
                    signed = prod.reshape(prod.shape[0], -1).sum(1)
                    total += signed.view(g.units, g.unit_size).sum(1).cpu()
            scores[g.name] += total.abs()
        n += 1
    model.zero_grad(set_to_none=True)
    model.eval()
    if n == 0:
        raise ConfigError(
            "taylor importance needs at least one labelled batch",
            fix="pass data, or use --importance l1",
        )
    return scores


# ----------------------------------------------------------------------------- surgery
def _slice_layer(layer: nn.Module, keep: Tensor, dim: int) -> nn.Module:
    """A new Linear / Conv1d / BatchNorm1d keeping ``keep`` along weight ``dim``."""
    with torch.no_grad():
        if isinstance(layer, nn.BatchNorm1d):
            new = nn.BatchNorm1d(
                len(keep), layer.eps, layer.momentum, layer.affine, layer.track_running_stats
            )
            for name in ("weight", "bias", "running_mean", "running_var"):
                if getattr(layer, name) is not None:
                    getattr(new, name).copy_(getattr(layer, name)[keep])
            if layer.num_batches_tracked is not None:
                new.num_batches_tracked.copy_(layer.num_batches_tracked)
            return new.train(layer.training).to(layer.weight.device)
        weight = layer.weight.index_select(dim, keep)
        bias = layer.bias
        if bias is not None and dim == 0:
            bias = bias[keep]
        if isinstance(layer, nn.Linear):
            new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        elif isinstance(layer, nn.Conv1d):
            new = nn.Conv1d(
                weight.shape[1],
                weight.shape[0],
                layer.kernel_size[0],
                layer.stride[0],
                layer.padding[0],
                layer.dilation[0],
                bias=bias is not None,
                padding_mode=layer.padding_mode,
            )
        else:
            raise ModelError(
                f"cannot prune a {type(layer).__name__}",
                record=type(layer).__name__,
                fix="structured pruning rebuilds Linear, Conv1d and BatchNorm1d layers",
            )
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new.train(layer.training).to(layer.weight.device)


def apply_keep(model: nn.Module, group: Group, keep_units: Tensor) -> None:
    """Rebuild the group's layers keeping only ``keep_units`` (sorted unit indices)."""
    keep_units = keep_units.sort().values
    offsets = torch.arange(group.unit_size)
    keep = (keep_units[:, None] * group.unit_size + offsets[None, :]).flatten()
    for path in group.producers + group.norms:
        set_module(model, path, _slice_layer(get_module(model, path), keep, 0))
    for path in group.consumers:
        set_module(model, path, _slice_layer(get_module(model, path), keep, 1))
    if group.heads is not None:
        attn = get_module(model, group.heads)
        attn.num_attention_heads = len(keep_units)
        attn.all_head_size = len(keep)


def prune_model(
    model: nn.Module,
    ratio: float,
    *,
    importance: str = "l1",
    loss_batches: Iterable[Callable[[nn.Module], Tensor]] | None = None,
    run_example: Callable[[nn.Module], object] | None = None,
    skip: Iterable[str] = (),
) -> dict[str, dict[str, int]]:
    """Remove ``ratio`` of the units of every prunable group (at least one unit stays).

    ``run_example(model)`` (one forward pass on real inputs) lets discovery follow broadcast
    operations such as padding masks; ``loss_batches`` feed the ``taylor`` importance.

    Returns ``{group: {"before": n, "after": k}}``. :class:`ModelError` when nothing is prunable.
    """
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"prune ratio {ratio} is outside [0, 1)", fix="e.g. --ratio 0.5")
    if importance not in IMPORTANCE:
        raise ConfigError(f"unknown importance {importance!r}", fix=f"use one of {IMPORTANCE}")
    skip = tuple(skip)
    groups = [
        g
        for g in find_groups(model, run_example)
        if not any(p == s or p.startswith(s + ".") for p in g.producers for s in skip)
    ]
    if not groups:
        raise ModelError(
            f"no prunable structure in {type(model).__name__} (weighted layers: "
            f"{weighted_kinds(model)}); structured pruning needs Conv1d->Conv1d or "
            "Linear->Linear chains through per-channel ops, or ESM layers",
            record=type(model).__name__,
            fix="use --method quantize or lowrank for this model",
        )
    if importance == "taylor":
        if loss_batches is None:
            raise ConfigError(
                "taylor importance needs labelled data", fix="pass data or use --importance l1"
            )
        scores = taylor_importance(model, groups, loss_batches)
    else:
        scores = {g.name: l1_importance(model, g) for g in groups}
    result = {}
    for g in groups:
        k = max(1, g.units - math.floor(ratio * g.units))
        keep = scores[g.name].topk(k).indices
        apply_keep(model, g, keep)
        result[g.name] = {"before": g.units, "after": k}
    return result
