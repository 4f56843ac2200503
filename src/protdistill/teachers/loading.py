"""Loading ESM-2 from a hub id or a local directory (one code path), and fingerprints of what was
loaded: weights digest, architecture hash, so cached teacher outputs name their exact teacher."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError, safe_open
from torch import nn
from transformers import AutoConfig, AutoTokenizer, EsmForMaskedLM, EsmModel
from transformers.utils import cached_file
from transformers.utils import logging as hf_logging

from protdistill.errors import ModelError
from protdistill.io.integrity import sha256_file, tensor_digest

#: Config fields that change what the network computes (hashed into ``identity``).
_ARCH_KEYS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "position_embedding_type",
    "token_dropout",
    "emb_layer_norm_before",
    "layer_norm_eps",
    "hidden_act",
    "pad_token_id",
    "mask_token_id",
    "rope_theta",
)


def sha256_state_dict(module: nn.Module) -> str:
    """Hex sha256 over the names, dtypes, shapes and bytes of a module's state dict."""
    return tensor_digest(module.state_dict())


def config_hash(config: Any, vocab: dict[str, int]) -> str:
    """Hex sha256 of the architecture fields of an ``EsmConfig`` plus the tokenizer vocabulary."""
    arch = {k: getattr(config, k, None) for k in _ARCH_KEYS}
    blob = json.dumps({"arch": arch, "vocab": sorted(vocab.items())}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' loading progress bar (the library never prints)."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def weights_digest(name_or_path: str) -> str | None:
    """sha256 of the weight file(s) of a local directory or a cached hub checkpoint, else None."""
    path = Path(name_or_path)
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    else:
        files = []
        for fname in ("model.safetensors", "pytorch_model.bin"):
            try:
                found = cached_file(
                    name_or_path,
                    fname,
                    local_files_only=True,
                    _raise_exceptions_for_missing_entries=False,
                )
            except OSError:
                found = None
            if found:
                files = [Path(found)]
                break
    if not files:
        return None
    if len(files) == 1:
        return sha256_file(files[0])
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.name}:{sha256_file(f)}|".encode())
    return digest.hexdigest()


def has_lm_head(name_or_path: str, config: Any) -> bool:
    """True when the checkpoint holds a masked-LM head (weights checked when local)."""
    path = Path(name_or_path)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if files:
        for f in files:
            try:
                with safe_open(str(f), framework="pt") as fh:
                    if any(k.startswith("lm_head.") for k in fh.keys()):  # noqa: SIM118
                        return True
            except (SafetensorError, OSError) as exc:
                raise ModelError(
                    f"not a readable safetensors file ({exc})".replace("\n", " "), path=f,
                    fix="download or save the model again",
                ) from exc  # fmt: skip
        return False
    return "EsmForMaskedLM" in (getattr(config, "architectures", None) or [])


def load_esm(name_or_path: str) -> tuple[nn.Module, Any]:
    """Load ``(model, tokenizer)``: ``EsmForMaskedLM`` when an LM head exists, else ``EsmModel``."""
    fix = "pass a local ESM-2 directory or a hub id such as facebook/esm2_t6_8M_UR50D"
    path = Path(name_or_path)
    if path.is_dir() and not any(path.glob("*.safetensors")) and any(path.glob("*.bin")):
        raise ModelError(
            "the directory holds only pickled weights (*.bin); files from users are data, "
            "never code, so they are not unpickled",
            path=path,
            fix="save the model with safetensors (model.save_pretrained(dir, "
            "safe_serialization=True)) where it was made",
        )
    if path.is_dir():
        refuse_remote_code(path)
    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as exc:
        msg = f"cannot load an ESM-2 model ({exc})".replace("\n", " ")
        raise ModelError(msg, path=name_or_path, fix=fix) from exc
    if config.model_type != "esm" or getattr(config, "is_folding_model", False):
        raise ModelError(
            f"model type {config.model_type!r} is not ESM-2", path=name_or_path, fix=fix
        )
    if getattr(config, "auto_map", None):
        raise _remote_code(name_or_path, "config")
    try:
        with quiet_transformers():
            if has_lm_head(name_or_path, config):
                model = EsmForMaskedLM.from_pretrained(name_or_path, trust_remote_code=False)
            else:
                model = EsmModel.from_pretrained(
                    name_or_path, add_pooling_layer=False, trust_remote_code=False
                )
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        msg = f"cannot load the weights ({exc})".replace("\n", " ")[:400]
        raise ModelError(msg, path=name_or_path, fix=fix) from exc
    return model, tokenizer


#: Files of a model directory that can ask transformers to import code shipped with the model.
_CODE_KEYS = ("auto_map", "trust_remote_code", "custom_pipelines")


def refuse_remote_code(folder: Path) -> None:
    """Refuse a model directory whose configs ask for code of its own (``auto_map``,
    ``trust_remote_code``) or that ships Python files: models are data, never code."""
    for name in ("config.json", "tokenizer_config.json", "processor_config.json"):
        file = folder / name
        try:
            data = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
        except (OSError, ValueError) as exc:
            raise ModelError(f"unreadable {name} ({exc})".replace("\n", " "), path=file,
                             fix="download or save the model again") from exc  # fmt: skip
        if isinstance(data, dict) and any(data.get(k) for k in _CODE_KEYS):
            raise _remote_code(folder, name)
    shipped = sorted(p.name for p in folder.glob("*.py"))
    if shipped:
        raise _remote_code(folder, shipped[0])


def _remote_code(where: str | Path, name: str) -> ModelError:
    return ModelError(
        f"the model asks to run code shipped with it ({name}); models are data, never code, "
        "so it is not loaded",
        path=where,
        fix="use a standard ESM-2 checkpoint (no auto_map, no .py files)",
    )


TeacherPrecision = Literal["32", "bf16", "16"]
#: autocast dtype of each teacher precision (None: plain float32).
_AUTOCAST = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def check_precision(precision: str) -> str:
    """``precision`` if it is a teacher precision, else a one-line :class:`ModelError`."""
    if precision not in _AUTOCAST:
        raise ModelError(f"unknown teacher precision {precision!r}", fix="use 32, bf16 or 16")
    return precision


def with_precision(settings: dict, teacher: object) -> dict:
    """Cache ``settings`` of ``teacher``'s outputs: a reduced precision is added (so its entries
    get their own directory), float32 leaves the settings, and so existing caches, unchanged."""
    precision = getattr(teacher, "precision", "32")
    return settings if precision == "32" else {**settings, "precision": precision}


def autocast(precision: str, device_type: str) -> AbstractContextManager[Any]:
    """Autocast to ``precision`` on ``device_type`` (a no-op for ``32``)."""
    dtype = _AUTOCAST[check_precision(precision)]
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)
