"""A training objective as a weighted sum of named loss terms, declared in a config.

YAML example (``ce + kd + map`` for a pair student)::

    terms:
      - {name: ce,  loss: ce,  student: logits, labels: labels}
      - {name: kd,  loss: kd,  weight: 0.5, student: logits, teacher: logits,
         params: {temperature: 4.0}}
      - {name: map, loss: map, weight: 0.1, student: interaction_map, teacher: pair_map,
         inputs: {mask_a: mask_a, mask_b: mask_b}, params: {mode: mse}}
      - {name: feat, loss: feature, student: hidden, teacher: "teacher.encoder.layer.5",
         mask: mask, projector: [128, 320]}

How tensors are found: ``forward(student, teacher, batch)`` takes three mappings (or dataclasses,
e.g. a model output). A term's ``student`` key is looked up in ``student``, its ``teacher`` key in
``teacher``, and ``mask`` / ``labels`` / ``inputs`` keys in ``batch``. Prefix a key with
``student.``, ``teacher.`` or ``batch.`` to read it from another source; any other dots are part of
the key (so module paths captured by :class:`~protdistill.distill.hooks.FeatureCapture` work).

The loss is called as ``fn(student, teacher, mask=..., labels=..., **inputs, **params)`` (no
teacher argument when ``teacher`` is unset, absent keywords are not passed). Terms with weight 0
are skipped entirely. ``projector: [student_dim, teacher_dim]`` puts a learned
:class:`~protdistill.distill.losses.FeatureProjector` on the student tensor; it is a submodule, so
the optimizer of the module owning the objective trains it.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from torch import Tensor, nn

from protdistill.config import Config, read_yaml
from protdistill.distill import losses
from protdistill.errors import ConfigError, ModelError

__all__ = [
    "LOSSES",
    "Objective",
    "ObjectiveConfig",
    "ObjectiveOutput",
    "TermConfig",
    "register_loss",
]

LossFn = Callable[..., Tensor]
F = TypeVar("F", bound=LossFn)
LOSSES: dict[str, LossFn] = {}
SOURCES = ("student", "teacher", "batch")


def register_loss(name: str, *aliases: str) -> Callable[[F], F]:
    """Decorator registering a loss under ``name`` (and ``aliases``) for use in configs."""

    def decorator(fn: F) -> F:
        for key in (name, *aliases):
            if key in LOSSES and LOSSES[key] is not fn:
                raise ConfigError(f"loss name {key!r} is already registered", record=key)
            LOSSES[key] = fn
        return fn

    return decorator


register_loss("kd_kl", "kd")(losses.kd_kl)
register_loss("response_kd", "response")(losses.response_kd)
register_loss("cross_entropy", "ce")(losses.cross_entropy)
register_loss("feature_kd", "feature")(losses.feature_kd)
register_loss("similarity_kd", "similarity")(losses.similarity_kd)
register_loss("rkd_distance")(losses.rkd_distance)
register_loss("rkd_angle")(losses.rkd_angle)
register_loss("attention_kd", "attention")(losses.attention_kd)
register_loss("map_kd", "map")(losses.map_kd)


class TermConfig(Config):
    """One weighted loss term; keys name tensors (see the module docs for lookup rules)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    loss: str
    weight: float = Field(1.0, ge=0.0)
    student: str
    teacher: str | None = None
    mask: str | None = None
    labels: str | None = None
    inputs: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    projector: tuple[int, int] | None = None

    @field_validator("name")
    @classmethod
    def _not_loss(cls, name: str) -> str:
        if name == "loss":
            raise ValueError("'loss' is reserved for the total; choose another term name")
        return name


class ObjectiveConfig(Config):
    """The list of terms; names must be unique."""

    terms: list[TermConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> ObjectiveConfig:
        names = [t.name for t in self.terms]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ValueError(f"duplicate term names: {', '.join(dups)}")
        return self


@dataclasses.dataclass
class ObjectiveOutput:
    """``total`` = Σ weight · term; ``terms`` holds the *unweighted* value of each active term."""

    total: Tensor
    terms: dict[str, Tensor]

    def log_dict(self) -> dict[str, Tensor]:
        """``{"loss": total, **terms}``, the shape ``DistillModule.step`` returns."""
        return {"loss": self.total, **self.terms}


def _validate(data: Any, path: str | Path | None) -> ObjectiveConfig:
    if isinstance(data, ObjectiveConfig):
        return data
    if isinstance(data, Sequence) and not isinstance(data, str):
        data = {"terms": list(data)}
    try:
        return ObjectiveConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ConfigError(
            f"{where}: {first['msg']}",
            path=path,
            record="objective",
            fix="each term needs name, loss, student (see ObjectiveConfig / TermConfig fields)",
        ) from exc


def _as_mapping(value: Any, source: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise ModelError(
        f"{source} outputs must be a mapping or a dataclass, got {type(value).__name__}",
        record="Objective.forward",
    )


class Objective(nn.Module):
    """Weighted sum of registered losses, built from an :class:`ObjectiveConfig`."""

    def __init__(
        self,
        cfg: ObjectiveConfig | Mapping[str, Any] | Sequence[Any],
        *,
        path: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.cfg = _validate(cfg, path)
        self.path = None if path is None else str(path)
        self.active = [t for t in self.cfg.terms if t.weight > 0]
        if not self.active:
            raise self._error("every term has weight 0", None, "give one term a weight > 0")
        self.projectors = nn.ModuleDict()
        for term in self.cfg.terms:
            self._check_term(term)
            if term.projector is not None:
                self.projectors[term.name] = losses.FeatureProjector(*term.projector)

    @classmethod
    def from_yaml(cls, path: str | Path, key: str | None = None) -> Objective:
        """Build from a YAML file holding ``terms:`` (under ``key`` when given)."""
        data = read_yaml(path)
        if key is not None:
            if key not in data:
                raise ConfigError(f"no {key!r} section", path=path, fix=f"add '{key}: terms: ...'")
            data = data[key]
        return cls(data, path=path)

    def _error(self, message: str, term: TermConfig | None, fix: str) -> ConfigError:
        record = "objective" if term is None else f"term {term.name!r} (loss {term.loss!r})"
        return ConfigError(message, path=self.path, record=record, fix=fix)

    def _check_term(self, term: TermConfig) -> None:
        if term.loss not in LOSSES:
            close = difflib.get_close_matches(term.loss, list(LOSSES), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise self._error(
                f"unknown loss {term.loss!r}", term, f"{hint}known: {', '.join(sorted(LOSSES))}"
            )
        args, kwargs = self._placeholders(term)
        try:
            inspect.signature(LOSSES[term.loss]).bind(*args, **kwargs)
        except TypeError as exc:
            raise self._error(
                f"cannot call {term.loss}: {exc}",
                term,
                "set teacher/mask/labels/inputs/params to match the loss's arguments",
            ) from exc

    @staticmethod
    def _placeholders(term: TermConfig) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = [term.student] + ([term.teacher] if term.teacher is not None else [])
        kwargs: dict[str, Any] = {}
        if term.mask is not None:
            kwargs["mask"] = term.mask
        if term.labels is not None:
            kwargs["labels"] = term.labels
        for name, key in {**term.inputs, **term.params}.items():
            if name in kwargs:
                raise ConfigError(
                    f"argument {name!r} is given twice",
                    record=f"term {term.name!r}",
                    fix="set it once (mask/labels fields, inputs or params)",
                )
            kwargs[name] = key
        return args, kwargs

    def _lookup(
        self, key: str, default: str, sources: Mapping[str, Mapping[str, Any]], term: TermConfig
    ) -> Tensor:
        source, sep, rest = key.partition(".")
        if not (sep and source in SOURCES):
            source, rest = default, key
        found = sources[source].get(rest)
        if found is None:
            known = ", ".join(sorted(map(str, sources[source]))) or "none"
            raise self._error(
                f"no tensor {rest!r} in the {source} outputs",
                term,
                f"use one of the {source} keys: {known}",
            )
        return found

    def forward(
        self,
        student: Mapping[str, Any] | Any,
        teacher: Mapping[str, Any] | Any = None,
        batch: Mapping[str, Any] | Any = None,
    ) -> ObjectiveOutput:
        """Evaluate every active term; returns the weighted total and the unweighted terms."""
        sources = {
            "student": _as_mapping(student, "student"),
            "teacher": _as_mapping(teacher, "teacher"),
            "batch": _as_mapping(batch, "batch"),
        }
        values: dict[str, Tensor] = {}
        weighted: list[Tensor] = []
        for term in self.active:
            s = self._lookup(term.student, "student", sources, term)
            if term.name in self.projectors:
                s = self.projectors[term.name](s)
            args = [s]
            if term.teacher is not None:
                args.append(self._lookup(term.teacher, "teacher", sources, term))
            kwargs = {
                name: self._lookup(key, "batch", sources, term) for name, key in self._keys(term)
            }
            value = LOSSES[term.loss](*args, **kwargs, **term.params)
            values[term.name] = value
            weighted.append(term.weight * value)
        return ObjectiveOutput(total=sum(weighted[1:], weighted[0]), terms=values)

    @staticmethod
    def _keys(term: TermConfig) -> list[tuple[str, str]]:
        keys = [("mask", term.mask), ("labels", term.labels), *term.inputs.items()]
        return [(name, key) for name, key in keys if key is not None]

    def extra_repr(self) -> str:
        return " + ".join(f"{t.weight:g}·{t.loss}[{t.name}]" for t in self.active)
