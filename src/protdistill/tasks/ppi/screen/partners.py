"""Partner ranking: does a screen put a protein's *own* partners near the top of its list?

Pair AUROC rewards a model that scores hubs high with everyone; a screen user needs each query's
specific partners first. Pure functions over a score matrix ``scores`` (Q, C): row ``q`` is query
protein ``queries[q]``, column ``c`` candidate ``candidates[c]``; the pairs a data set labels
interacting (``positives``) or not (``negatives``) are unordered id pairs.

Per query with at least one known partner among the candidates (itself excluded; ties ranked by
candidate order, as a screen's top-K does):
- ``recall@k``: the share of its known partners in its top ``k`` (averaged over queries);
- ``reciprocal rank`` of its best-ranked partner;
- ``query AUROC``: its partners against its known non-partners (queries with both).
Over the whole grid: ``top20_share`` (RaftPPI's figure: the share of positive pairs within the
best 20 % of all scored pairs) and hub concentration (the share of all top-``hub_k`` slots held by
the ``hub_n`` most-listed candidates, and how many candidates appear in any list).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

Pairs = set[frozenset[str]]
DEGREE_BINS = ((1, 1), (2, 4), (5, 14), (15, 10**9))


def pair_set(pairs: Iterable[tuple[str, str]]) -> Pairs:
    return {frozenset((a, b)) for a, b in pairs if a != b}


def degrees(positives: Pairs) -> Counter:
    """Known partners per protein."""
    return Counter(p for pair in positives for p in pair)


def ranked(scores: np.ndarray, self_mask: np.ndarray) -> np.ndarray:
    """(Q, C) candidate order per row, best first: stable, so ties go to the earlier candidate;
    a query's own column last."""
    masked = np.where(self_mask, -np.inf, scores.astype(np.float64))
    return np.argsort(-masked, axis=1, kind="stable")


def _auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUROC with ties counted one half."""
    both = np.concatenate([pos, neg])
    order = both.argsort(kind="stable")
    ranks = np.empty(len(both))
    sorted_v = both[order]
    # average ranks of ties
    _, start, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def neighbours(pairs: Pairs) -> dict[str, set[str]]:
    """Known partners of each protein (a self pair makes a protein its own partner)."""
    out: dict[str, set[str]] = {}
    for pair in pairs:
        a, b = (*pair, *pair)[:2] if len(pair) == 1 else tuple(pair)
        out.setdefault(a, set()).add(b)
        out.setdefault(b, set()).add(a)
    return out


def _per_query(order, scores, queries, candidates, positives, negatives, ks) -> list[dict]:
    col = {c: j for j, c in enumerate(candidates)}
    pos, neg = neighbours(positives), neighbours(negatives)
    out = []
    for q, qid in enumerate(queries):
        mine = sorted(col[c] for c in pos.get(qid, ()) if c in col)
        if not mine:
            continue
        rank_of = np.empty(len(candidates), dtype=np.int64)
        rank_of[order[q]] = np.arange(len(candidates))
        pos_ranks = rank_of[mine]
        row = {"query": qid, "partners": len(mine), "rr": 1.0 / (1 + pos_ranks.min())}
        for k in ks:
            row[f"recall@{k}"] = float((pos_ranks < k).sum() / len(mine))
        non = sorted(col[c] for c in neg.get(qid, ()) if c in col)
        if non:
            row["auroc"] = _auroc(scores[q, mine], scores[q, non])
        out.append(row)
    return out


def _top_share(scores, queries, candidates, positives, share: float = 0.2) -> float | None:
    """RaftPPI's figure over the unordered pairs of the grid (each pair once, no self pairs)."""
    qpos = {p: i for i, p in enumerate(queries)}
    col = {c: j for j, c in enumerate(candidates)}
    as_query = np.array([qpos.get(c, len(queries)) for c in candidates])
    keep = as_query[None, :] > np.arange(len(queries))[:, None]  # once per pair, no self
    label = np.zeros(scores.shape, dtype=bool)
    nb = neighbours(positives)
    for q, qid in enumerate(queries):
        label[q, [col[c] for c in nb.get(qid, ()) if c in col]] = True
    values, labels = scores[keep].astype(np.float64), label[keep]
    if not labels.any():
        return None
    order = np.argsort(-values, kind="stable")
    top = order[: int(np.ceil(share * len(order)))]
    return float(labels[top].sum() / labels.sum())


def hub_concentration(order: np.ndarray, candidates: Sequence[str], k: int, n: int) -> dict:
    """Share of all top-``k`` slots held by the ``n`` most-listed candidates; how many appear."""
    slots = Counter(order[:, :k].ravel().tolist())
    total = sum(slots.values())
    top = sum(c for _, c in slots.most_common(n))
    return {"top_share": top / total if total else None, "listed": len(slots),
            "candidates": len(candidates)}  # fmt: skip


def partner_ranking(
    scores: np.ndarray,
    queries: Sequence[str],
    candidates: Sequence[str],
    positives: Pairs,
    negatives: Pairs = frozenset(),
    *,
    ks: Sequence[int] = (10, 50),
    hub_k: int = 50,
    hub_n: int = 50,
    degree: Counter | None = None,
) -> dict:
    """Every figure of the module docstring, plus recall@k by query degree (``degree``: known
    partners per protein in the whole data set; default: within ``positives``)."""
    self_mask = np.array(queries)[:, None] == np.array(candidates)[None, :]
    order = ranked(scores, self_mask)
    rows = _per_query(order, scores, queries, candidates, positives, negatives, ks)
    degree = degree if degree is not None else degrees(positives)
    out = {"queries": len(rows), "hub": hub_concentration(order, candidates, hub_k, hub_n),
           "top20_share": _top_share(scores, queries, candidates, positives)}  # fmt: skip
    for key in [f"recall@{k}" for k in ks] + ["rr"]:
        out[key] = float(np.mean([r[key] for r in rows])) if rows else None
    aurocs = [r["auroc"] for r in rows if "auroc" in r]
    out["query_auroc"] = float(np.mean(aurocs)) if aurocs else None
    out["query_auroc_n"] = len(aurocs)
    out["by_degree"] = {}
    for lo, hi in DEGREE_BINS:
        sub = [r for r in rows if lo <= degree[r["query"]] <= hi]
        label = f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi < 10**9 else f">={lo}")
        out["by_degree"][label] = {
            "queries": len(sub),
            **{f"recall@{k}": float(np.mean([r[f"recall@{k}"] for r in sub])) if sub else None
               for k in ks},
        }  # fmt: skip
    return out
