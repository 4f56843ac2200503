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
from safetensors import safe_open
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
            with safe_open(str(f), framework="pt") as fh:
                if any(k.startswith("lm_head.") for k in fh.keys()):  # noqa: SIM118
                    return True
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
    try:
        config = AutoConfig.from_pretrained(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError, TypeError) as exc:
        msg = f"cannot load an ESM-2 model ({exc})".replace("\n", " ")
        raise ModelError(msg, path=name_or_path, fix=fix) from exc
    if config.model_type != "esm" or getattr(config, "is_folding_model", False):
        raise ModelError(
            f"model type {config.model_type!r} is not ESM-2", path=name_or_path, fix=fix
        )
    with quiet_transformers():
        if has_lm_head(name_or_path, config):
            model = EsmForMaskedLM.from_pretrained(name_or_path)
        else:
            model = EsmModel.from_pretrained(name_or_path, add_pooling_layer=False)
    return model, tokenizer


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
