"""Artefacts from someone else are data, never code, and never a way to read other files:
safetensors with lying headers, an ONNX graph whose external data points out of its folder,
a teacher directory asking for remote code, configs and manifests naming paths outside their
folder. Each is refused with one line naming the file and a fix."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from protdistill.cli.main import main
from protdistill.compress.onnx import graph_weights, open_session
from protdistill.config import check_confined, read_yaml
from protdistill.distill.checkpoint import load_model_state, save_model
from protdistill.errors import CheckpointError, ConfigError, ModelError
from protdistill.io.readback import read_tensors
from protdistill.teachers.loading import load_esm
from protdistill.testing import save_tiny_esm


def _one_line(exc: BaseException, *words: str) -> str:
    message = str(exc)
    assert "\n" not in message and "fix:" in message, message
    for word in words:
        assert word in message, message
    return message


def _rewrite_header(path: Path, edit) -> Path:  # noqa: ANN001 - edit(header dict) -> header
    """Write ``path`` again with its JSON header changed by ``edit`` (data bytes kept)."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = edit(json.loads(raw[8 : 8 + n]))
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    out = path.with_name("lying.safetensors")
    out.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + n :])
    return out


def _overlap(h: dict) -> dict:
    h["b"]["data_offsets"] = list(h["a"]["data_offsets"])
    return h


def _huge_tensor(h: dict) -> dict:
    h["b"]["shape"], h["b"]["data_offsets"] = [2**40], [h["b"]["data_offsets"][0], 2**42]
    return h


@pytest.mark.parametrize(
    "lie",
    ["huge-header-length", "overlapping-offsets", "huge-tensor", "header-past-file"],
)
def test_safetensors_with_a_lying_header_is_refused(tmp_path, lie) -> None:
    good = save_model(tmp_path / "m.safetensors", {"a": torch.ones(4), "b": torch.zeros(4)}, {})
    if lie == "huge-header-length":
        bad = tmp_path / "lying.safetensors"
        bad.write_bytes(struct.pack("<Q", 2**62) + good.read_bytes()[8:])
    elif lie == "header-past-file":
        bad = tmp_path / "lying.safetensors"
        raw = good.read_bytes()
        bad.write_bytes(struct.pack("<Q", len(raw)) + raw[8:])
    else:
        bad = _rewrite_header(good, _overlap if lie == "overlapping-offsets" else _huge_tensor)
    with pytest.raises(CheckpointError) as err:
        load_model_state(bad)
    _one_line(err.value, str(bad), "not a readable safetensors file")
    with pytest.raises(CheckpointError) as err:
        read_tensors(bad, fix="start over")
    _one_line(err.value, str(bad))


def test_a_teacher_directory_with_lying_weights_is_refused(tmp_path) -> None:
    folder = Path(save_tiny_esm(tmp_path / "teacher"))
    weights = folder / "model.safetensors"
    weights.write_bytes(struct.pack("<Q", 2**62) + weights.read_bytes()[8:])
    with pytest.raises(ModelError) as err:
        load_esm(str(folder))
    _one_line(err.value, "model.safetensors")


def _graph_with_external_data(folder: Path, location: str) -> Path:
    """A MatMul graph whose weight ``W`` is stored "externally" at ``location``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2, 2), np.float32), "W")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, "offset": "0", "length": "16"}.items():
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g", [x], [y],
                              [weight])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "link/secret"])
def test_onnx_external_data_outside_the_folder_is_refused(tmp_path, location) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(np.full((2, 2), 7, np.float32).tobytes())
    (tmp_path / "export" / "deep").mkdir(parents=True)
    (tmp_path / "export" / "deep" / "link").symlink_to(outside)  # a link out of the folder
    path = _graph_with_external_data(tmp_path / "export" / "deep", location)
    for load in (open_session, graph_weights):
        with pytest.raises(ModelError) as err:
            load(path)
        _one_line(err.value, str(path), repr(location), "outside the model's folder")


def test_onnx_external_data_inside_the_folder_still_loads(tmp_path) -> None:
    path = _graph_with_external_data(tmp_path / "export", "weights.bin")
    (tmp_path / "export" / "weights.bin").write_bytes(np.eye(2, dtype=np.float32).tobytes())
    session = open_session(path, threads=1)
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], x)
    assert graph_weights(path) == (4, 16)


MARKER = "remote-code-ran"


def _teacher_asking_for_code(tmp_path: Path, how: str) -> Path:
    """A tiny ESM-2 directory that asks transformers to import its own Python file, which
    would leave a marker file if it ever ran."""
    folder = Path(save_tiny_esm(tmp_path / "teacher"))
    code = f"open({str(tmp_path / MARKER)!r}, 'w').write('ran')\n"
    (folder / "modeling_evil.py").write_text(code)
    if how == "py-file-only":
        return folder
    name = "tokenizer_config.json" if how == "tokenizer-auto-map" else "config.json"
    config = json.loads((folder / name).read_text())
    if how == "trust-remote-code":
        config["trust_remote_code"] = True
    else:
        key = "AutoTokenizer" if how == "tokenizer-auto-map" else "AutoModel"
        config["auto_map"] = {key: "modeling_evil.EvilModel"}
    (folder / name).write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    "how", ["config-auto-map", "tokenizer-auto-map", "trust-remote-code", "py-file-only"]
)
def test_a_teacher_asking_for_remote_code_is_refused_and_runs_nothing(tmp_path, how) -> None:
    folder = _teacher_asking_for_code(tmp_path, how)
    with pytest.raises(ModelError) as err:
        load_esm(str(folder))
    _one_line(err.value, str(folder), "never code")
    assert not (tmp_path / MARKER).exists()


def test_the_cli_refuses_a_remote_code_teacher_in_one_line(tmp_path, monkeypatch, capfd) -> None:
    folder = _teacher_asking_for_code(tmp_path, "config-auto-map")
    (tmp_path / "p.fasta").write_text(
        "".join(f">P{i}\nMKTAYIAK{'ACDEFGHIKL'[i]}\n" for i in range(10))
    )
    (tmp_path / "p.tsv").write_text(
        "".join(f"P{i}\tP{j}\t{(i + j) % 2}\n" for i in range(10) for j in range(i + 1, 10))
    )
    argv = [
        "protdistill",
        "ppi",
        "embed",
        "--out",
        str(tmp_path / "run"),
        "--teacher",
        str(folder),
        "--pairs",
        str(tmp_path / "p.tsv"),
        "--fasta",
        str(tmp_path / "p.fasta"),
    ]
    monkeypatch.setattr("sys.argv", argv)  # fmt: skip
    with pytest.raises(SystemExit) as code:
        main()
    lines = capfd.readouterr().err.strip().splitlines()
    assert code.value.code == 2 and lines[-1].startswith("error: "), lines
    assert "never code" in lines[-1] and not any("Traceback" in line for line in lines), lines
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("cache", ["/etc", "../../../etc", "escape"])
def test_a_run_config_naming_paths_outside_its_folder_is_refused(tmp_path, cache) -> None:
    run = tmp_path / "runs" / "guo"
    run.mkdir(parents=True)
    (run / "escape").symlink_to(tmp_path)
    (run / "config.yaml").write_text(f"cache: {cache}\nfasta: seqs.fasta\n")
    data = read_yaml(run / "config.yaml")
    with pytest.raises(ConfigError) as err:
        check_confined(data, run, ("cache", "fasta"), run / "config.yaml")
    _one_line(err.value, "config.yaml", f"cache={cache!r}", "outside")
    check_confined({"cache": "teacher_cache", "fasta": None}, run, ("cache", "fasta"), run)


@pytest.mark.parametrize("weights", ["../../outside.safetensors", "/etc/passwd", "sub/x"])
def test_a_compressed_model_manifest_naming_weights_elsewhere_is_refused(tmp_path, weights) -> None:
    from protdistill.compress.artifact import FORMAT, MANIFEST, load_compressed

    folder = tmp_path / "compressed"
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"format": FORMAT, "version": 1, "weights": weights}))
    with pytest.raises(CheckpointError) as err:
        load_compressed(folder)
    _one_line(err.value, MANIFEST, "outside its folder")


def _handed_over_run(root: Path, cache: str) -> list[str]:
    """A tiny run folder (student, teacher head, a config.yaml naming ``cache``) and the
    `ppi evaluate --teacher` command line that scores it."""
    from protdistill.students import build_student
    from protdistill.tasks.ppi.run.teacher_head import TeacherHead

    run = root / "runs" / "theirs"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"cache: {cache}\n")
    spec = {"kind": "resnet1d", "embed_dim": 8, "channels": [8], "hidden": 8}
    meta = {"student": spec, "ppi": {"max_residues": 64}}
    save_model(run / "student.safetensors", build_student(spec).eval(), meta)
    teacher = save_tiny_esm(root / "teacher")
    dim = json.loads((root / "teacher" / "config.json").read_text())["hidden_size"]
    (run / "teacher").mkdir()
    save_model(run / "teacher" / "head.safetensors", TeacherHead(dim, 8), {"dim": dim, "hidden": 8})
    (root / "p.fasta").write_text("".join(f">P{i}\nMKTAYIAK{'ACDEFGHIKL'[i]}\n" for i in range(6)))
    (root / "p.tsv").write_text("".join(f"P{i}\tP{i + 1}\t{i % 2}\n" for i in range(5)))
    return ["protdistill", "ppi", "evaluate", "--model", str(run), "--teacher", teacher,
            "--pairs", str(root / "p.tsv"), "--fasta", str(root / "p.fasta")]  # fmt: skip


@pytest.mark.parametrize("cache", ["/tmp/elsewhere", "../../../elsewhere", "runs/escape"])
def test_evaluate_teacher_does_not_follow_a_run_config_out(tmp_path, monkeypatch, capfd, cache):
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    argv = _handed_over_run(work, cache)
    (work / "runs" / "escape").symlink_to(outside)
    monkeypatch.chdir(work)
    monkeypatch.setattr("sys.argv", [*argv, "--out", "refused"])
    with pytest.raises(SystemExit) as code:
        main()
    lines = capfd.readouterr().err.strip().splitlines()
    assert code.value.code == 2 and not any("Traceback" in line for line in lines), lines
    assert "cache=" in lines[-1] and "outside" in lines[-1] and "config.yaml" in lines[-1]
    assert not list(outside.iterdir()) and not Path("/tmp/elsewhere").exists()
    # the user names a cache of their own: scored, and written only there
    monkeypatch.setattr("sys.argv", [*argv, "--out", "scored", "--cache", "mine"])
    with pytest.raises(SystemExit) as code:
        main()
    assert code.value.code == 0
    assert "teacher" in json.loads((work / "scored" / "metrics.json").read_text())
    assert list((work / "mine").iterdir()) and not list(outside.iterdir())
