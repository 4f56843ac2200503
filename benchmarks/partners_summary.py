"""One table from several benchmarks/partners.py results: each variant (runs that differ only in
the student seed, named NAME, NAME_s1, NAME_s2 ...) as mean +/- sd over its seeds.

Usage: .venv/bin/python benchmarks/partners_summary.py guo_mlp guo_fact [--pool test/proteome]
    [--name partners_summary]
Writes benchmarks/results/screening/<name>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "screening"
ROWS = [("student", "probability"), ("student", "specificity"),
        ("student", "specificity+0.25*propensity"), ("teacher", "probability"),
        ("teacher", "specificity"), ("predicted_degree", None), ("true_degree_oracle", None),
        ("known_partners_oracle", None), ("student", "random")]  # fmt: skip
FIELDS = ("recall@10", "recall@50", "rr")


def _cell(values: list[float], pct: bool = False) -> str:
    if not values:
        return ""
    m = float(np.mean(values))
    sd = float(np.std(values))
    text, spread = (f"{m:.1%}", f"{sd:.1%}") if pct else (f"{m:.3f}", f"{sd:.3f}")
    return text + (f" ± {spread}" if len(values) > 1 else "")


def summarise(variants: list[str], pools: list[str]) -> tuple[str, dict]:
    lines = ["| variant | pool | ranking | seeds | pair AUROC | recall@10 | recall@50 | MRR | "
             "top-50 slots of 50 most-listed |", "|---|---|---|---|---|---|---|---|---|"]
    data: dict = {}
    for variant in variants:
        files = sorted(RESULTS.glob(f"partners_{variant}*.json"))
        files = [f for f in files if re.fullmatch(rf"partners_{variant}(_s\d+)?\.json", f.name)]
        runs = [json.loads(f.read_text()) for f in files]
        auroc = [r["pair_auroc_test"].get("student") for r in runs]
        for pool in pools:
            for model, ranking in ROWS:
                rows = [_pick(r["rankings"][pool], model, ranking) for r in runs]
                rows = [x for x in rows if x]
                if not rows:
                    continue
                name = model if ranking is None else f"{model} {ranking}"
                if ranking == "random":
                    name = "random"
                cells = {f: [x[f] for x in rows] for f in FIELDS}
                hub = [x["hub"]["top_share"] for x in rows]
                data.setdefault(variant, {}).setdefault(pool, {})[name] = {**cells, "hub": hub}
                first = (model, ranking) == ("student", "probability")
                pair = _cell([a for a in auroc if a]) if first else ""
                lines.append(f"| {variant} | {pool} | {name} | {len(rows)} | {pair} | "
                             f"{_cell(cells['recall@10'])} | {_cell(cells['recall@50'])} | "
                             f"{_cell(cells['rr'])} | {_cell(hub, pct=True)} |")  # fmt: skip
    return "\n".join(lines) + "\n", data


def _pick(tables: dict, model: str, ranking: str | None) -> dict | None:
    entry = tables.get(model)
    if entry is None:
        return None
    return entry if ranking is None else entry.get(ranking)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--pool", action="append", default=None)
    ap.add_argument("--name", default="partners_summary", help="output file stem")
    args = ap.parse_args()
    pools = args.pool or ["test/held_out", "test/proteome"]
    md, data = summarise(args.variants, pools)
    (RESULTS / f"{args.name}.md").write_text(md)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(data, indent=1))
    print(md)


if __name__ == "__main__":
    main()
