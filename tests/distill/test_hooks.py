"""FeatureCapture: captures exactly what a manual forward computes, and leaves no hooks behind."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from protdistill.distill.hooks import FeatureCapture, resolve_module, select_output
from protdistill.errors import ModelError
from protdistill.testing import tiny_esm

torch.set_num_threads(1)


@dataclass
class _Out:
    mask: torch.Tensor | None
    features: torch.Tensor
    logits: torch.Tensor


class _PairBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.lin(x)
        return h, h.sum(-1)


class _Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> _Out:
        return _Out(mask=None, features=x * 2, logits=self.proj(x))


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(5, 4), nn.ReLU())
        self.block = _PairBlock()
        self.head = _Head()

    def forward(self, x: torch.Tensor) -> _Out:
        h, _ = self.block(self.stem(x))
        return self.head(h)


def _hook_ids(model: nn.Module) -> dict[str, set[int]]:
    return {name: set(m._forward_hooks) for name, m in model.named_modules()}


def _manual(model: _Toy, x: torch.Tensor) -> dict[str, torch.Tensor]:
    lin0 = model.stem[0](x)
    stem = torch.relu(lin0)
    block = model.block.lin(stem)
    return {
        "stem.0": lin0,
        "stem": stem,
        "block": block,
        "block:1": block.sum(-1),
        "head": block * 2,
        "head:logits": model.head.proj(block),
        "": block * 2,
    }


def test_captures_exactly_the_manual_forward_tensors() -> None:
    torch.manual_seed(0)
    model, x = _Toy(), torch.randn(3, 5)
    expected = _manual(model, x)
    before = _hook_ids(model)
    with FeatureCapture(model, list(expected)) as cap:
        out = model(x)
        assert _hook_ids(model) != before
    assert set(cap.features) == set(expected)
    for path, tensor in expected.items():
        torch.testing.assert_close(cap.features[path], tensor, rtol=0, atol=0, msg=path)
    assert cap.features["head:logits"] is out.logits
    assert _hook_ids(model) == before


def test_capture_on_esm_matches_hidden_states() -> None:
    model = tiny_esm()
    tokens = torch.randint(4, 24, (2, 7))
    with torch.no_grad():
        model(tokens, output_hidden_states=True)  # transformers installs its own hooks here
    before = _hook_ids(model)
    paths = ["embeddings", "encoder.layer.0", "encoder.layer.1", "encoder"]
    with torch.no_grad(), FeatureCapture(model, paths) as cap:
        out = model(tokens, output_hidden_states=True)
    assert _hook_ids(model) == before
    assert torch.equal(cap.features["embeddings"], out.hidden_states[0])
    assert torch.equal(cap.features["encoder.layer.0"], out.hidden_states[1])
    assert torch.equal(
        cap.features["encoder"], out.last_hidden_state
    )  # first tensor of ModelOutput
    with torch.no_grad():
        normed = model.encoder.emb_layer_norm_after(cap.features["encoder.layer.1"])
    torch.testing.assert_close(normed, out.last_hidden_state)


def test_hooks_are_removed_when_forward_raises() -> None:
    model = _Toy()
    before = _hook_ids(model)
    with pytest.raises(RuntimeError), FeatureCapture(model, ["stem.0", "block"]):
        model(torch.randn(2, 7))  # wrong width: the first Linear raises
    assert _hook_ids(model) == before


def test_detach_controls_gradient_flow() -> None:
    model, x = _Toy(), torch.randn(2, 5)
    with FeatureCapture(model, ["block"]) as cap:
        model(x)
    cap.features["block"].sum().backward()
    assert model.block.lin.weight.grad is not None
    with FeatureCapture(model, ["block"], detach=True) as cap:
        model(x)
    assert not cap.features["block"].requires_grad


def test_unknown_path_lists_close_matches() -> None:
    with pytest.raises(ModelError, match="close matches: block.lin") as info:
        FeatureCapture(_Toy(), ["block.lim"])
    assert "block.lim" in str(info.value)
    with pytest.raises(ModelError, match="named_modules"):
        resolve_module(_Toy(), "zzzzzz")


def test_selector_errors_name_the_path() -> None:
    model = _Toy()
    with pytest.raises(ModelError, match="no item 5"), FeatureCapture(model, ["block:5"]):
        model(torch.randn(2, 5))
    with pytest.raises(ModelError, match="mask"):
        select_output(_Out(mask=None, features=torch.zeros(1), logits=torch.zeros(1)), "mask")
    assert torch.equal(select_output((None, [torch.ones(1)]), None), torch.ones(1))


def test_repeated_module_keeps_last_call_and_nesting_is_refused() -> None:
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    x = torch.randn(2, 3)
    cap = FeatureCapture(model, ["0"])
    with cap:
        out = model(x)
        with pytest.raises(ModelError, match="already active"), cap:
            pass
    assert cap.features["0"] is out
