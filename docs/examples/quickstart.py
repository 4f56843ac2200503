"""protdistill in a notebook, in seconds: train a tiny PPI student, predict, screen, plot.

    python docs/examples/quickstart.py [WORK_DIR]

Everything is made here: a tiny random ESM-2 teacher (``protdistill.testing``) and 24 synthetic
proteins whose interacting pairs share a motif. With a real teacher, pass its hub id or folder
(``teacher="facebook/esm2_t6_8M_UR50D"``) and your own ``pairs`` / ``fasta`` files.
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

import protdistill  # noqa: E402
from protdistill.testing import save_tiny_esm  # noqa: E402


def toy_data(folder: Path) -> tuple[Path, Path]:
    """24 proteins and 60 labelled pairs: pairs of two even-numbered proteins interact."""
    rng = random.Random(0)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    seqs = {f"P{i}": "".join(rng.choices(letters, k=rng.randint(20, 60))) for i in range(24)}
    for i in range(0, 24, 2):
        seqs[f"P{i}"] = "WWCCWW" + seqs[f"P{i}"]
    fasta = folder / "proteins.fasta"
    fasta.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    rows, seen = [], set()
    while len(rows) < 60:
        a, b = rng.sample(range(24), 2)
        if frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            rows.append(f"P{a}\tP{b}\t{int(a % 2 == 0 and b % 2 == 0)}")
    pairs = folder / "pairs.tsv"
    pairs.write_text("protein_a\tprotein_b\tlabel\n" + "\n".join(rows) + "\n")
    return pairs, fasta


def main(work: Path) -> dict:
    pairs, fasta = toy_data(work)
    teacher = save_tiny_esm(work / "teacher", emb_layer_norm_before=False)

    # 1. train: the whole `protdistill ppi run` pipeline (teacher head, student, metrics, plots)
    metrics = protdistill.run_ppi(
        work / "run", pairs=pairs, fasta=fasta, teacher=teacher, split="random", epochs=2,
        batch_size=8, head_epochs=20, head_crossfit=2, map_residues=16, map_bins=4,
        progress=False,
    )  # fmt: skip
    print(f"student AUROC on the test split: {metrics['student']['auroc']:.3f}")

    # 2. predict: pairs as a DataFrame in, a Series on the same index out
    model = protdistill.load(work / "run")
    table = pd.read_csv(pairs, sep="\t")
    table["probability"] = model.predict(table, fasta)
    print(table.head(3).to_string(index=False))

    # 3. screen every pair of the proteome; the hits come back as a DataFrame
    hits = model.screen(fasta, work / "hits.tsv.gz", top_k=3, as_frame=True)
    print(f"{len(hits)} hits; best: {hits.sort_values('probability').iloc[-1].to_dict()}")
    # a proteome-size screen is read in pieces instead: protdistill.iter_hits(path, rows=100_000)

    # 4. plot: predicted probability by true label
    fig, ax = plt.subplots(figsize=(4, 3))
    for label, group in table.groupby("label"):
        ax.hist(group["probability"], bins=10, alpha=0.6, label=f"label {label}")
    ax.set_xlabel("predicted probability")
    ax.legend()
    figure = work / "probabilities.png"
    fig.savefig(figure, dpi=100, bbox_inches="tight")
    print(f"figure: {figure}")
    return {"metrics": metrics, "table": table, "hits": hits, "figure": figure}


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
