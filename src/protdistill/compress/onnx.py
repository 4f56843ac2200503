"""ONNX graphs of trained modules and ONNX Runtime sessions over them (task-agnostic).

Export uses PyTorch's TorchScript-based exporter (``dynamo=False``): with torch 2.13 the
``torch.export`` route specialises the sequence length of the ResNet-1D encoder (its pad-to-stride
arithmetic becomes a guard), so a graph traced at length 101 refuses length 57. The TorchScript
exporter keeps both batch and length symbolic, which the tests check at several lengths.
INT8 uses ONNX Runtime's own static quantizer (QDQ, per-channel weights, calibrated activations).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from protdistill.errors import ModelError
from protdistill.io.atomic import atomic_path
from protdistill.io.integrity import sha256_file
from protdistill.progress import verbosity

OPSET = 17


def export_graph(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: str | Path,
    *,
    inputs: Sequence[str],
    outputs: Sequence[str],
    dynamic: dict[str, dict[int, str]],
) -> str:
    """Write ``module`` (eval mode) as an ONNX graph with the named ``dynamic`` axes, atomically;
    returns the file's sha256. The graph is checked by ``onnx.checker`` before it is kept."""
    import onnx  # lazy: start-up time

    module.eval()
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            example,
            str(tmp),
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
        onnx.checker.check_model(str(tmp))
    return sha256_file(path)


def open_session(
    path: str | Path,
    *,
    sha256: str | None = None,
    threads: int | None = None,
    reuse_memory: bool = True,
):
    """An ONNX Runtime CPU session for ``path``; with ``sha256`` the file must match it first.

    ``reuse_memory=False`` works around an ONNX Runtime 1.32 planner fault: in a graph with two
    independent length axes (a pair model) it may reuse a buffer of one side's pooled mask for
    the other's ("Shape mismatch attempting to re-use buffer", e.g. lengths 4 and 2)."""
    import onnxruntime as ort  # lazy: start-up time

    path = Path(path)
    if not path.is_file():
        raise ModelError("ONNX file not found", path=path, fix="re-run `protdistill export`")
    if sha256 is not None and sha256_file(path) != sha256:
        raise ModelError(
            "ONNX file does not match its manifest (corrupt or replaced)",
            path=path,
            fix="re-run `protdistill export` from the run directory",
        )
    check_external_data(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.enable_mem_reuse = reuse_memory
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelError(
            f"ONNX Runtime cannot load this graph: {first}",
            path=path,
            fix="re-run `protdistill export` (the file is not a protdistill ONNX graph)",
        ) from None


class _Feeds:
    """ONNX Runtime's CalibrationDataReader protocol over a list of feed dicts."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]) -> None:
        self._items = iter(list(feeds))

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize_int8(
    src: str | Path, dst: str | Path, calibration: Iterable[dict[str, np.ndarray]]
) -> str:
    """ONNX Runtime static INT8 (QDQ: per-channel int8 weights, uint8 activations calibrated by
    min/max on ``calibration`` feeds) of ``src`` into ``dst``; returns dst's sha256. The graph is
    pre-processed first (shape inference, conv-BN fusion), as ONNX Runtime recommends."""
    from onnxruntime import quantization as q  # lazy: start-up time
    from onnxruntime.quantization.shape_inference import quant_pre_process  # lazy: as above

    feeds = list(calibration)
    if not feeds:
        raise ModelError(
            "INT8 quantization needs calibration inputs", path=src, fix="give calibration pairs"
        )
    root = logging.getLogger()
    level = root.level
    if verbosity() < 2:  # the quantizer prints its advice on the root logger (--verbose: keep)
        root.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp_dir, atomic_path(dst) as tmp:
            pre = Path(tmp_dir) / "pre.onnx"
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            q.quantize_static(
                str(pre),
                str(tmp),
                _Feeds(feeds),
                quant_format=q.QuantFormat.QDQ,
                activation_type=q.QuantType.QUInt8,
                weight_type=q.QuantType.QInt8,
                per_channel=True,
                calibrate_method=q.CalibrationMethod.MinMax,
            )
    finally:
        root.setLevel(level)
    return sha256_file(dst)


def graph_weights(path: str | Path) -> tuple[int, int]:
    """(stored weight values, their bytes) of an ONNX graph's initializers."""
    import onnx  # lazy: start-up time
    from onnx import numpy_helper

    check_external_data(path)
    arrays = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer]
    return sum(a.size for a in arrays), sum(a.nbytes for a in arrays)


def check_external_data(path: str | Path) -> None:
    """Refuse a graph whose tensors take their data from a file outside its own folder
    (``../../etc/passwd``, an absolute path, a link out): a model is data, and reading it must
    not read anything else. protdistill's own exports keep every weight inside the .onnx."""
    import onnx  # lazy: start-up time

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors are untyped
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"not an ONNX graph ({first})", path=path,
                         fix="re-run `protdistill export`") from None  # fmt: skip
    root = path.resolve().parent
    for tensor in _tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        where = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = (root / where).resolve()
        if not where or Path(where).is_absolute() or not target.is_relative_to(root):
            raise ModelError(
                f"tensor {tensor.name!r} takes its data from {where!r}, outside the model's "
                "folder; refusing to read it",
                path=path,
                fix="use a graph written by `protdistill export` (weights inside the .onnx)",
            )


def _tensors(graph) -> Iterable:  # noqa: ANN001 - onnx.GraphProto, imported lazily
    """Every tensor of ``graph`` and its subgraphs: initializers and node attributes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            yield from ([attr.t] if attr.HasField("t") else [])
            yield from attr.tensors
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _tensors(sub)
