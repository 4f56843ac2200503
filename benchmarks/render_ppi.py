"""Render a benchmarks/results/ppi/ppi_*.json report as the Markdown table used in BENCHMARKS.md.

python benchmarks/render_ppi.py benchmarks/results/ppi/ppi_guo_yeast_protein_f1.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _cell(value: float | dict) -> str:
    """A metric, or ``mean ± sd`` over cross-validation folds."""
    if isinstance(value, dict):
        return f"{value['mean']:.3f} ± {value['sd']:.3f}"
    return f"{value:.3f}"


def _row(name: str, m: dict, params: int | str) -> str:
    cells = [_cell(m[k]) for k in ("auroc", "aupr", "accuracy", "mcc")]
    n = m["n"]["mean"] if isinstance(m["n"], dict) else m["n"]
    return f"| {name} | {' | '.join(cells)} | {n:g} | {params} |"


def _params(m: dict) -> str:
    p = m.get("parameters", "-")
    return f"{p['mean']:,.0f}" if isinstance(p, dict) else f"{p:,}"


def _agreement_line(name: str, agreement: dict | list[dict]) -> str:
    """Binned student map vs teacher map on validation pairs (per seed when several)."""
    runs = agreement if isinstance(agreement, list) else [agreement]
    r = ", ".join(f"{a['pearson_r']:.3f}" for a in runs)
    kl = ", ".join(f"{a['spatial_kl']:.4f}" for a in runs)
    flat = ", ".join(f"{a['spatial_kl_flat_map']:.4f}" for a in runs)
    return (
        f"{name.replace('_', ' ')}, map vs teacher map on {runs[0]['pairs']} validation pairs "
        f"(per seed): Pearson r {r}; spatial KL {kl} (a flat map: {flat})"
    )


ORDER = ["student_label_only", "student_logit_kd", "student_logit_feature_kd"]


def render(report: dict) -> str:
    variants = dict(
        sorted(report["variants"].items(), key=lambda kv: (ORDER + [kv[0]]).index(kv[0]))
    )
    first = next(iter(variants.values()))["metrics"]
    teacher_params = report.get("throughput", {}).get("teacher", {}).get("parameters", "-")
    teacher_params = f"{teacher_params:,}" if isinstance(teacher_params, int) else teacher_params
    lines = [
        "| model | AUROC | AUPR | accuracy | MCC | n test (per fold) | parameters |",
        "|---|---|---|---|---|---|---|",
        _row("teacher: frozen stand-in ESM-2 8M + head", first["teacher"], teacher_params),
    ]
    for name, v in variants.items():
        s = v["metrics"]["student"]
        lines.append(_row(name.replace("_", " "), s, _params(s)))
    for name, v in variants.items():
        agreement = v["metrics"]["student"].get("map_agreement_val")
        if agreement:
            lines.append("\n" + _agreement_line(name, agreement))
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
