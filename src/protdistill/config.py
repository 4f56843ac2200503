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


#: Limits on a config file: its size, and the values it may expand to through YAML aliases
#: (``&a`` / ``*a``: a "billion laughs" file is a few lines that expand to 10^9 values).
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_VALUES = 100_000


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing, unreadable, oversized or non-mapping file, or one whose
    aliases expand past :data:`MAX_CONFIG_VALUES`, is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path=path, fix="pass an existing YAML file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file is larger than {MAX_CONFIG_BYTES // 2**20} MiB",
            path=path, fix="check that this is a protdistill YAML config",
        )  # fmt: skip
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_BoundedLoader) or {}  # noqa: S506
    except _TooBig:
        raise _alias_bomb(path) from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        # ValueError: not UTF-8, or an impossible date (2001-02-30); RecursionError: deep nesting
        reason = str(exc).replace("\n", " ") or type(exc).__name__
        raise ConfigError(f"invalid YAML ({reason})", path=path,
                          fix="check the file's YAML syntax") from exc  # fmt: skip
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping of option: value", path=path)
    if _expands_past(data, MAX_CONFIG_VALUES):
        raise _alias_bomb(path)
    return data


def _alias_bomb(path: Path) -> ConfigError:
    return ConfigError(
        f"the YAML expands to more than {MAX_CONFIG_VALUES:,} values through its aliases "
        "(&name / *name)", path=path, fix="write the values out instead of nesting aliases",
    )  # fmt: skip


class _TooBig(yaml.YAMLError):
    """Merge keys (``<<: [*a, *a]``) expanded past the limit while the file was read."""


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that stops merge keys from expanding without bound: PyYAML copies
    each merged mapping, so ``<<: [*a, *a]`` nested 30 deep never finishes loading."""

    merged = 0

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        super().flatten_mapping(node)
        self.merged += len(node.value)
        if self.merged > MAX_CONFIG_VALUES:
            raise _TooBig


def _expands_past(data: Any, budget: int) -> bool:
    """True when ``data`` counted as a tree (shared / recursive references counted each time
    they appear) holds more than ``budget`` values; stops counting as soon as it does."""
    stack, seen = [data], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > budget:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)
    return False


def check_confined(
    data: dict[str, Any], root: str | Path, fields: tuple[str, ...], path: Path
) -> None:
    """Refuse a config read from a folder someone handed over (a run directory) whose path
    ``fields`` point outside ``root``: an absolute path, ``..`` out of it, or a link out.
    Relative paths are taken from ``root``. A config there is data; it must not steer reads."""
    root = Path(root).resolve()
    for name in fields:
        values = data.get(name)
        for value in values if isinstance(values, list) else [values]:
            if value is None:
                continue
            text = str(value)
            if Path(text).is_absolute() or not (root / text).resolve().is_relative_to(root):
                raise ConfigError(
                    f"{name}={text!r} points outside {root}; refusing to follow it",
                    path=path,
                    fix=f"remove {name} from this config.yaml, or pass it on the command line",
                )


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
