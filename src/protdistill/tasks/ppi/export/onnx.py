"""ONNX export of a Siamese PPI student and an ONNX Runtime student that stands in for it.

``protdistill export RUN --format onnx --out model.onnx`` writes

    model.onnx          the pair model: tokens_a, mask_a, tokens_b, mask_b -> logits (B, 2) and
                        the pair features (B, 3D)
    model.encoder.onnx  one protein: tokens, mask -> protein_embedding (B, D)
    model.head.onnx     pair features [a+b, |a-b|, a*b] (N, 3D) -> logits (N, 2); for the
                        factorised head: protein embeddings (N, D) -> its per-protein factors
                        (beta, lambda * phi, phi, bias), from which a screen is matrix products
    model.onnx.json     manifest: format, sha256 of each graph, the student's meta, INT8 or not

Batch and length axes are dynamic. ``ppi predict`` / ``ppi screen`` take ``--onnx model.onnx``:
:class:`OnnxStudent` runs the pair graph for pairs and the encoder + head graphs for screening,
so both code paths are the PyTorch ones with ONNX Runtime underneath.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from protdistill.alphabet import VOCAB_SIZE
from protdistill.compress.onnx import export_graph, graph_weights, open_session, quantize_int8
from protdistill.errors import CheckpointError, InputError
from protdistill.io.atomic import write_json
from protdistill.progress import Log, no_log
from protdistill.students.outputs import PairOutput, symmetric_combine
from protdistill.tasks.ppi.run.embed import check_siamese

FORMAT = "protdistill-onnx/1"
GRAPHS = ("pair", "encoder", "head")
PAIR_INPUTS = ("tokens_a", "mask_a", "tokens_b", "mask_b")
FACTORS = ("beta", "phi_scaled", "phi", "bias")


def graph_paths(out: str | Path) -> dict[str, Path]:
    """Files of an export named ``out`` (``model.onnx``): each graph and the manifest."""
    out = Path(out)
    stem = out.with_suffix("")
    return {
        "pair": out,
        "encoder": stem.with_name(stem.name + ".encoder.onnx"),
        "head": stem.with_name(stem.name + ".head.onnx"),
        "manifest": out.with_name(out.name + ".json"),
        "unfinished": out.with_name(out.name + ".unfinished.json"),
    }


def check_free(out: str | Path, *, overwrite: bool) -> dict[str, Path]:
    """The export's paths, refusing (one line, before any work) files that exist unless
    ``overwrite``. An export that was cut off (its ``unfinished`` marker, written first and
    removed after the manifest, is still there) is ours to finish: its graphs are replaced."""
    paths = graph_paths(out)
    taken = [p for p in paths.values() if p.exists()]
    if taken and not overwrite and not paths["unfinished"].exists():
        what = (
            "output exists"
            if paths["manifest"].exists()
            else ("files of another export are in the way (graphs without their manifest)")
        )
        raise InputError(what, path=taken[0], fix="choose another --out or --overwrite")
    return paths


class _Encoder(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        return self.model.embed(tokens, mask)


class _Pair(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens_a: Tensor, mask_a: Tensor, tokens_b: Tensor, mask_b: Tensor):
        out = self.model(tokens_a, mask_a, tokens_b, mask_b)
        return out.logits, out.features


class _Factors(nn.Module):
    """A factorised head's per-protein factors as one graph: z (N, D) -> beta (N,),
    phi_scaled (N, W), phi (N, W), bias (1,)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, z: Tensor):
        beta, scaled, phi, bias = self.head.screen_factors(z)
        return beta, scaled, phi, bias.reshape(1)


def _factorised(model: nn.Module) -> bool:
    return hasattr(model.head, "screen_factors")


def _example(batch: int = 2, length: int = 37) -> tuple[Tensor, Tensor]:
    tokens = torch.randint(1, VOCAB_SIZE, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[-1, length // 2 :] = False
    return tokens * mask, mask


def _export_fp32(model: nn.Module, paths: dict[str, Path]) -> dict[str, str]:
    ta, ma = _example()
    tb, mb = _example(length=29)
    batch = {0: "batch"}
    seq = {0: "batch", 1: "length"}
    hashes = {
        "pair": export_graph(
            _Pair(model),
            (ta, ma, tb, mb),
            paths["pair"],
            inputs=PAIR_INPUTS,
            outputs=["logits", "features"],
            dynamic={
                "tokens_a": seq,
                "mask_a": seq,
                "tokens_b": seq,
                "mask_b": seq,
                "logits": batch,
                "features": batch,
            },
        ),  # fmt: skip
        "encoder": export_graph(
            _Encoder(model),
            (ta, ma),
            paths["encoder"],
            inputs=["tokens", "mask"],
            outputs=["protein_embedding"],
            dynamic={"tokens": seq, "mask": seq, "protein_embedding": batch},
        ),  # fmt: skip
    }
    if _factorised(model):
        z = model.embed(ta, ma).detach()
        hashes["head"] = export_graph(
            _Factors(model.head), (z,), paths["head"], inputs=["z"], outputs=list(FACTORS),
            dynamic={"z": {0: "proteins"}, **{k: {0: "proteins"} for k in FACTORS[:3]}},
        )  # fmt: skip
        return hashes
    features = symmetric_combine(model.embed(ta, ma), model.embed(tb, mb)).detach()
    hashes["head"] = export_graph(
        model.head, (features,), paths["head"], inputs=["features"], outputs=["logits"],
        dynamic={"features": {0: "pairs"}, "logits": {0: "pairs"}},
    )  # fmt: skip
    return hashes


def _calibration_feeds(model: nn.Module, batches: list[dict]) -> dict[str, list[dict]]:
    """Feeds of each graph from PPI batches (the fp32 model gives the head's features)."""
    feeds: dict[str, list[dict]] = {"pair": [], "encoder": [], "head": []}
    with torch.no_grad():
        for b in batches:
            feeds["pair"].append({k: b[k].numpy() for k in PAIR_INPUTS})
            for side in "ab":
                t, m = b[f"tokens_{side}"], b[f"mask_{side}"]
                feeds["encoder"].append({"tokens": t.numpy(), "mask": m.numpy()})
            za = model.embed(b["tokens_a"], b["mask_a"])
            zb = model.embed(b["tokens_b"], b["mask_b"])
            if _factorised(model):
                feeds["head"] += [{"z": za.numpy()}, {"z": zb.numpy()}]
            else:
                feeds["head"].append({"features": symmetric_combine(za, zb).numpy()})
    return feeds


def export_onnx(
    model: nn.Module,
    meta: dict,
    out: str | Path,
    *,
    calibration: list[dict] | None = None,
    overwrite: bool = False,
    log: Log = no_log,
) -> dict[str, Any]:
    """Export a Siamese student (eval mode) to ``out`` and its sibling graphs; with
    ``calibration`` (PPI batches) the graphs are ONNX Runtime static INT8. Returns the manifest."""
    check_siamese(model)
    paths = check_free(out, overwrite=overwrite)
    write_json(paths["unfinished"], {"format": FORMAT, "state": "export in progress"})
    model = model.eval()
    hashes = _export_fp32(model, paths)
    log(f"exported fp32 graphs: {', '.join(str(paths[g]) for g in GRAPHS)}")
    if calibration is not None:
        feeds = _calibration_feeds(model, calibration)
        for name in GRAPHS:
            hashes[name] = quantize_int8(paths[name], paths[name], feeds[name])
        log(f"ONNX Runtime static INT8 from {len(calibration)} calibration batches")
    manifest = {
        "format": FORMAT,
        "int8": calibration is not None,
        "graphs": {g: {"file": paths[g].name, "sha256": hashes[g]} for g in GRAPHS},
        "embedding_dim": int(model.embedding_dim),
        "head": "factorised" if _factorised(model) else "mlp",
        "meta": meta,
    }
    write_json(paths["manifest"], manifest)
    paths["unfinished"].unlink()
    return manifest


def read_manifest(out: str | Path) -> dict[str, Any]:
    """The checked manifest of an export (``model.onnx`` or its ``.json``)."""
    path = Path(out)
    path = path if path.suffix == ".json" else graph_paths(path)["manifest"]
    fix = "pass the model.onnx written by `protdistill export` (its .json manifest beside it)"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no ONNX export manifest here", path=path, fix=fix) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"corrupt manifest ({exc})", path=path, fix=fix) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"not a {FORMAT} manifest", path=path, fix=fix)
    return manifest | {"_dir": str(path.parent)}


class OnnxHead(nn.Module):
    """The pair head as an ONNX Runtime session: features (N, 3D) -> logits (N, 2)."""

    def __init__(self, session) -> None:
        super().__init__()
        self.session = session

    def forward(self, features: Tensor) -> Tensor:
        (logits,) = self.session.run(None, {"features": features.float().numpy()})
        return torch.from_numpy(logits)


class OnnxFactorisedHead(nn.Module):
    """A factorised head's factors as an ONNX Runtime session (``screen_factors``, what the
    screen's matrix products need; pairs go through the pair graph)."""

    def __init__(self, session) -> None:
        super().__init__()
        self.session = session

    def screen_factors(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out = self.session.run(None, {"z": z.float().numpy()})
        beta, scaled, phi, bias = (torch.from_numpy(o) for o in out)
        return beta, scaled, phi, bias[0]


class OnnxStudent(nn.Module):
    """A Siamese student served by ONNX Runtime: ``forward`` (pairs), ``embed`` and ``head``, the
    interface of the PyTorch student for prediction and screening. Holds no parameters;
    ``weights`` / ``size_mb`` are the pair graph's stored initializers, ``file_mb`` its file."""

    def __init__(self, manifest: dict[str, Any], threads: int | None = None) -> None:
        super().__init__()
        folder = Path(manifest["_dir"])
        graphs = manifest["graphs"]
        self.sessions = {
            g: open_session(
                folder / graphs[g]["file"],
                sha256=graphs[g]["sha256"],
                threads=threads,
                reuse_memory=g != "pair",  # see open_session
            )
            for g in GRAPHS
        }
        factorised = manifest.get("head") == "factorised"
        self.head = (OnnxFactorisedHead if factorised else OnnxHead)(self.sessions["head"])
        self.embedding_dim = int(manifest["embedding_dim"])
        self.digest = "onnx-" + graphs["pair"]["sha256"][:11]
        pair_file = folder / graphs["pair"]["file"]
        self.weights, weight_bytes = graph_weights(pair_file)
        self.size_mb, self.file_mb = weight_bytes / 1e6, pair_file.stat().st_size / 1e6

    def embed(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """(B, L) tokens -> (B, D) pooled protein embedding."""
        feeds = {"tokens": tokens.long().numpy(), "mask": mask.bool().numpy()}
        (emb,) = self.sessions["encoder"].run(None, feeds)
        return torch.from_numpy(emb)

    def forward(self, tokens_a: Tensor, mask_a: Tensor, tokens_b: Tensor, mask_b: Tensor):
        """(B, La), (B, La), (B, Lb), (B, Lb) -> PairOutput with logits (B, 2)."""
        feeds = dict(zip(PAIR_INPUTS, (tokens_a, mask_a, tokens_b, mask_b), strict=True))
        feeds = {k: v.bool().numpy() if k.startswith("mask") else v.long().numpy()
                 for k, v in feeds.items()}  # fmt: skip
        logits, features = self.sessions["pair"].run(None, feeds)
        return PairOutput(logits=torch.from_numpy(logits), features=torch.from_numpy(features))


def load_onnx_student(path: str | Path, threads: int | None = None) -> tuple[OnnxStudent, dict]:
    """``(OnnxStudent, meta)`` from an export; every graph is checked against its sha256."""
    manifest = read_manifest(path)
    meta = dict(manifest.get("meta") or {})
    meta["onnx"] = {"int8": bool(manifest.get("int8")), "path": str(path)}
    return OnnxStudent(manifest, threads), meta
