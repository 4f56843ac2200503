"""Benchmarks shipped inside the package (data only), so that a first run needs no download.

``dataset_files("guo-yeast")`` -> ``(pairs, fasta)`` paths; see each folder's README for the
licence and what to cite.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from protdistill.errors import ConfigError

#: name -> folder, pairs file, FASTA file
DATASETS = {"guo-yeast": ("guo_yeast", "pairs.tsv.gz", "sequences.fasta.gz")}


def dataset_files(name: str) -> tuple[Path, Path]:
    """``(pairs, fasta)`` of a packaged benchmark."""
    if name not in DATASETS:
        raise ConfigError(
            f"unknown dataset {name!r}",
            record="--dataset",
            fix=f"choose one of {sorted(DATASETS)}, or pass --pairs and --fasta",
        )
    folder, pairs, fasta = DATASETS[name]
    root = Path(str(resources.files(__name__))) / folder
    return root / pairs, root / fasta
