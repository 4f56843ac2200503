"""Batches of general distillation: a (randomly cropped, randomly masked) transfer protein and the
teacher's targets for exactly the residues the student sees."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from protdistill.alphabet import UNK, encode
from protdistill.tasks.ppi.pretrain.transfer import BLOCK, ResidueTargets


@dataclass
class TargetStats:
    """Per-dimension mean / sd of the pooled and of the per-block teacher targets.

    ESM-2 states share a large common direction; cosine KD on raw states is mostly rewarded for
    reproducing it, so targets are z-scored with statistics of the training proteins.
    """

    pooled_mean: torch.Tensor
    pooled_sd: torch.Tensor
    block_mean: torch.Tensor
    block_sd: torch.Tensor

    def as_tensors(self) -> dict[str, torch.Tensor]:
        return {f"stats.{k}": v for k, v in vars(self).items()}

    @classmethod
    def from_tensors(cls, state: dict[str, torch.Tensor]) -> TargetStats:
        return cls(**{k: state[f"stats.{k}"] for k in cls.__dataclass_fields__})


def crop_weights(n_residues: int) -> torch.Tensor:
    """Residues in each block of a crop of ``n_residues`` starting on a block boundary."""
    blocks = -(-n_residues // BLOCK)
    weights = torch.full((blocks,), float(BLOCK))
    weights[-1] = n_residues - (blocks - 1) * BLOCK
    return weights


def pooled_of(blocks: torch.Tensor, n_residues: int) -> torch.Tensor:
    """The mean teacher state over the crop, from its blocks (exact at block boundaries)."""
    w = crop_weights(n_residues)
    return (blocks.float() * w[:, None]).sum(0) / w.sum()


def fit_stats(targets: ResidueTargets, keys: list[str], windows: dict[str, str]) -> TargetStats:
    """Statistics of the whole-window targets of ``keys`` (the training part of the set)."""
    pooled = torch.stack([pooled_of(targets.blocks[k], len(windows[k])) for k in keys])
    blocks = torch.cat([targets.blocks[k].float() for k in keys])
    return TargetStats(
        pooled.mean(0),
        pooled.std(0).clamp_min(1e-6),
        blocks.mean(0),
        blocks.std(0).clamp_min(1e-6),
    )


def crop_start(length: int, max_residues: int, random_offset: bool) -> int:
    """Offset of the student's crop on a block boundary: uniform over the possible ones (torch's
    global generator, restored on resume) when ``random_offset``, else 0. The last offset may
    leave a crop a few residues short, so that every residue can be seen."""
    if length <= max_residues or not random_offset:
        return 0
    return int(torch.randint(0, -(-(length - max_residues) // BLOCK) + 1, ())) * BLOCK


class TransferDataset(Dataset):
    """Transfer proteins with standardised teacher targets (pooled (D,), blocks (n, D)).

    ``train=True`` draws a random crop of ``max_residues`` from proteins longer than that (with
    ``random_crops``) and masks residues to X at ``mask_rate``; validation always shows the first
    ``max_residues`` residues of the teacher window, unmasked.
    """

    def __init__(
        self,
        keys: list[str],
        windows: dict[str, str],
        targets: ResidueTargets,
        stats: TargetStats,
        *,
        max_residues: int,
        train: bool,
        random_crops: bool = True,
        mask_rate: float = 0.0,
    ) -> None:
        if max_residues % BLOCK:
            raise ValueError(f"max_residues must be a multiple of {BLOCK}, got {max_residues}")
        self.keys, self.windows, self.targets, self.stats = keys, windows, targets, stats
        self.max_residues, self.train = max_residues, train
        self.random_crops, self.mask_rate = random_crops, mask_rate

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> dict:
        key = self.keys[i]
        window = self.windows[key]
        start = crop_start(len(window), self.max_residues, self.train and self.random_crops)
        seq = window[start : start + self.max_residues]
        tokens = encode(seq)
        if self.train and self.mask_rate > 0:
            tokens = tokens.masked_fill(torch.rand(tokens.shape) < self.mask_rate, UNK)
        b0 = start // BLOCK
        blocks = self.targets.blocks[key][b0 : b0 + -(-len(seq) // BLOCK)].float()
        s = self.stats
        return {
            "tokens": tokens,
            "blocks": (blocks - s.block_mean) / s.block_sd,
            "pooled": (pooled_of(blocks, len(seq)) - s.pooled_mean) / s.pooled_sd,
        }


def collate_transfer(items: list[dict]) -> dict[str, torch.Tensor]:
    """Pad tokens to (B, L) and blocks to (B, ceil(L / BLOCK), D), with their masks."""
    n = len(items)
    length = max(len(it["tokens"]) for it in items)
    n_blocks = -(-length // BLOCK)
    dim = items[0]["blocks"].shape[-1]
    tokens = torch.zeros(n, length, dtype=torch.long)
    blocks = torch.zeros(n, n_blocks, dim)
    block_mask = torch.zeros(n, n_blocks, dtype=torch.bool)
    for j, it in enumerate(items):
        tokens[j, : len(it["tokens"])] = it["tokens"]
        blocks[j, : len(it["blocks"])] = it["blocks"]
        block_mask[j, : len(it["blocks"])] = True
    return {
        "tokens": tokens,
        "mask": tokens != 0,
        "blocks": blocks,
        "block_mask": block_mask,
        "pooled": torch.stack([it["pooled"] for it in items]),
    }


def pool_blocks(
    blocks: torch.Tensor, mask: torch.Tensor, factor: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, n, D) blocks -> (B, ceil(n / factor), D): mean of each run of ``factor`` valid
    blocks, and the mask of runs with at least one valid block (padding never contributes)."""
    if factor == 1:
        return blocks, mask
    b, n, d = blocks.shape
    runs = -(-n // factor)
    values = blocks.new_zeros(b, runs * factor, d)
    weights = blocks.new_zeros(b, runs * factor)
    values[:, :n] = torch.where(mask[..., None], blocks, 0.0)
    weights[:, :n] = mask.to(blocks.dtype)
    total = values.view(b, runs, factor, d).sum(2)
    count = weights.view(b, runs, factor).sum(2)
    return total / count.clamp_min(1)[..., None], count > 0
