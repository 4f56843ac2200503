"""pandas at the API's edge: pairs from a DataFrame in, a Series / DataFrame out. pandas is
imported only when a caller hands one over or asks for one (start-up time)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from protdistill.errors import ConfigError, InputError

#: The pair columns of a DataFrame (else its first two are taken).
PAIR_COLUMNS = ("protein_a", "protein_b")


def _is_frame(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "columns")


def pair_ids(pairs: Any) -> list[tuple[str, str]]:
    """``(id_a, id_b)`` per pair of a list of 2-tuples or a DataFrame, in order; anything else
    is an :class:`InputError` naming the offending item."""
    if _is_frame(pairs):
        cols = list(PAIR_COLUMNS) if set(PAIR_COLUMNS) <= set(pairs.columns) else None
        if cols is None and len(pairs.columns) < 2:
            raise InputError(
                "the DataFrame needs two id columns", record=f"columns {list(pairs.columns)}",
                fix="name them protein_a and protein_b (or put them first)",
            )  # fmt: skip
        frame = pairs[cols] if cols else pairs.iloc[:, :2]
        return [(str(a), str(b)) for a, b in frame.itertuples(index=False, name=None)]
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Iterable):
        raise InputError(
            f"pairs must be (id_a, id_b) tuples or a DataFrame, not {type(pairs).__name__}",
            fix='e.g. model.predict([("P1", "P2")], "proteins.fasta")',
        )  # fmt: skip
    out = []
    for n, pair in enumerate(pairs, 1):
        if isinstance(pair, (str, bytes)) or not _two(pair):
            raise InputError(
                f"{pair!r} is not a pair of ids", record=f"pair {n}",
                fix="give each pair as a 2-tuple (id_a, id_b)",
            )  # fmt: skip
        a, b = pair
        out.append((str(a), str(b)))
    return out


def _two(pair: Any) -> bool:
    try:
        return len(pair) == 2
    except TypeError:
        return False


def series_like(pairs: Any, probs: np.ndarray) -> Any:
    """``probs`` as given back for ``pairs``: a Series on a DataFrame's index, else the array."""
    if not _is_frame(pairs):
        return probs
    import pandas as pd  # lazy: only DataFrame callers pay for pandas

    return pd.Series(probs, index=pairs.index, name="probability")


def hits_frame(path: str | Path) -> Any:
    """The hits file a screen wrote (``.parquet`` or TSV, gzipped or not) as a DataFrame."""
    import pandas as pd  # lazy: start-up time

    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t")


def iter_hits(path: str | Path, rows: int = 100_000) -> Iterator[Any]:
    """The hits file of a screen as DataFrames of at most ``rows`` rows, in file order: a
    proteome-size screen is read (filtered, summed, written elsewhere) without holding it all."""
    import pandas as pd  # lazy: start-up time

    if rows < 1:
        raise ConfigError(f"rows must be >= 1, got {rows}", fix="pass rows=100000 or so")
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()
        return
    with pd.read_csv(path, sep="\t", chunksize=rows) as chunks:
        yield from chunks
