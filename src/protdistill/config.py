"""Config objects: one pydantic model per task, filled from defaults < YAML file < CLI options."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from protdistill.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


class Config(BaseModel):
    """Base for every config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or non-mapping content is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path=path, fix="pass an existing YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML ({exc})".replace("\n", " "), path=path) from exc
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping of option: value", path=path)
    return data


def resolve(cls: type[C], path: str | Path | None = None, **overrides: Any) -> C:
    """Build ``cls`` from its defaults, then the YAML file, then non-None ``overrides``."""
    data = read_yaml(path) if path else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ConfigError(
            f"{field}: {first['msg']}",
            path=path,
            fix=f"see the {cls.__name__} fields in the docs or `--help`",
        ) from exc


def plain_data(obj: Any) -> Any:
    """JSON-like copy (str/int/float/bool/None, lists, dicts) so ``weights_only`` loading works."""
    if isinstance(obj, dict):
        return {str(k): plain_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain_data(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)
