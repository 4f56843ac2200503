"""Tiny random ESM-2 teacher (local directory) and a small typed peptide CSV."""

from __future__ import annotations

import pytest
import torch
from peptide_helpers import make_peptides


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory) -> str:
    from protdistill.testing import save_tiny_esm

    torch.set_num_threads(2)
    return save_tiny_esm(tmp_path_factory.mktemp("tiny_esm_peptide"))


@pytest.fixture()
def peptide_csv(tmp_path):
    path = tmp_path / "peptides.csv"
    rows = make_peptides()
    path.write_text(
        "type,source_dataset,id,sequence\n"
        + "".join(f"{t},x,p{i},{s}\n" for i, (t, s) in enumerate(rows))
    )
    return path
