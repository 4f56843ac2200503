"""A trained PPI student behind one object: ``load(run)`` -> ``predict`` / ``embed``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from protdistill.io.fasta import read_fasta
from protdistill.io.pairs import Pair
from protdistill.tasks.ppi.evaluate import predict_pairs
from protdistill.tasks.ppi.student import load_student, max_residues_of

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


def load(run: str | Path, *, backend: str | None = None) -> PairModel:
    """Open a run directory (``ppi run`` / ``ppi train`` / ``compress --out``) or a
    ``student.safetensors`` file. ``backend`` picks the INT8 kernels of a quantized run."""
    network, meta = load_student(run, backend=backend)
    return PairModel(network, meta, Path(run))
