"""A trained PPI student behind one object: ``load(run)`` -> ``predict``, ``embed``, ``screen``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from protdistill.io.fasta import read_fasta
from protdistill.io.pairs import Pair
from protdistill.tasks.ppi.run.embed import student_embeddings
from protdistill.tasks.ppi.run.evaluate import predict_pairs
from protdistill.tasks.ppi.screen.screening import ScreenConfig, screen
from protdistill.tasks.ppi.run.student import load_student, max_residues_of

Sequences = Mapping[str, str] | str | Path


def _sequences(sequences: Sequences) -> dict[str, str]:
    """A mapping id -> sequence, or a FASTA path read (and validated) into one."""
    if isinstance(sequences, (str, Path)):
        return read_fasta(sequences)
    return dict(sequences)


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
        self, pairs: Iterable[tuple[str, str]], sequences: Sequences, *, batch_size: int = 64
    ) -> torch.Tensor:
        """(N,) interaction probabilities for ``pairs`` of ids in ``sequences`` (mapping or FASTA),
        in the order given; the same numbers as ``protdistill ppi predict``."""
        seqs = _sequences(sequences)
        items = [Pair(a, b, 0) for a, b in pairs]
        return predict_pairs(
            self.network, items, seqs, max_residues=self.max_residues, batch_size=batch_size
        )

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

    def screen(self, fasta: str | Path, out: str | Path, **options: Any) -> dict[str, Any]:
        """`ppi screen` of this model: ``options`` are :class:`ScreenConfig` fields (``query``,
        ``top_k``, ``threshold`` ...); returns the summary. Hits go to ``out``."""
        options.setdefault("progress", False)
        cfg = ScreenConfig(model=str(self.path), fasta=str(fasta), out=str(out), **options)
        return screen(cfg)


def load(run: str | Path, *, backend: str | None = None) -> PairModel:
    """Open a run directory (``ppi run`` / ``ppi train`` / ``compress --out``) or a
    ``student.safetensors`` file. ``backend`` picks the INT8 kernels of a quantized run."""
    network, meta = load_student(run, backend=backend)
    return PairModel(network, meta, Path(run))
