"""An independent activity classifier for generated peptides (not the guidance model).

For one peptide type (``amp``, ``afp``, ``avp`` …) it learns active vs inactive from the labelled
datasets of that type (``<type>_*.csv`` with ``sequence,label`` columns, e.g. peptideReactor's),
after removing every peptide the generator was trained on: it sees only held-out positives and
the datasets' negatives, which the generator never sees. Its features are sequence statistics
(amino-acid and reduced-alphabet dipeptide composition, length, charge, hydrophobicity,
hydrophobic moment, pI), so it shares nothing with the ESM embeddings the generator and its
guidance live in. Its own quality is a stratified 5-fold cross-validated AUROC.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from protdistill.alphabet import AMINO_ACIDS
from protdistill.errors import InputError
from protdistill.tasks.peptide.evaluate import PHYSCHEM, physchem

#: A 7-letter reduced alphabet (aliphatic, aromatic, positive, negative, polar, G/P, C) for
#: dipeptide composition (49 features instead of 400).
GROUPS = ("AVLIM", "FWY", "KRH", "DE", "STNQ", "GP", "C")
_GROUP_OF = {a: i for i, g in enumerate(GROUPS) for a in g}


def features(seqs: Sequence[str]) -> np.ndarray:
    """(N, 20 + 49 + 1 + 4) sequence features of peptides."""
    rows = []
    for s in seqs:
        s = s.upper()
        aac = np.array([s.count(a) for a in AMINO_ACIDS], dtype=float) / max(len(s), 1)
        dip = np.zeros((len(GROUPS), len(GROUPS)))
        for x, y in zip(s, s[1:], strict=False):
            if x in _GROUP_OF and y in _GROUP_OF:
                dip[_GROUP_OF[x], _GROUP_OF[y]] += 1
        dip = dip.ravel() / max(len(s) - 1, 1)
        rows.append(np.concatenate([aac, dip, [np.log(max(len(s), 1))]]))
    props = physchem(list(seqs))
    return np.column_stack([np.stack(rows)] + [props[k] for k in PHYSCHEM])


def labelled_peptides(
    folder: str | Path, kind: str, *, exclude: Iterable[str] = ()
) -> tuple[list[str], np.ndarray, list[str]]:
    """``(sequences, labels, files)`` of every ``<kind>_*.csv`` in ``folder``, deduplicated (a
    sequence labelled both ways is dropped) and without the peptides in ``exclude``."""
    files = sorted(Path(folder).glob(f"{kind}_*.csv"))
    if not files:
        raise InputError(
            f"no labelled {kind} datasets", path=folder, fix=f"expected {kind}_*.csv files there"
        )
    labels: dict[str, set[int]] = {}
    for path in files:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                seq = (row.get("sequence") or "").strip().upper()
                if seq and set(seq) <= set(AMINO_ACIDS) and row.get("label") in ("0", "1"):
                    labels.setdefault(seq, set()).add(int(row["label"]))
    excluded = {s.upper() for s in exclude}
    kept = sorted(s for s, ys in labels.items() if len(ys) == 1 and s not in excluded)
    return kept, np.array([next(iter(labels[s])) for s in kept]), [p.name for p in files]


@dataclass
class ActivityClassifier:
    """A fitted classifier and what it was fitted on."""

    kind: str
    model: HistGradientBoostingClassifier
    cv_auroc: float
    n_positive: int
    n_negative: int
    files: list[str]
    out_of_fold: dict[str, float]

    def probability(self, seqs: Sequence[str]) -> np.ndarray:
        """(N,) predicted probability that each peptide is active; a peptide the classifier was
        fitted on gets its out-of-fold prediction, so real peptides are not scored in-sample."""
        seqs = [s.upper() for s in seqs if s]
        if not seqs:
            return np.zeros(0)
        p = self.model.predict_proba(features(seqs))[:, 1]
        return np.array([self.out_of_fold.get(s, v) for s, v in zip(seqs, p, strict=True)])

    def summary(self) -> dict:
        return {"kind": self.kind, "cv_auroc": self.cv_auroc, "n_positive": self.n_positive,
                "n_negative": self.n_negative, "files": self.files}  # fmt: skip


def fit_activity_classifier(
    folder: str | Path, kind: str, *, exclude: Iterable[str] = (), seed: int = 0
) -> ActivityClassifier:
    """Fit on the held-out labelled peptides of ``kind`` (see the module docstring)."""
    seqs, y, files = labelled_peptides(folder, kind, exclude=exclude)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if min(n_pos, n_neg) < 10:
        raise InputError(
            f"too few held-out {kind} peptides to fit an activity classifier "
            f"({n_pos} active, {n_neg} inactive)",
            path=folder,
            fix="add labelled datasets of this type, or hold out more peptides from training",
        )
    x = features(seqs)
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=seed)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    cv = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    model.fit(x, y)
    oof = dict(zip(seqs, cv.tolist(), strict=True))
    return ActivityClassifier(kind, model, float(roc_auc_score(y, cv)), n_pos, n_neg, files, oof)


def activity_report(clf: ActivityClassifier, groups: dict[str, Sequence[str]]) -> dict:
    """Mean predicted activity and fraction predicted active (p >= 0.5) of each named set."""
    out = {}
    for name, seqs in groups.items():
        p = clf.probability(seqs)
        out[name] = {"mean": float(p.mean()) if len(p) else None,
                     "active_fraction": float((p >= 0.5).mean()) if len(p) else None}  # fmt: skip
    return out
