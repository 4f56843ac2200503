"""Judging a screen: partner ranking of a trained student (and the rankings it is compared with)
over the proteins of a labelled pairs file — `ppi evaluate --ranking` and benchmarks/partners.py.

Every ranking is a (Q, C) score matrix over the same queries and candidates; the baselines a user
would compare with are built here too: random, a protein's known or predicted degree (score of
candidate c: f(c)), the model's own mean score per candidate (how much of its ranking is one
number per protein), and the specificity re-ranking of :mod:`ranking` (per-candidate z).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from protdistill.errors import ConfigError
from protdistill.io.atomic import write_json
from protdistill.io.pairs import Pair
from protdistill.progress import Log, no_log
from protdistill.tasks.ppi.common.data import load_ppi
from protdistill.tasks.ppi.run.embed import is_siamese, student_embeddings
from protdistill.tasks.ppi.run.student import load_student, max_residues_of
from protdistill.tasks.ppi.screen.partners import degrees, pair_set, partner_ranking


def labelled_sets(pairs: list[Pair]) -> tuple[set, set]:
    """(positives, negatives) of labelled pairs as unordered id pairs."""
    pos = pair_set((p.a, p.b) for p in pairs if p.label == 1)
    neg = pair_set((p.a, p.b) for p in pairs if p.label is not None and p.label != 1)
    return pos, neg


def column_mean(logits: np.ndarray, self_mask: np.ndarray) -> np.ndarray:
    """(C,) a candidate's mean score over the queries (its own row left out)."""
    kept = np.where(self_mask, np.nan, logits)
    return np.nanmean(kept, axis=0)


def column_sd(logits: np.ndarray, self_mask: np.ndarray) -> np.ndarray:
    """(C,) the spread of a candidate's scores over the queries (its own row left out)."""
    return np.nanstd(np.where(self_mask, np.nan, logits), axis=0)


def candidate_scores(per_candidate: np.ndarray, queries: int) -> np.ndarray:
    """(Q, C) ranking by one number per candidate (degree, predicted degree, mean score)."""
    return np.broadcast_to(per_candidate[None, :], (queries, len(per_candidate))).copy()


def student_logits(model, ids: list[str], sequences: dict[str, str], meta: dict,
                   cache: Path, log: Log = no_log) -> np.ndarray:  # fmt: skip
    """(N, N) logits of every pair of ``ids`` from the student's cached embeddings."""
    return student_scores(model, ids, sequences, meta, cache, log)[0]


def student_scores(model, ids: list[str], sequences: dict[str, str], meta: dict,
                   cache: Path, log: Log = no_log) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """((N, N) logits of every pair of ``ids``, (N, D) the student's embeddings)."""
    emb, skipped = student_embeddings(model, {i: sequences[i] for i in ids}, cache,
                                      max_residues=max_residues_of(meta), log=log)  # fmt: skip
    if skipped:
        raise ConfigError(f"{len(skipped)} proteins could not be embedded", record=skipped[0],
                          fix="drop them from the pairs file")  # fmt: skip
    z = torch.stack([emb[i] for i in ids])
    with torch.inference_mode():
        rows = [model.head.score(z[s : s + 256], z) for s in range(0, len(ids), 256)]
    return torch.cat(rows).double().numpy(), z.double().numpy()


def ranking_table(pool_logits: np.ndarray, queries: list[str], candidates: list[str],
                  positives, negatives, degree: Counter,
                  blends: tuple[float, ...] = ()) -> dict:  # fmt: skip
    """Partner ranking of a model by probability and by specificity (each candidate's usual
    logits measured on the whole pool, as a screen does on its reference set), with the random
    and mean-score-per-candidate rankings of the same grid. ``pool_logits``: (C, C) over
    ``candidates``; ``queries`` are some of them. Each ``blends`` weight w adds the ranking
    specificity + w x the candidate's standardised mean logit (its propensity put back)."""
    col_of = {c: j for j, c in enumerate(candidates)}
    missing = [q for q in queries if q not in col_of]
    if missing:
        raise ConfigError("every query must also be a candidate", record=missing[0],
                          fix="use a pool that holds the queries")  # fmt: skip
    pool_self = np.eye(len(candidates), dtype=bool)
    rows = np.array([col_of[q] for q in queries], dtype=int)
    logits, self_mask = pool_logits[rows], pool_self[rows]
    rng = np.random.default_rng(0)
    mean, sd = column_mean(pool_logits, pool_self), column_sd(pool_logits, pool_self)
    rankings = {
        "probability": logits,
        "specificity": (logits - mean[None, :]) / np.maximum(sd[None, :], 1e-6),
        "mean_score_per_candidate": candidate_scores(column_mean(logits, self_mask), len(rows)),
        "random": rng.random(logits.shape),
    }
    propensity = (mean - mean.mean()) / max(float(mean.std()), 1e-6)
    for w in blends:
        rankings[f"specificity+{w}*propensity"] = rankings["specificity"] + w * propensity[None, :]
    return {name: partner_ranking(s, queries, candidates, positives, negatives, degree=degree)
            for name, s in rankings.items()}  # fmt: skip


def evaluate_ranking(model_path: str | Path, pairs: str | Path, fasta: str | Path,
                     out: str | Path, *, log: Log = no_log) -> dict:  # fmt: skip
    """`ppi evaluate --ranking`: every protein of ``pairs`` with a known partner ranks every
    protein of the file -> ``out/ranking.json``."""
    data = load_ppi(pairs, fasta)
    model, meta = load_student(model_path)
    if not is_siamese(model):
        raise ConfigError("partner ranking needs a Siamese student", fix="use a resnet1d run")
    ids = sorted({p for pair in data.pairs for p in (pair.a, pair.b)})
    pos, neg = labelled_sets(data.pairs)
    queries = sorted({p for pair in pos for p in pair})
    logits = student_logits(model, ids, data.sequences, meta, Path(out) / "embeddings", log)
    table = ranking_table(logits, queries, ids, pos, neg, degrees(pos))
    write_json(Path(out) / "ranking.json", table)
    return table
