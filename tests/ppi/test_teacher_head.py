"""The teacher head: full batch when the pairs fit, shuffled mini-batches when they do not."""

from __future__ import annotations

import torch

from protdistill.io.pairs import Pair
from protdistill.tasks.ppi.run.teacher_head import head_logits, train_head


def _problem(n_proteins: int = 60, n_pairs: int = 400, seed: int = 0):
    """Pairs interact when both proteins' first embedding coordinate is positive."""
    g = torch.Generator().manual_seed(seed)
    emb = {f"P{i}": torch.randn(8, generator=g) for i in range(n_proteins)}
    idx = torch.randint(0, n_proteins, (n_pairs, 2), generator=g).tolist()
    pairs = [Pair(f"P{a}", f"P{b}", int(emb[f"P{a}"][0] > 0 and emb[f"P{b}"][0] > 0))
             for a, b in idx]  # fmt: skip
    return emb, pairs[:320], pairs[320:]


def _accuracy(head, emb, pairs) -> float:
    pred = head_logits(head, emb, pairs).argmax(-1)
    return float((pred == torch.tensor([p.label for p in pairs])).float().mean())


def test_batch_at_least_the_pairs_is_the_full_batch_head() -> None:
    emb, train, val = _problem()
    one = train_head(emb, train, val, epochs=30, batch_size=len(train))
    big = train_head(emb, train, val, epochs=30, batch_size=10**6)
    pairs = zip(one.state_dict().values(), big.state_dict().values(), strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)


def test_mini_batches_learn_in_fewer_epochs() -> None:
    emb, train, val = _problem()
    full = train_head(emb, train, val, epochs=15, patience=100)
    mini = train_head(emb, train, val, epochs=15, patience=100, batch_size=16)
    assert _accuracy(mini, emb, val) >= 0.85
    assert _accuracy(mini, emb, val) > _accuracy(full, emb, val)


def test_score_is_every_row_by_column_pair_of_the_head() -> None:
    emb, train, val = _problem()
    head = train_head(emb, train, val, epochs=3)
    rows, cols = torch.randn(3, 8), torch.randn(5, 8)
    scores = head.score(rows, cols)
    for i in range(3):
        logits = head(rows[i].expand(5, -1), cols)
        torch.testing.assert_close(scores[i], logits[:, 1] - logits[:, 0])
