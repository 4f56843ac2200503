"""How much interface signal the teacher's per-residue representation holds (issue 15).

    python benchmarks/interface_probe.py --teacher ../shared/models/esm2_t6_8M_standin

Logistic-regression probes predict "this residue touches the partner" on the DIPS complexes of
../shared/data/ppi/interfaces_dips, cross-validated over PDB entries (the folds of
benchmarks/interfaces.py); a complex's map is score_a + score_b, scored like every map there.
Feature sets: the teacher's last-layer residue states (that benchmark's `teacher_residue_probe`);
the same centred per chain (the metric ranks residues within a complex, so between-chain offsets
are noise to the probe); physico-chemical features that need no pairing (burial from the teacher's
single-chain contact map, hydrophobicity in windows, one-hot residue, position in the chain); and
both. Results: benchmarks/results/interfaces/interface_probe.json.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from protdistill.alphabet import AMINO_ACIDS
from protdistill.io.atomic import write_json
from protdistill.io.contacts import read_complexes
from protdistill.tasks.ppi.interfaces import metrics as im
from protdistill.teachers.esm import EsmTeacher

ROOT = Path(__file__).resolve().parents[1]
DIPS = ROOT.parent / "shared" / "data" / "ppi" / "interfaces_dips"
OUT = ROOT / "benchmarks" / "results" / "interfaces" / "interface_probe.json"
#: Kyte & Doolittle (1982) hydropathy.
KD_SCALE = (1.8, 2.5, -3.5, -3.5, 2.8, -0.4, -3.2, 4.5, -3.9, 3.8,
            1.9, -3.5, -1.6, -3.5, -4.5, -0.8, -0.7, 4.2, -0.9, -1.3)  # fmt: skip
HYDROPATHY = dict(zip(AMINO_ACIDS, KD_SCALE, strict=True))
#: Feature set -> (parts, inverse regularisation C, fixed before any run).
PROBES = {
    "last_layer": (("states",), 0.1),
    "last_layer_centred": (("centred",), 0.1),
    "physchem": (("physchem",), 1.0),
    "last_layer_centred+physchem": (("centred", "physchem"), 0.1),
}


def window_mean(values: np.ndarray, width: int) -> np.ndarray:
    padded = np.pad(values, (width // 2, width // 2), mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def physchem(seq: str, contacts: np.ndarray) -> np.ndarray:
    """(L, 29): burial (contact number at separations >= 6 and >= 24, the first also z-scored in
    the chain), hydropathy (raw, windows of 5 and 11), relative position, distance to the nearer
    terminus / 50, log length, one-hot residue."""
    n = len(seq)
    idx = np.arange(n)
    sep = np.abs(idx[:, None] - idx[None, :])
    near, far = (contacts * (sep >= 6)).sum(1), (contacts * (sep >= 24)).sum(1)
    hyd = np.array([HYDROPATHY.get(a, 0.0) for a in seq])
    columns = [near, far, (near - near.mean()) / (near.std() + 1e-6), hyd, window_mean(hyd, 5),
               window_mean(hyd, 11), idx / max(n - 1, 1), np.minimum(idx, n - 1 - idx) / 50.0,
               np.full(n, np.log(n))]  # fmt: skip
    one_hot = np.array([[a == b for b in AMINO_ACIDS] for a in seq], dtype=float)
    return np.concatenate([np.stack(columns, 1), one_hot], 1)


def chain_features(teacher: EsmTeacher, seqs: list[str]) -> list[dict[str, np.ndarray]]:
    """Every feature part of each chain."""
    states = [e.per_residue.float().numpy() for e in teacher.embed(seqs)]
    contacts = [m.float().numpy() for m in teacher.contacts(seqs)]
    return [
        {"states": s, "centred": s - s.mean(0, keepdims=True), "physchem": physchem(seq, c)}
        for s, c, seq in zip(states, contacts, seqs, strict=True)
    ]


def cross_validate(feats: list, labels: list, folds: list[int], parts: tuple, c: float) -> list:
    """Per complex the map score_a + score_b of the probe fitted on the other folds."""
    x_of = [[np.concatenate([chain[p] for p in parts], 1) for chain in pair] for pair in feats]
    maps: list = [None] * len(feats)
    for f in sorted(set(folds)):
        train = [i for i in range(len(feats)) if folds[i] != f]
        x = np.concatenate([x for i in train for x in x_of[i]])
        y = np.concatenate([y for i in train for y in labels[i]])
        mu, sd = x.mean(0), x.std(0) + 1e-6
        clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        clf.fit((x - mu) / sd, y)
        for i in (i for i in range(len(feats)) if folds[i] == f):
            sa, sb = (torch.tensor(clf.decision_function((x - mu) / sd)) for x in x_of[i])
            maps[i] = sa[:, None] + sb[None, :]
    return maps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    cx = read_complexes(
        DIPS / "sequences.fasta", DIPS / "pairs.tsv", DIPS / "contacts.tsv", DIPS / "complexes.tsv"
    )
    folds = im.pdb_folds(cx)
    teacher = EsmTeacher(args.teacher)
    feats = [chain_features(teacher, [c.seq_a, c.seq_b]) for c in cx]
    truths = [c.contact_matrix() for c in cx]
    labels = [[t.any(1).numpy(), t.any(0).numpy()] for t in truths]
    results = {}
    for name, (parts, c) in PROBES.items():
        maps = cross_validate(feats, labels, folds, parts, c)
        pairs = zip(maps, cx, strict=True)
        rows = [{**im.score_map(m, x), "homodimer": x.homodimer} for m, x in pairs]
        results[name] = {"C": c, **im.summarise(rows)}
        print(name, {k: round(v["interface_auroc"], 3) for k, v in results[name].items()
                     if isinstance(v, dict)}, flush=True)  # fmt: skip
    write_json(args.out, {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, {args.threads} torch thread(s), no GPU",
        "teacher": f"{args.teacher} (stand-in teacher)",
        "complexes": len(cx),
        "heterodimers": sum(not c.homodimer for c in cx),
        "pdb_entries": len({c.pdb for c in cx}),
        "seconds": round(time.time() - start, 1),
        "results": results,
    })  # fmt: skip


if __name__ == "__main__":
    main()
