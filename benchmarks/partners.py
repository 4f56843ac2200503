"""Partner ranking of trained runs (issue 43): do a protein's own partners come first in its list?

For each run (a protein-disjoint `ppi run` directory): the held-out proteins of the validation
split (for choosing settings) and of the test split (for reporting) each rank (a) the other
held-out proteins of their split and (b) the whole proteome of the data set. Rankings: the
student by probability and by specificity (per-candidate z), also with a degree prior added (a
ridge of log(1 + degree) on its own embeddings), its own mean score per candidate, the teacher
(probability and specificity), a ridge "predicted degree from sequence" (log(1 + degree) on the
teacher's pooled embeddings of training proteins), the true degree (an oracle) and random.

Usage: .venv/bin/python benchmarks/partners.py --run runs/guo [--run runs/guo_fact ...]
Writes benchmarks/results/screening/partners_<run name>.json (and a Markdown table).
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from protdistill.config import resolve
from protdistill.tasks.ppi.common.config import PpiConfig
from protdistill.tasks.ppi.common.data import load_ppi, load_split
from protdistill.tasks.ppi.run.student import load_student
from protdistill.tasks.ppi.run.teacher import embed_proteins, load_teacher_head
from protdistill.tasks.ppi.screen.judge import (
    candidate_scores,
    labelled_sets,
    ranking_table,
    student_scores,
)
from protdistill.tasks.ppi.screen.partners import degrees, neighbours, partner_ranking

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "screening"
#: Weights w of the ranking specificity + w x standardised propensity (chosen on val).
BLENDS = (0.25, 0.5, 1.0)


def teacher_logits(run: Path, cfg: PpiConfig, ids: list[str], seqs: dict) -> tuple:
    """(N, N) teacher-head logits and the (N, D) teacher embeddings."""
    head = load_teacher_head(run)
    emb = embed_proteins(cfg, run, {i: seqs[i] for i in ids})
    z = torch.stack([emb[i] for i in ids]).float()
    with torch.inference_mode():
        rows = [head.score(z[s : s + 64], z) for s in range(0, len(ids), 64)]
    return torch.cat(rows).double().numpy(), z.numpy()


def predicted_degree(z: np.ndarray, ids: list[str], train_ids: set, train_deg) -> np.ndarray:
    """Ridge regression of log(1 + training degree) on teacher embeddings of training proteins."""
    from sklearn.linear_model import RidgeCV

    fit = [i for i, p in enumerate(ids) if p in train_ids]
    y = np.log1p([train_deg[ids[i]] for i in fit])
    model = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(z[fit], y)
    return model.predict(z)


def _pool_tables(logits_by, per_candidate, queries, pool, pos, neg, deg) -> dict:
    sub = np.array([pool["index"][p] for p in pool["ids"]])
    out = {}
    for model, logits in logits_by.items():
        block = logits[np.ix_(sub, sub)]
        out[model] = ranking_table(block, queries, pool["ids"], pos, neg, deg, blends=BLENDS)
    for base, values in per_candidate.items():
        s = candidate_scores(values[sub], len(queries))
        out[base] = partner_ranking(s, queries, pool["ids"], pos, neg, degree=deg)
    # every query's own known partners first (random order within): how concentrated on hubs
    # the true lists themselves are, the floor of any hub-share target
    rng = np.random.default_rng(0)
    known = np.array([[frozenset((q, c)) in pos for c in pool["ids"]] for q in queries], float)
    out["known_partners_oracle"] = partner_ranking(
        known + 0.5 * rng.random(known.shape), queries, pool["ids"], pos, neg, degree=deg)
    return out


def embed_matrix(run: Path, cfg: PpiConfig, ids: list[str], seqs: dict) -> np.ndarray:
    emb = embed_proteins(cfg, run, {i: seqs[i] for i in ids})
    return torch.stack([emb[i] for i in ids]).float().numpy()


def judge_run(run: Path, teacher: bool = True, priors: bool = True) -> dict:
    cfg = resolve(PpiConfig, run / "config.yaml")
    data = load_ppi(cfg.pairs, cfg.fasta)
    test = load_ppi(cfg.test_pairs, cfg.fasta) if cfg.test_pairs else None
    pairs = data.pairs + (test.pairs if test else [])
    seqs = {**data.sequences, **(test.sequences if test else {})}
    split = load_split(run / "split.json")
    pos, neg = labelled_sets(pairs)
    deg = degrees(pos)
    ids = sorted({p for q in pairs for p in (q.a, q.b)})
    index = {p: i for i, p in enumerate(ids)}
    model, meta = load_student(run)
    student, zs = student_scores(model, ids, seqs, meta, run / "rank_embed")
    logits = {"student": student}
    if teacher:
        logits["teacher"], z = teacher_logits(run, cfg, ids, seqs)
    else:
        z = embed_matrix(run, cfg, ids, seqs)
    train_ids = {p for q in split["train"] for p in (q.a, q.b)}
    train_deg = degrees(labelled_sets(split["train"])[0])
    per_candidate = {
        "predicted_degree": predicted_degree(z, ids, train_ids, train_deg),
        "true_degree_oracle": np.array([deg[p] for p in ids], float),
    }
    # the same regression on the student's own embeddings: a prior a screen could add
    prior = predicted_degree(zs, ids, train_ids, train_deg)
    prior = (prior - prior.mean()) / (prior.std() + 1e-9)
    for w in (0.5, 1.0, 2.0) if priors else ():
        logits[f"student+{w}*degree_prior"] = student + w * prior[None, :]
    known = neighbours(pos)
    report = {}
    for part in ("val", "test"):
        held = sorted({p for q in split[part] for p in (q.a, q.b)} - train_ids)
        for pool_name, pool_ids in (("held_out", held), ("proteome", ids)):
            members = set(pool_ids)
            queries = [p for p in held if (known.get(p, set()) - {p}) & members]
            pool = {"ids": pool_ids, "index": index}
            report[f"{part}/{pool_name}"] = _pool_tables(
                logits, per_candidate, queries, pool, pos, neg, deg)  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    return {"run": str(run), "head": meta["student"].get("head", "mlp"),
            "negatives": cfg.negatives, "pair_auroc_test": {k: v.get("auroc") for k, v in
                                                            metrics.items() if isinstance(v, dict)
                                                            and "auroc" in v},
            "proteins": len(ids), "rankings": report}  # fmt: skip


def markdown(result: dict) -> str:
    lines = [f"# Partner ranking: {result['run']} (head {result['head']}, negatives "
             f"{result['negatives']})", "",
             "| split / pool | ranking | queries | recall@10 | recall@50 | MRR | query AUROC | "
             "top-20% share | top-50 slots of 50 most-listed | proteins listed |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for key, tables in result["rankings"].items():
        for model, t in tables.items():
            rows = t.items() if "hub" not in t else [("", t)]
            for sub, r in rows:
                if not isinstance(r, dict) or "hub" not in r:
                    continue
                name = f"{model} {sub}".strip()
                qa = "" if r["query_auroc"] is None else f"{r['query_auroc']:.3f}"
                lines.append(f"| {key} | {name} | {r['queries']} | {r['recall@10']:.3f} | "
                             f"{r['recall@50']:.3f} | {r['rr']:.3f} | {qa} | "
                             f"{r['top20_share']:.3f} | {r['hub']['top_share']:.1%} | "
                             f"{r['hub']['listed']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", action="append", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-teacher", action="store_true", help="skip the teacher's N x N pairs")
    ap.add_argument("--no-priors", action="store_true", help="skip student + degree-prior rows")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    for run in args.run:
        result = judge_run(run, teacher=not args.no_teacher, priors=not args.no_priors)
        result["machine"] = f"{platform.machine()}, {torch.get_num_threads()} torch threads"
        result["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        name = f"partners_{run.name}"
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))
        (args.out / f"{name}.md").write_text(markdown(result))
        print(markdown(result))


if __name__ == "__main__":
    main()
