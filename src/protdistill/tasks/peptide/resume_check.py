"""Refuse to resume a StructDiff stage under settings that change what it learned.

A stage's checkpoint only makes sense with the network it was built for and the diffusion it was
trained on (timesteps, schedule, objective, signal scale). Runs saved before a setting existed
read as that setting's old behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protdistill.errors import CheckpointError, ConfigError
from protdistill.tasks.peptide.config import PeptideTrainConfig

#: Settings of the diffusion itself (top level of the peptide config).
DIFFUSION_SETTINGS = ("timesteps", "schedule", "objective", "signal_scale")
#: What a network saved before these options existed was built with.
_OLD_NETWORK = {
    "self_condition": False,
    "families": {},
    "absolute_positions": True,
    "relative_positions": 0,
}


def _trained_settings(saved: Path) -> dict[str, Any]:
    """Network and diffusion settings of a saved stage, old runs filled with old behaviour."""
    try:
        settings = json.loads(saved.read_text())["peptide"]
        before = {**_OLD_NETWORK, **settings["model"]}
        for key in DIFFUSION_SETTINGS:
            before[key] = settings.get(key, PeptideTrainConfig.model_fields[key].default)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"unreadable run settings ({type(exc).__name__}: {exc})",
            path=saved,
            fix="delete that stage folder to train it again, or pass a new --out",
        ) from exc
    return before


def check_same_settings(stage_dir: Path, cfg: PeptideTrainConfig) -> None:
    """One line naming every setting that differs from what ``stage_dir`` was trained with."""
    saved = stage_dir / "train_config.json"
    if not saved.is_file():
        return
    before = _trained_settings(saved)
    now = cfg.model.model_dump(mode="json")
    now.update({key: getattr(cfg, key) for key in DIFFUSION_SETTINGS})
    changed = {k: (before.get(k), v) for k, v in now.items() if before.get(k) != v}
    if changed:
        named = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items())
        raise ConfigError(
            f"{stage_dir} was trained with other settings ({named})",
            fix="pass a new --out, or go back to the settings that run was trained with",
        )
