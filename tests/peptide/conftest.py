"""Tiny random ESM-2 teacher (local directory) and a small typed peptide CSV."""

from __future__ import annotations

import pytest
import torch
from peptide_helpers import ESM_VOCAB, make_peptides, tiny_esm_config


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory) -> str:
    from transformers import EsmModel, EsmTokenizer

    torch.set_num_threads(2)
    path = tmp_path_factory.mktemp("tiny_esm_peptide")
    torch.manual_seed(0)
    EsmModel(tiny_esm_config(), add_pooling_layer=False).save_pretrained(path)
    (path / "vocab.txt").write_text("\n".join(ESM_VOCAB) + "\n")
    EsmTokenizer(str(path / "vocab.txt")).save_pretrained(path)
    return str(path)


@pytest.fixture()
def peptide_csv(tmp_path):
    path = tmp_path / "peptides.csv"
    rows = make_peptides()
    path.write_text(
        "type,source_dataset,id,sequence\n"
        + "".join(f"{t},x,p{i},{s}\n" for i, (t, s) in enumerate(rows))
    )
    return path
