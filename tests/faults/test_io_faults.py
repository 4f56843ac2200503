"""Every write, fsync and rename of a small `compress`, `export`, `ppi embed`, `ppi screen` and
`peptide sample` (and an even sample of 30 along a small `ppi run`) fails once, in turn
(ENOSPC and EACCES alternately): each failure ends with one line naming the path and a fix and
a non-zero exit code, leaves no partial file under a final name (nor a temporary file), and
running the same command again once the fault is gone gives what an undisturbed run gives."""

from __future__ import annotations

import errno
import json
import random
import re
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from protdistill.cli.main import main
from protdistill.distill.checkpoint import load_torch, save_model
from protdistill.io.pairs import Pair
from protdistill.students import build_student
from protdistill.tasks.ppi.common.data import save_split
from protdistill.testing import save_tiny_esm

AA = "ACDEFGHIKLMNPQRSTVWY"
#: Report fields that differ on every run: wall-clock measurements and what this invocation
#: itself did (a resumed screen scores fewer pairs than the first).
_TIMING = re.compile(r"ms|per_s|faster|speedup|second|time|wall|throughput|this_run")


def _inputs(root: Path) -> dict[str, str]:
    """A FASTA, pairs, a trained-looking run directory and a tiny teacher under ``root``."""
    rng = random.Random(0)
    seqs = {f"P{i}": "".join(rng.choice(AA) for _ in range(rng.randint(20, 40))) for i in range(12)}
    (root / "seqs.fasta").write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    ids = sorted(seqs)
    pairs = [Pair(ids[i % 12], ids[(i + 1 + i // 12) % 12], float(i % 2)) for i in range(24)]
    (root / "pairs.tsv").write_text("".join(f"{p.a}\t{p.b}\t{int(p.label)}\n" for p in pairs))
    run = root / "run"
    run.mkdir()
    split = {"train": list(range(16)), "val": list(range(16, 20)), "test": list(range(20, 24))}
    save_split(run / "split.json", pairs, split)
    spec = {"kind": "resnet1d", "embed_dim": 8, "channels": [8], "hidden": 8}
    torch.manual_seed(0)
    ppi = {"max_residues": 64, "fasta": str(root / "seqs.fasta"), "pairs": str(root / "pairs.tsv")}
    save_model(
        run / "student.safetensors", build_student(spec).eval(), {"student": spec, "ppi": ppi}
    )
    teacher = save_tiny_esm(root / "teacher")
    return {"run": str(run), "teacher": teacher, "fasta": str(root / "seqs.fasta"),
            "pairs": str(root / "pairs.tsv"), "peptide": str(_peptide_model(root))}  # fmt: skip


def _peptide_model(root: Path) -> Path:
    """A tiny StructDiff with random weights (an untrained one samples all-zero outputs)."""
    from protdistill.tasks.peptide.denoiser import DenoiserConfig
    from protdistill.tasks.peptide.diffusion import GaussianDiffusion
    from protdistill.tasks.peptide.model import StructDiff, StructDiffNet

    cfg = DenoiserConfig(embed_dim=8, d_model=16, layers=1, heads=2, num_types=1, max_length=9)
    model = StructDiff(StructDiffNet(cfg, 16), GaussianDiffusion(20), ["amp"], {"amp": {5: 1}})
    gen = torch.Generator().manual_seed(0)
    for param in model.net.parameters():
        param.data = torch.randn(param.shape, generator=gen) * 0.5
    return model.save(root / "peptide.safetensors")


COMMANDS = {
    "compress": ["compress", "{run}", "--out", "{out}/comp", "--method", "quantize",
                 "--bench-batch", "4", "--bench-repeats", "1", "--calibration-batches", "1"],
    "export": ["export", "{run}", "--out", "{out}/m.onnx"],
    "ppi-screen": ["ppi", "screen", "--model", "{run}", "--fasta", "{fasta}", "--out",
                   "{out}/hits.tsv.gz", "--top-k", "3", "--reference", "4"],
    "ppi-run": ["ppi", "run", "--out", "{out}/run", "--teacher", "{teacher}", "--pairs",
                "{pairs}", "--fasta", "{fasta}", "--split", "random", "--epochs", "1",
                "--batch-size", "8", "--head-epochs", "5", "--head-crossfit", "2",
                "--no-progress"],
    "ppi-embed": ["ppi", "embed", "--out", "{out}/run", "--teacher", "{teacher}", "--pairs",
                  "{pairs}", "--fasta", "{fasta}", "--split", "random"],
    "peptide-sample": ["peptide", "sample", "--model", "{peptide}", "--type", "amp", "--n", "6",
                       "--steps", "4", "--batch-size", "2", "--out", "{out}/s.fasta"],
}  # fmt: skip


#: Faults injected per command at most (a long command's events are sampled evenly).
MAX_TRIALS = 30


def _run(args: list[str], capfd) -> tuple[int, list[str]]:  # noqa: ANN001
    sys.argv = ["protdistill", "--quiet", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    return code, capfd.readouterr().err.strip().splitlines()


def _content(path: Path, out: Path) -> object:
    """What a file holds, for comparison (``out`` written as ``<out>``): tensors and metadata of
    safetensors (their header order varies), JSON without wall-clock fields, else the bytes."""
    if path.suffix == ".safetensors":
        with safe_open(str(path), "pt") as fh:
            meta = {k: v.replace(str(out), "<out>") for k, v in (fh.metadata() or {}).items()}
            return meta, {k: fh.get_tensor(k).tolist() for k in fh.keys()}  # noqa: SIM118
    if path.suffix == ".ckpt":  # a zip whose bytes vary run to run: compare what it holds
        ckpt = load_torch(path)
        weights = {k: v.tolist() for k, v in ckpt.get("state_dict", {}).items()}
        return ckpt.get("epoch"), ckpt.get("global_step"), weights
    if path.suffix == ".json":
        return _untimed(json.loads(path.read_text().replace(str(out), "<out>")))
    return path.read_bytes().replace(str(out).encode(), b"<out>")


def _untimed(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if not _TIMING.search(str(k))}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def _files(out: Path) -> dict[str, object]:
    """Every file under ``out`` (logs aside: *.log and Lightning's own appended CSV log, which
    the run's atomic history.json / metrics.csv repeat) by relative path."""
    return {
        str(p.relative_to(out)): _content(p, out)
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.suffix != ".log" and "lightning_logs" not in p.parts
    }


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_write_fsync_and_rename_can_fail(tmp_path, io_faults, capfd, command) -> None:
    inputs = _inputs(tmp_path)

    def args(out: Path) -> list[str]:
        return [a.format(out=out, **inputs) for a in COMMANDS[command]]

    io_faults.arm(None)
    code, lines = _run(args(tmp_path / "clean"), capfd)
    assert code == 0, lines
    expected, counts = _files(tmp_path / "clean"), dict(io_faults.counts)
    assert counts.get("rename", 0) >= 1 and counts.get("fsync", 0) >= 2, counts  # hooks reached
    trials = [
        (kind, n) for kind in ("write", "fsync", "rename") for n in range(1, counts[kind] + 1)
    ]
    trials = trials[:: max(1, len(trials) // MAX_TRIALS)]  # long commands: an even sample
    for i, (kind, n) in enumerate(trials):
        out = tmp_path / f"t{i}"
        code_no = errno.ENOSPC if i % 2 == 0 else errno.EACCES
        io_faults.arm(kind, n, code_no)
        code, lines = _run(args(out), capfd)
        where = f"{command}: {kind} #{n} ({errno.errorcode[code_no]}) on {io_faults.fired}"
        assert io_faults.fired is not None, where
        if code != 0:  # the usual case; a library may also retry or skip an optional write
            err = lines[-1] if lines else ""
            assert err.startswith("error: ") and "fix:" in err, (where, lines)
            assert str(tmp_path) in err and not any("Traceback" in x for x in lines), (where, lines)
            assert sum(x.startswith("error: ") for x in lines) == 1, (where, lines)
        left = sorted(p.name for p in out.rglob("*.tmp")) if out.exists() else []
        assert not left, (where, left)
        if out.exists():
            _check_no_partial_files(_files(out), expected, where)
        io_faults.arm(None)
        code, lines = _run(args(out), capfd)
        assert code == 0, (where, "re-run", lines)
        assert _files(out) == expected, (where, "re-run differs")


#: Files whose finished content may be a prefix of the run's work (progress bookkeeping), and
#: folders of resume state that a finished command removes (a screen's OUT.parts/).
_PROGRESS = ("manifest.json", ".unfinished.json")
_RESUME_STATE = ".parts"


def _check_no_partial_files(found: dict[str, object], expected: dict[str, object], where) -> None:  # noqa: ANN001
    """Every file under a final name is complete: identical to the undisturbed run's, or a
    progress record that is itself a whole, readable file."""
    for name, content in found.items():
        if name.endswith(_PROGRESS) or name.split("/")[0].endswith(_RESUME_STATE):
            continue  # parsed by _content already: a torn JSON would have raised
        assert name in expected and content == expected[name], (where, name)
