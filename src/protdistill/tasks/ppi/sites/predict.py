"""`ppi sites`: per-residue binding-site probabilities of every protein of a FASTA.

Output: one row per residue ``protein position residue probability`` (1-based positions) as
``SITES.tsv.gz`` or ``SITES.parquet``, written atomically at the end. Work is done in chunks of
proteins, each kept in ``SITES.parts/`` once finished (atomic), so a killed run resumes where it
stopped and writes the same bytes; ``SITES.parts/inputs.json`` refuses a resume with another
model or FASTA. ``plot``: one profile figure per protein (probability along the sequence).
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from protdistill.errors import ConfigError, InputError
from protdistill.io.atomic import atomic_path, write_json, write_text
from protdistill.io.fasta import read_fasta
from protdistill.io.integrity import sha256_file
from protdistill.plotting import pyplot
from protdistill.tasks.ppi.sites.model import find_site_model, load_site_model, site_probabilities

SUFFIXES = (".tsv.gz", ".parquet")
HEADER = "protein\tposition\tresidue\tprobability\n"


def parts_folder(out: Path) -> Path:
    suffix = next((s for s in SUFFIXES if out.name.endswith(s)), None)
    if suffix is None:
        raise ConfigError(
            f"unknown output format for {out.name!r}",
            path=out,
            fix="name the output SITES.tsv.gz or SITES.parquet",
        )
    return out.with_name(out.name[: -len(suffix)] + ".parts")


def predict_sites(
    model: str | Path,
    fasta: str | Path,
    out: str | Path,
    *,
    plot: str | Path | None = None,
    chunk: int = 256,
    log: Callable[[str], None] = lambda _: None,
) -> dict:
    """Write the per-residue table (resumable); return a summary."""
    out = Path(out)
    parts = parts_folder(out)
    if out.exists():
        raise InputError("output exists", path=out, fix="choose another --out or delete it")
    records = read_fasta(fasta)
    if not records:
        raise InputError("no sequences", path=fasta, fix="pass a FASTA with at least one record")
    file = find_site_model(model)
    inputs = {"model_sha256": sha256_file(file), "fasta_sha256": sha256_file(fasta), "chunk": chunk}
    _claim(parts, inputs)
    site_model, _ = load_site_model(file)
    ids = list(records)
    done = 0
    for k, start in enumerate(range(0, len(ids), chunk)):
        part = parts / f"part-{k:06d}.tsv"
        if part.exists():
            done += 1
            continue
        names = ids[start : start + chunk]
        probs = site_probabilities(site_model, [records[n] for n in names])
        lines = [
            f"{n}\t{i + 1}\t{aa}\t{p:.4f}\n"
            for n, prob in zip(names, probs, strict=True)
            for i, (aa, p) in enumerate(zip(records[n], prob.tolist(), strict=True))
        ]
        write_text(part, "".join(lines))
        log(f"proteins {start + len(names)}/{len(ids)}")
    _assemble(parts, out)
    if plot is not None:
        plot_profiles(out, Path(plot))
    shutil.rmtree(parts)
    residues = sum(len(s) for s in records.values())
    return {"out": str(out), "proteins": len(ids), "residues": residues, "resumed_chunks": done}


def _claim(parts: Path, inputs: dict) -> None:
    parts.mkdir(parents=True, exist_ok=True)
    stamp = parts / "inputs.json"
    if stamp.exists() and json.loads(stamp.read_text()) != inputs:
        raise InputError(
            "an unfinished run with another model, FASTA or chunk size left parts here",
            path=parts,
            fix="delete the folder, or resume with the same --model and --fasta",
        )
    write_json(stamp, inputs)


def _assemble(parts: Path, out: Path) -> None:
    files = sorted(parts.glob("part-*.tsv"))
    if out.name.endswith(".parquet"):
        cols: dict[str, list] = {"protein": [], "position": [], "residue": [], "probability": []}
        for f in files:
            for line in f.read_text().splitlines():
                p, i, aa, prob = line.split("\t")
                for key, value in zip(cols, (p, int(i), aa, float(prob)), strict=True):
                    cols[key].append(value)
        table = pa.table({**cols, "probability": pa.array(cols["probability"], pa.float32())})
        with atomic_path(out) as tmp:
            pq.write_table(table, tmp)
        return
    # no name and no time in the gzip header: a resumed run writes the same bytes
    with (
        atomic_path(out) as tmp,
        open(tmp, "wb") as fh,
        gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz,
    ):
        gz.write(HEADER.encode())
        for f in files:
            gz.write(f.read_bytes())


def read_table(path: str | Path) -> list[tuple[str, int, str, float]]:
    """Rows of a sites table (either format), in order."""
    path = Path(path)
    if path.name.endswith(".parquet"):
        t = pq.read_table(path).to_pydict()
        return list(zip(t["protein"], t["position"], t["residue"], t["probability"], strict=True))
    with gzip.open(path, "rt") as fh:
        next(fh)
        return [(p, int(i), aa, float(x)) for p, i, aa, x in (ln.split("\t") for ln in fh)]


def plot_profiles(table: Path, folder: Path, limit: int = 200) -> int:
    """One PNG per protein (the first ``limit``): site probability along the sequence."""
    by_protein: dict[str, list[float]] = {}
    for p, _, _, x in read_table(table):
        by_protein.setdefault(p, []).append(x)
    folder.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    for name, values in list(by_protein.items())[:limit]:
        fig, ax = plt.subplots(figsize=(8, 2.4), dpi=110)
        ax.plot(range(1, len(values) + 1), values, lw=0.9, color="tab:blue")
        ax.set_ylim(0, 1)
        ax.set_xlabel("residue position")
        ax.set_ylabel("P(binding site)")
        ax.set_title(name, fontsize=9)
        fig.tight_layout()
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        fig.savefig(folder / f"{safe}.png")
        plt.close(fig)
    return min(limit, len(by_protein))
