"""A trained PPI student behind one object: ``load(run)`` -> ``predict``, ``embed``, ``screen``.

Mistakes (an unknown protein id, a bad option) raise the project's typed errors naming the id,
the file and the fix, as the CLI prints them."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from protdistill.api.frames import hits_frame, pair_ids, series_like
from protdistill.config import resolve
from protdistill.errors import InputError
from protdistill.io.fasta import read_fasta
from protdistill.io.pairs import Pair
from protdistill.tasks.ppi.run.embed import student_embeddings
from protdistill.tasks.ppi.run.evaluate import predict_pairs
from protdistill.tasks.ppi.run.student import load_student, max_residues_of
from protdistill.tasks.ppi.screen.screening import ScreenConfig, screen
from protdistill.tasks.ppi.sites.model import load_site_model, site_probabilities

if TYPE_CHECKING:
    import pandas as pd

Sequences = Mapping[str, str] | str | Path


def _sequences(sequences: Sequences) -> dict[str, str]:
    """A mapping id -> sequence, or a FASTA path read (and validated) into one."""
    if isinstance(sequences, (str, Path)):
        return read_fasta(sequences)
    return dict(sequences)


def _known(ids: list[tuple[str, str]], seqs: Mapping[str, str], source: Sequences) -> list[Pair]:
    """``ids`` as pairs of record ids of ``seqs`` (a FASTA's aliases, e.g. UniProt accessions,
    resolved); an id with no sequence is an :class:`InputError` naming it and its pair."""
    path = source if isinstance(source, (str, Path)) else None
    find = getattr(seqs, "resolve", None) or (lambda pid: pid if pid in seqs else None)
    items = []
    for n, (a, b) in enumerate(ids, 1):
        found = [find(str(pid)) for pid in (a, b)]
        for pid, hit in zip((a, b), found, strict=True):
            if hit is None:
                where = "the FASTA" if path else "the sequences given"
                raise InputError(
                    f"protein {pid!r} is not in {where}", path=path, record=f"pair {n} ({a}, {b})",
                    fix="add its sequence, or correct the id (ids are case-sensitive)",
                )  # fmt: skip
        items.append(Pair(found[0], found[1], 0))
    return items


@dataclass
class PairModel:
    """A trained pair student (``network``) with the metadata it was saved with."""

    network: nn.Module
    meta: dict[str, Any]
    path: Path
    max_residues: int = field(init=False)

    def __post_init__(self) -> None:
        self.max_residues = max_residues_of(self.meta)
        self.network.eval()

    @property
    def kind(self) -> str:
        """``resnet1d`` or ``interaction``."""
        return str(self.meta.get("student", {}).get("kind", "resnet1d"))

    def predict(
        self,
        pairs: Iterable[tuple[str, str]] | pd.DataFrame,
        sequences: Sequences,
        *,
        batch_size: int = 64,
    ) -> np.ndarray | pd.Series:
        """Interaction probabilities for ``pairs`` of ids in ``sequences`` (mapping or FASTA), in
        the order given; the same numbers as ``protdistill ppi predict``. Pairs as tuples give a
        (N,) float32 array; a DataFrame (columns ``protein_a`` / ``protein_b``, else its first
        two) gives a Series on its index, named ``probability``."""
        seqs = _sequences(sequences)
        items = _known(pair_ids(pairs), seqs, sequences)
        with torch.inference_mode():
            probs = predict_pairs(
                self.network, items, seqs, max_residues=self.max_residues, batch_size=batch_size
            )
        return series_like(pairs, probs.float().numpy())

    def embed(
        self, sequences: Sequences, *, cache_dir: str | Path | None = None
    ) -> dict[str, torch.Tensor]:
        """(D,) student embedding per protein id (Siamese students), cached in ``cache_dir``
        when given; proteins that fail are left out (``ppi screen`` lists them)."""
        seqs = _sequences(sequences)
        with tempfile.TemporaryDirectory() as tmp:
            emb, _ = student_embeddings(
                self.network, seqs, cache_dir or tmp, max_residues=self.max_residues
            )
            return {k: v.clone() for k, v in emb.items()}

    def screen(
        self, fasta: str | Path, out: str | Path, *, as_frame: bool = False, **options: Any
    ) -> dict[str, Any] | pd.DataFrame:
        """`ppi screen` of this model: ``options`` are :class:`ScreenConfig` fields (``query``,
        ``top_k``, ``threshold`` ...; an unknown one is a :class:`ConfigError`). Hits go to
        ``out`` (``.tsv.gz`` or ``.parquet``); returns the summary, or with ``as_frame`` the
        hits read back as a DataFrame (small proteomes: it holds every row in memory; for a
        large one read ``out`` in pieces with :func:`protdistill.iter_hits`)."""
        options = {"progress": False, **options}
        if "query" in options and options["query"] is not None:
            options["query"] = str(options["query"])
        cfg = resolve(ScreenConfig, None, model=str(self.path), fasta=str(fasta), out=str(out),
                      **options)  # fmt: skip
        summary = screen(cfg)
        return hits_frame(out) if as_frame else summary

    def sites(self, sequences: Sequences) -> dict[str, np.ndarray]:
        """(L,) binding-site probability per residue of each protein (mapping or FASTA), from
        the run's site model (``ppi run ... --sites DIR``); the numbers of ``ppi sites``."""
        model, _ = load_site_model(self.path)
        seqs = _sequences(sequences)
        probs = site_probabilities(model, list(seqs.values()))
        return {k: p.numpy() for k, p in zip(seqs, probs, strict=True)}


def load(run: str | Path, *, backend: str | None = None) -> PairModel:
    """Open a run directory (``ppi run`` / ``ppi train`` / ``compress --out``) or a
    ``student.safetensors`` file. ``backend`` picks the INT8 kernels of a quantized run."""
    network, meta = load_student(run, backend=backend)
    return PairModel(network, meta, Path(run))
