"""PPI data: validated records, seeded subsamples, random / protein-disjoint / k-fold splits,
and the batches the students train on (with residue masking and A/B swap augmentation)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from protdistill.alphabet import UNK, encode
from protdistill.errors import InputError
from protdistill.io.atomic import write_json
from protdistill.io.fasta import read_fasta
from protdistill.io.pairs import Pair, PairReport, read_pairs
from protdistill.tasks.ppi.common.maps import bin_matrix, pad_maps

SPLITS = ("train", "val", "test")


@dataclass
class PpiData:
    """Validated pairs and the sequences they name."""

    pairs: list[Pair]
    sequences: dict[str, str]
    report: PairReport


def load_ppi(
    pairs_path: str | Path,
    fasta_path: str | Path,
    *,
    require_labels: bool = True,
    self_pairs: str = "keep",
    max_pairs: int | None = None,
    seed: int = 0,
    keep_duplicates: bool = False,
) -> PpiData:
    """Read and validate a pairs table and a FASTA; keep only the sequences the pairs use."""
    sequences = read_fasta(fasta_path)
    pairs, report = read_pairs(
        pairs_path,
        proteins=sequences,
        require_labels=require_labels,
        self_pairs=self_pairs,
        keep_duplicates=keep_duplicates,
    )
    if max_pairs is not None and max_pairs < len(pairs):
        pairs = stratified_subsample(pairs, max_pairs, seed)
    used = {p for pair in pairs for p in (pair.a, pair.b)}
    return PpiData(pairs, {k: v for k, v in sequences.items() if k in used}, report)


def stratified_subsample(pairs: list[Pair], n: int, seed: int) -> list[Pair]:
    """A seeded subsample of ``n`` pairs keeping the label balance."""
    rng = random.Random(seed)
    by_label: dict[float | None, list[Pair]] = {}
    for pair in pairs:
        by_label.setdefault(pair.label, []).append(pair)
    chosen: list[Pair] = []
    for _, group in sorted(by_label.items(), key=lambda kv: str(kv[0])):
        k = round(n * len(group) / len(pairs))
        chosen.extend(rng.sample(group, min(k, len(group))))
    keep = set(chosen)
    return [pair for pair in pairs if pair in keep]


def _random_folds(n: int, folds: int, rng: random.Random) -> list[int]:
    order = list(range(n))
    rng.shuffle(order)
    fold_of = [0] * n
    for rank, i in enumerate(order):
        fold_of[i] = rank % folds
    return fold_of


def make_split(
    pairs: list[Pair],
    *,
    mode: str = "protein",
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    folds: int = 1,
    fold: int = 0,
    seed: int = 0,
) -> dict[str, list[int]]:
    """Indices of train / val / test pairs.

    ``random``: pairs are shuffled into test and train. ``protein`` (Bernett et al. 2024): proteins
    are assigned to test or train and a pair is kept only when both proteins fall on the same side,
    so no test protein is ever seen in training; cross pairs are dropped. With ``folds > 1`` the
    test part is fold ``fold`` of a k-fold partition (of pairs or of proteins). Validation is a
    random ``val_fraction`` of the training pairs (for checkpoint selection only); with ``protein``
    it is the pairs of held-back training proteins (see :func:`held_back_proteins`).
    """
    rng = random.Random(seed)
    k = max(folds, 1)
    if mode == "random":
        if k > 1:
            fold_of = _random_folds(len(pairs), k, rng)
            test = [i for i in range(len(pairs)) if fold_of[i] == fold]
        else:
            order = list(range(len(pairs)))
            rng.shuffle(order)
            test = sorted(order[: round(test_fraction * len(pairs))])
        test_set = set(test)
        train = [i for i in range(len(pairs)) if i not in test_set]
    elif mode == "protein":
        proteins = sorted({p for pair in pairs for p in (pair.a, pair.b)})
        if k > 1:
            fold_of = dict(zip(proteins, _random_folds(len(proteins), k, rng), strict=True))
            in_test = {p for p in proteins if fold_of[p] == fold}
        else:
            rng.shuffle(proteins)
            in_test = set(proteins[: round(test_fraction * len(proteins))])
        test = [i for i, q in enumerate(pairs) if q.a in in_test and q.b in in_test]
        train = [i for i, q in enumerate(pairs) if q.a not in in_test and q.b not in in_test]
    else:
        raise InputError(
            f"unknown split mode {mode!r}", record="split", fix="use protein or random"
        )
    train, val = split_validation(pairs, train, mode, val_fraction, rng)
    split = {"train": sorted(train), "val": sorted(val), "test": sorted(test)}
    for name in SPLITS:
        if not split[name]:
            raise InputError(
                f"the {name} split is empty ({len(pairs)} pairs, split={mode})",
                record="split",
                fix="use more pairs, a larger test fraction or --split random",
            )
    return split


def split_validation(
    pairs: list[Pair], train: list[int], mode: str, val_fraction: float, rng: random.Random
) -> tuple[list[int], list[int]]:
    """(train, val) indices: held-back proteins for ``protein``, a random subset otherwise."""
    if mode == "protein":
        return held_back_proteins(pairs, train, val_fraction, rng)
    train = list(train)
    rng.shuffle(train)
    n_val = max(1, round(val_fraction * len(train)))
    return train[n_val:], train[:n_val]


def held_back_proteins(
    pairs: list[Pair], train: list[int], val_fraction: float, rng: random.Random
) -> tuple[list[int], list[int]]:
    """Move to validation every training pair that touches a seeded set of held-back proteins,
    grown until validation holds ``val_fraction`` of the pairs.

    Every validation pair then has a protein the student never trains on, so checkpoint
    selection rewards what the protein-disjoint test measures; a random pair subset would reward
    memorising proteins (on Guo yeast: val accuracy 0.90 while test accuracy was 0.57).
    """
    touching: dict[str, list[int]] = {}
    for i in train:
        for protein in {pairs[i].a, pairs[i].b}:
            touching.setdefault(protein, []).append(i)
    proteins = sorted(touching)
    rng.shuffle(proteins)
    target = max(1, round(val_fraction * len(train)))
    val: set[int] = set()
    for protein in proteins:
        if len(val) >= target:
            break
        val.update(touching[protein])
    return [i for i in train if i not in val], sorted(val)


def save_split(path: str | Path, pairs: list[Pair], split: dict[str, list[int]]) -> None:
    """Write the split as JSON lists of ``[protein_a, protein_b, label]`` rows."""
    rows = {
        name: [[pairs[i].a, pairs[i].b, pairs[i].label] for i in idx] for name, idx in split.items()
    }
    write_json(path, rows)


def load_split(path: str | Path) -> dict[str, list[Pair]]:
    """Read a split written by :func:`save_split`; anything else is an :class:`InputError`."""
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
        split = {name: [Pair(a, b, label) for a, b, label in rows[name]] for name in rows}
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(
            f"not a protdistill split file ({type(exc).__name__}: {exc})",
            path=path,
            fix="use a new --out directory (this file was not written by protdistill)",
        ) from exc
    if not {"train", "test"} <= set(split):
        raise InputError(
            "split file without train/test pairs", path=path, fix="use a new --out directory"
        )
    return split


class PairDataset(Dataset):
    """Pairs as tensors; teacher logits (N, C), binned teacher maps [(na, nb)] (row i belongs to
    pair i) and per-protein teacher embeddings {id: (D,)} attached when given. Augmentation
    (train only): residues masked to X at ``mask_rate`` and A/B swapped at ``swap_rate`` (the
    teacher map is transposed with them)."""

    def __init__(
        self,
        pairs: list[Pair],
        sequences: dict[str, str],
        *,
        max_residues: int,
        teacher_logits: torch.Tensor | None = None,
        teacher_maps: list[torch.Tensor] | None = None,
        teacher_embeddings: dict[str, torch.Tensor] | None = None,
        mask_rate: float = 0.0,
        swap_rate: float = 0.0,
    ) -> None:
        self.pairs, self.sequences, self.max_residues = pairs, sequences, max_residues
        self.teacher_logits, self.teacher_maps = teacher_logits, teacher_maps
        self.teacher_embeddings = teacher_embeddings
        self.mask_rate, self.swap_rate = mask_rate, swap_rate
        self._tokens = {k: encode(v[:max_residues]) for k, v in sequences.items()}

    def __len__(self) -> int:
        return len(self.pairs)

    def _tokens_for(self, pid: str) -> torch.Tensor:
        tokens = self._tokens[pid]
        if self.mask_rate > 0:
            drop = torch.rand(tokens.shape) < self.mask_rate
            tokens = tokens.masked_fill(drop, UNK)
        return tokens

    def __getitem__(self, i: int) -> dict:
        pair = self.pairs[i]
        swap = self.swap_rate > 0 and torch.rand(()).item() < self.swap_rate
        a, b = (pair.b, pair.a) if swap else (pair.a, pair.b)
        item = {
            "tokens_a": self._tokens_for(a),
            "tokens_b": self._tokens_for(b),
            "label": torch.tensor(-1 if pair.label is None else int(pair.label)),
            "index": torch.tensor(i),
        }
        if self.teacher_logits is not None:
            item["teacher_logits"] = self.teacher_logits[i]
        if self.teacher_embeddings is not None:
            item["teacher_emb_a"] = self.teacher_embeddings[a]
            item["teacher_emb_b"] = self.teacher_embeddings[b]
        if self.teacher_maps is not None:
            tmap = self.teacher_maps[i]
            item["teacher_map"] = tmap.T if swap else tmap
        return item


def collate_pairs(items: list[dict], map_residues: int | None = None, map_bins: int = 32) -> dict:
    """Pad a list of items into a batch: tokens (B, L) + masks; teacher maps (B, bins, bins)."""
    batch: dict[str, torch.Tensor] = {}
    for side in ("a", "b"):
        seqs = [it[f"tokens_{side}"] for it in items]
        length = max(len(s) for s in seqs)
        tokens = torch.zeros(len(seqs), length, dtype=torch.long)
        for j, s in enumerate(seqs):
            tokens[j, : len(s)] = s
        batch[f"tokens_{side}"], batch[f"mask_{side}"] = tokens, tokens != 0
        if map_residues is not None:
            lengths = [len(s) for s in seqs]
            batch[f"bins_{side}"] = bin_matrix(lengths, length, map_residues, map_bins)
    batch["label"] = torch.stack([it["label"] for it in items])
    batch["index"] = torch.stack([it["index"] for it in items])
    if "teacher_logits" in items[0]:
        batch["teacher_logits"] = torch.stack([it["teacher_logits"] for it in items]).float()
    for key in ("teacher_emb_a", "teacher_emb_b"):
        if key in items[0]:
            batch[key] = torch.stack([it[key] for it in items]).float()
    if "teacher_map" in items[0]:
        maps, mask_a, mask_b = pad_maps([it["teacher_map"] for it in items], map_bins)
        batch["teacher_map"], batch["map_mask_a"], batch["map_mask_b"] = maps, mask_a, mask_b
    return batch
