"""Helpers for the peptide tests: tiny ESM-2 config, typed toy peptides, ../shared location."""

from __future__ import annotations

import random

from protdistill.testing import ESM_VOCAB, tiny_esm_config  # noqa: F401 (re-exported)

SHARED = __import__("pathlib").Path(__file__).resolve().parents[2].parent / "shared"


def make_peptides(n_per_type: int = 24, seed: int = 0) -> list[tuple[str, str]]:
    """Typed peptides with a type-specific bias (amp: K/L rich, afp: C/G rich, avp: W/D rich)."""
    rng = random.Random(seed)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    bias = {"amp": "KLKLK", "afp": "CGCGC", "avp": "WDWDW"}
    rows = []
    for kind, extra in bias.items():
        for _ in range(n_per_type):
            n = rng.randint(6, 20)
            rows.append((kind, "".join(rng.choice(letters + extra * 3) for _ in range(n))))
    return rows
