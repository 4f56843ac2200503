"""Objective: weighted sums of registered losses from a config, projectors, clear config errors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from protdistill.distill import losses as L
from protdistill.distill.objective import (
    LOSSES,
    Objective,
    ObjectiveConfig,
    register_loss,
)
from protdistill.errors import ConfigError

torch.set_num_threads(1)

YAML = """
objective:
  terms:
    - {name: ce, loss: ce, student: logits, labels: labels}
    - {name: kd, loss: kd, weight: 0.5, student: logits, teacher: logits,
       params: {temperature: 4.0}}
    - {name: map, loss: map, weight: 0.1, student: interaction_map, teacher: pair_map,
       inputs: {mask_a: mask_a, mask_b: mask_b}, params: {mode: mse}}
    - {name: feat, loss: feature, weight: 2.0, student: hidden,
       teacher: "teacher.encoder.layer.1", mask: mask, projector: [6, 10]}
    - {name: unused, loss: rkd_angle, weight: 0.0, student: not_there, teacher: nowhere}
"""


@dataclass
class _StudentOut:
    logits: torch.Tensor
    interaction_map: torch.Tensor
    hidden: torch.Tensor


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    b, la, lb = 3, 5, 4
    student = _StudentOut(
        logits=torch.randn(b, 2, generator=g).requires_grad_(),
        interaction_map=torch.rand(b, la, lb, generator=g).requires_grad_(),
        hidden=torch.randn(b, la, 6, generator=g).requires_grad_(),
    )
    teacher = {
        "logits": torch.randn(b, 2, generator=g),
        "pair_map": torch.rand(b, 2 * la, 2 * lb, generator=g),
        "encoder.layer.1": torch.randn(b, la, 10, generator=g),
    }
    mask_a = torch.rand(b, la, generator=g) > 0.3
    mask_a[:, 0] = True
    batch = {
        "labels": torch.tensor([0, 1, 1]),
        "mask_a": mask_a,
        "mask_b": torch.ones(b, lb, dtype=torch.bool),
        "mask": mask_a,
    }
    return student, teacher, batch


@pytest.fixture()
def yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(YAML)
    return path


def _manual(obj: Objective, student, teacher, batch) -> dict[str, torch.Tensor]:
    return {
        "ce": F.cross_entropy(student.logits, batch["labels"]),
        "kd": L.kd_kl(student.logits, teacher["logits"], 4.0),
        "map": L.map_kd(
            student.interaction_map, teacher["pair_map"], batch["mask_a"], batch["mask_b"], "mse"
        ),
        "feat": L.feature_kd(
            obj.projectors["feat"](student.hidden), teacher["encoder.layer.1"], batch["mask"]
        ),
    }


def test_weighted_sum_equals_manual_sum_and_projector_trains(yaml_file) -> None:
    obj = Objective.from_yaml(yaml_file, key="objective")
    student, teacher, batch = _data()
    out = obj(student, teacher, batch)
    manual = _manual(obj, student, teacher, batch)
    assert set(out.terms) == {"ce", "kd", "map", "feat"}  # zero-weight term skipped
    for name, value in manual.items():
        torch.testing.assert_close(out.terms[name], value, msg=name)
    expected = manual["ce"] + 0.5 * manual["kd"] + 0.1 * manual["map"] + 2.0 * manual["feat"]
    torch.testing.assert_close(out.total, expected)
    assert set(out.log_dict()) == {"loss", "ce", "kd", "map", "feat"}

    params = dict(obj.named_parameters())
    assert set(params) == {"projectors.feat.proj.weight", "projectors.feat.proj.bias"}
    out.total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params.values())
    assert student.hidden.grad is not None and student.interaction_map.grad is not None


@settings(max_examples=20, deadline=None)
@given(weights=st.lists(st.floats(0.0, 10.0), min_size=3, max_size=3))
def test_total_is_weighted_sum_for_any_weights(weights) -> None:
    student, teacher, batch = _data(1)
    terms = [
        {"name": "ce", "loss": "cross_entropy", "student": "logits", "labels": "labels"},
        {"name": "kd", "loss": "kd_kl", "student": "logits", "teacher": "logits"},
        {"name": "sim", "loss": "similarity_kd", "student": "logits", "teacher": "logits"},
    ]
    for term, w in zip(terms, weights, strict=True):
        term["weight"] = w
    if not any(w > 0 for w in weights):
        with pytest.raises(ConfigError, match="weight 0"):
            Objective(terms)
        return
    out = Objective(terms)(student, teacher, batch)
    parts = {
        "ce": F.cross_entropy(student.logits, batch["labels"]),
        "kd": L.kd_kl(student.logits, teacher["logits"]),
        "sim": L.similarity_kd(student.logits, teacher["logits"]),
    }
    expected = sum(w * parts[t["name"]] for t, w in zip(terms, weights, strict=True))
    torch.testing.assert_close(out.total, torch.as_tensor(expected, dtype=torch.float32))
    assert set(out.terms) == {t["name"] for t, w in zip(terms, weights, strict=True) if w > 0}


def test_source_prefixes_and_dotted_keys() -> None:
    student, teacher, batch = _data(2)
    obj = Objective(
        {
            "terms": [
                {
                    "name": "self",
                    "loss": "kd",
                    "student": "logits",
                    "teacher": "student.logits",
                    "mask": "batch.labels",
                }
            ]
        }
    )
    out = obj(student, teacher, batch)
    assert out.total.item() == pytest.approx(0.0, abs=1e-7)  # student vs itself


@pytest.mark.parametrize(
    ("terms", "match"),
    [
        ([{"name": "a", "loss": "kd_kll", "student": "logits"}], "unknown loss 'kd_kll'.*kd_kl"),
        (
            [{"name": "a", "loss": "ce", "student": "logits"}],
            "term 'a'.*missing a required argument: 'labels'",
        ),
        (
            [
                {
                    "name": "a",
                    "loss": "kd",
                    "student": "logits",
                    "teacher": "logits",
                    "params": {"temprature": 2.0},
                }
            ],
            "term 'a'.*temprature",
        ),
        (
            [
                {"name": "a", "loss": "kd", "student": "x", "teacher": "y"},
                {"name": "a", "loss": "kd", "student": "x", "teacher": "y"},
            ],
            "duplicate term names: a",
        ),
        ([{"name": "a", "loss": "kd", "student": "x", "weight": -1}], "weight"),
        ([{"name": "a b", "loss": "kd", "student": "x"}], "name"),
        ([{"name": "loss", "loss": "kd", "student": "x", "teacher": "y"}], "reserved"),
        ([{"name": "a", "loss": "kd", "student": "x", "colour": 1}], "colour"),
        ([{"name": "a", "loss": "kd"}], "student"),
        ([], "terms"),
    ],
)
def test_bad_configs_raise_config_error_naming_the_problem(terms, match) -> None:
    with pytest.raises(ConfigError, match=match):
        Objective({"terms": terms})


def test_missing_key_names_term_source_and_known_keys(yaml_file) -> None:
    obj = Objective.from_yaml(yaml_file, key="objective")
    student, teacher, batch = _data()
    del batch["mask_b"]
    with pytest.raises(ConfigError) as info:
        obj(student, teacher, batch)
    text = str(info.value)
    assert str(yaml_file) in text and "term 'map'" in text and "'mask_b'" in text
    assert "labels, mask, mask_a" in text


def test_from_yaml_errors(tmp_path, yaml_file) -> None:
    with pytest.raises(ConfigError, match="no 'distill' section"):
        Objective.from_yaml(yaml_file, key="distill")
    with pytest.raises(ConfigError, match="not found"):
        Objective.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("terms:\n  - {name: a, loss: kd, student: x, weight: lots}\n")
    with pytest.raises(ConfigError, match="terms.0.weight") as info:
        Objective.from_yaml(bad)
    assert str(bad) in str(info.value)


def test_register_loss_makes_custom_losses_available() -> None:
    @register_loss("test_l1_gap")
    def l1_gap(student: torch.Tensor, teacher: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return scale * (student - teacher).abs().mean()

    try:
        cfg = ObjectiveConfig.model_validate(
            {
                "terms": [
                    {
                        "name": "gap",
                        "loss": "test_l1_gap",
                        "student": "x",
                        "teacher": "x",
                        "weight": 3.0,
                        "params": {"scale": 2.0},
                    }
                ]
            }
        )
        out = Objective(cfg)({"x": torch.ones(2)}, {"x": torch.zeros(2)})
        assert out.total.item() == pytest.approx(6.0)
        with pytest.raises(ConfigError, match="already registered"):
            register_loss("test_l1_gap")(lambda s, t: s)
    finally:
        LOSSES.pop("test_l1_gap", None)
