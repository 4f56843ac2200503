"""Teacher head: a small classifier on frozen, pooled ESM-2 embeddings of the two proteins.

Its logits are what the students distil. For training pairs the logits are *out-of-fold*
(cross-fitted, ``crossfit`` folds): a head that saw a pair's label would hand the student that
label back, with no dark knowledge in it.
"""

from __future__ import annotations

import random

import torch
from torch import nn

from protdistill.io.pairs import Pair
from protdistill.students.outputs import symmetric_combine


class TeacherHead(nn.Module):
    """``[a+b, |a-b|, a*b]`` of pooled embeddings (B, D) -> LayerNorm -> MLP -> logits (B, 2)."""

    def __init__(self, dim: int, hidden: int = 256, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(3 * dim),
            nn.Linear(3 * dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 2),
        )

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(symmetric_combine(a, b))

    def score(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """(R, D), (C, D) -> (R, C) interaction logits (class 1 minus class 0) of every pair."""
        a = rows[:, None, :].expand(-1, len(cols), -1).reshape(-1, rows.shape[1])
        b = cols[None, :, :].expand(len(rows), -1, -1).reshape(-1, cols.shape[1])
        out = self(a, b)
        return (out[:, 1] - out[:, 0]).reshape(len(rows), len(cols))


def _stack(emb: dict[str, torch.Tensor], pairs: list[Pair]) -> tuple[torch.Tensor, ...]:
    a = torch.stack([emb[p.a] for p in pairs]).float()
    b = torch.stack([emb[p.b] for p in pairs]).float()
    y = torch.tensor([int(p.label or 0) for p in pairs])
    return a, b, y


def train_head(
    emb: dict[str, torch.Tensor],
    train: list[Pair],
    val: list[Pair],
    *,
    hidden: int = 256,
    epochs: int = 200,
    lr: float = 1e-3,
    seed: int = 0,
    patience: int = 25,
    batch_size: int = 16384,
) -> TeacherHead:
    """AdamW on the frozen embeddings, full batch unless there are more than ``batch_size``
    pairs (then shuffled mini-batches: 163k pairs need far fewer epochs); keeps the epoch with
    the lowest val loss and stops after ``patience`` epochs without improvement."""
    torch.manual_seed(seed)
    a, b, y = _stack(emb, train)
    va, vb, vy = _stack(emb, val)
    head = TeacherHead(a.shape[1], hidden)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.05)
    best, best_state, since_best = float("inf"), None, 0
    for _ in range(epochs):
        head.train()
        for idx in _batches(len(y), batch_size):
            ba, bb = a[idx], b[idx]
            swap = torch.rand(len(ba)) < 0.5  # symmetric anyway; keeps dropout masks varied
            logits = head(torch.where(swap[:, None], bb, ba), torch.where(swap[:, None], ba, bb))
            loss = nn.functional.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            val_loss = nn.functional.cross_entropy(head(va, vb), vy).item()
        if val_loss < best:
            best, best_state = val_loss, {k: v.clone() for k, v in head.state_dict().items()}
            since_best = 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    head.load_state_dict(best_state)
    return head.eval()


def _batches(n: int, batch_size: int) -> list:
    """Index sets of one epoch: everything at once when it fits, else a shuffled split."""
    return [slice(None)] if n <= batch_size else list(torch.randperm(n).split(batch_size))


@torch.no_grad()
def head_logits(head: TeacherHead, emb: dict[str, torch.Tensor], pairs: list[Pair]) -> torch.Tensor:
    """(N, 2) logits of ``head`` for ``pairs``."""
    a, b, _ = _stack(emb, pairs)
    return head.eval()(a, b)


def crossfit_logits(
    emb: dict[str, torch.Tensor], pairs: list[Pair], *, folds: int, seed: int = 0, **kwargs
) -> torch.Tensor:
    """(N, 2) out-of-fold logits: each pair is scored by a head trained without it."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    out = torch.zeros(len(pairs), 2)
    for k in range(folds):
        held = order[k::folds]
        held_set = set(held)
        rest = [pairs[i] for i in order if i not in held_set]
        n_val = max(1, len(rest) // 10)
        head = train_head(emb, rest[n_val:], rest[:n_val], seed=seed + k, **kwargs)
        out[held] = head_logits(head, emb, [pairs[i] for i in held])
    return out
