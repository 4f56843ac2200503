"""Render a benchmarks/results/ppi_*.json report as the Markdown table used in BENCHMARKS.md.

python benchmarks/render_ppi.py benchmarks/results/ppi_guo_yeast_protein_f1.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _row(name: str, m: dict, params: int | str) -> str:
    cells = [f"{m[k]:.3f}" for k in ("auroc", "aupr", "accuracy", "mcc")]
    return f"| {name} | {' | '.join(cells)} | {m['n']} | {params} |"


def render(report: dict) -> str:
    variants = report["variants"]
    first = next(iter(variants.values()))["metrics"]
    teacher_params = report.get("throughput", {}).get("teacher", {}).get("parameters", "-")
    teacher_params = f"{teacher_params:,}" if isinstance(teacher_params, int) else teacher_params
    lines = [
        "| model | AUROC | AUPR | accuracy | MCC | n test | parameters |",
        "|---|---|---|---|---|---|---|",
        _row("teacher: frozen stand-in ESM-2 8M + head", first["teacher"], teacher_params),
    ]
    for name, v in variants.items():
        s = v["metrics"]["student"]
        lines.append(_row(name.replace("_", " "), s, f"{s['parameters']:,}"))
    if "throughput" in report:
        t = report["throughput"]
        lines += [
            "",
            "| CPU, from raw sequences | pairs/s | peak RSS (MB) | parameters |",
            "|---|---|---|---|",
        ]
        for kind in ("teacher", "student"):
            r = t[kind]
            lines.append(
                f"| {kind} | {r['pairs_per_s']} | {r['peak_rss_mb']} | {r['parameters']:,} |"
            )
        lines.append(
            f"\nstudent / teacher speed: **{t['speedup_student_vs_teacher']}×**; "
            f"teacher / student size: **{t['size_ratio_teacher_vs_student']}×**"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1])
    text = render(json.loads(path.read_text()))
    path.with_suffix(".md").write_text(text + "\n")
    print(text)
