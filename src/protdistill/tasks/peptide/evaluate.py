"""Generated-peptide metrics: uniqueness, novelty, diversity, distributions, Fréchet distance.

Identity between two peptides is the longest common subsequence (a global alignment scoring 1
per match and 0 for mismatches and gaps) divided by the longer length: 1.0 means identical, and
it never under-states similarity, so novelty figures are conservative.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import peptides
from Bio import Align
from scipy import linalg
from scipy.stats import wasserstein_distance

from protdistill.alphabet import AMINO_ACIDS
from protdistill.errors import ConfigError
from protdistill.io.atomic import atomic_path
from protdistill.plotting import pyplot

PHYSCHEM = ("charge", "hydrophobicity", "hydrophobic_moment", "isoelectric_point")


def _aligner():  # noqa: ANN202 - Bio type

    aligner = Align.PairwiseAligner()
    aligner.mode = "global"
    aligner.match_score, aligner.mismatch_score = 1.0, 0.0
    aligner.open_gap_score = aligner.extend_gap_score = 0.0
    return aligner


def identity(a: str, b: str, aligner=None) -> float:  # noqa: ANN001
    """LCS identity of two peptides in [0, 1] (1 = identical)."""
    if not a or not b:
        return 0.0
    aligner = aligner or _aligner()
    return float(aligner.score(a, b)) / max(len(a), len(b))


def max_identity(query: str, references: Sequence[str], aligner=None) -> float:  # noqa: ANN001
    """Highest identity of ``query`` to any reference, skipping references that cannot beat it."""
    aligner = aligner or _aligner()
    best = 0.0
    n = len(query)
    for ref in sorted(references, key=lambda r: abs(len(r) - n)):
        bound = min(len(ref), n) / max(len(ref), n)
        if bound <= best:
            break
        best = max(best, identity(query, ref, aligner))
        if best >= 1.0:
            break
    return best


def uniqueness(samples: Sequence[str]) -> float:
    """Fraction of distinct sequences among the samples."""
    return len(set(samples)) / max(len(samples), 1)


def novelty(
    samples: Sequence[str], training: Sequence[str], max_compare: int | None = 300, seed: int = 0
) -> dict[str, float]:
    """Fraction not identical to any training peptide, and max identity to the training set.

    ``max_identity`` statistics use at most ``max_compare`` samples (seeded subset) for speed;
    the exact-match fraction always uses all samples.
    """
    train = set(training)
    novel = sum(s not in train for s in samples) / max(len(samples), 1)
    subset = _subset(samples, max_compare, seed)
    refs = list(train)
    aligner = _aligner()
    ident = np.array([max_identity(s, refs, aligner) for s in subset]) if subset else np.zeros(1)
    return {
        "novelty": novel,
        "max_identity_mean": float(ident.mean()),
        "max_identity_median": float(np.median(ident)),
        "frac_max_identity_ge_0.8": float((ident >= 0.8).mean()),
    }


def _subset(items: Sequence[str], k: int | None, seed: int) -> list[str]:
    items = list(items)
    if k is None or len(items) <= k:
        return items
    return random.Random(seed).sample(items, k)


def diversity(samples: Sequence[str], max_samples: int | None = 200, seed: int = 0) -> float:
    """Mean pairwise identity among (a seeded subset of) the samples; lower = more diverse."""
    subset = _subset(samples, max_samples, seed)
    aligner = _aligner()
    scores = [identity(a, b, aligner) for i, a in enumerate(subset) for b in subset[i + 1 :]]
    return float(np.mean(scores)) if scores else float("nan")


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) between two histograms."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / b[nz])).sum())

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def composition(seqs: Sequence[str]) -> np.ndarray:
    """Amino-acid frequencies ``(20,)`` over all residues (X ignored)."""
    counts = Counter(c for s in seqs for c in s)
    vec = np.array([counts.get(a, 0) for a in AMINO_ACIDS], dtype=float)
    return vec / max(vec.sum(), 1.0)


def length_histogram(seqs: Sequence[str], max_length: int) -> np.ndarray:
    """Counts of lengths 1..max_length ``(max_length,)``; longer ones fall in the last bin."""
    hist = np.zeros(max_length)
    for s in seqs:
        hist[min(len(s), max_length) - 1] += 1
    return hist


def physchem(seqs: Sequence[str]) -> dict[str, np.ndarray]:
    """Net charge (pH 7), Eisenberg hydrophobicity, hydrophobic moment (100°), pI per peptide."""
    out: dict[str, list[float]] = {k: [] for k in PHYSCHEM}
    for s in seqs:
        p = peptides.Peptide(s.replace("X", "G"))
        out["charge"].append(p.charge(pH=7.0))
        out["hydrophobicity"].append(p.hydrophobicity("Eisenberg"))
        out["hydrophobic_moment"].append(p.hydrophobic_moment(angle=100, window=min(11, len(s))))
        out["isoelectric_point"].append(p.isoelectric_point())
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``(N, D)`` and ``(M, D)``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if min(len(a), len(b)) < 2:  # a covariance needs two points; sqrtm would fail on NaN
        raise ValueError(
            f"the Fréchet distance needs at least 2 peptides per set, got {len(a)} and {len(b)}"
            " (hold out more peptides of this type: a larger val_fraction or more data)"
        )
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        eps = np.eye(a.shape[1]) * 1e-6
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def distribution_metrics(
    samples: Sequence[str], reference: Sequence[str], max_length: int = 50
) -> dict[str, float]:
    """JSD of composition and length, and per-property mean gap / Wasserstein distance."""
    out = {
        "composition_jsd": js_divergence(composition(samples), composition(reference)),
        "length_jsd": js_divergence(
            length_histogram(samples, max_length) + 1e-12,
            length_histogram(reference, max_length) + 1e-12,
        ),
        "length_mean": float(np.mean([len(s) for s in samples])),
    }
    ps, pr = physchem(samples), physchem(reference)
    for key in PHYSCHEM:
        out[f"{key}_mean"] = float(ps[key].mean())
        out[f"{key}_ref_mean"] = float(pr[key].mean())
        out[f"{key}_wasserstein"] = float(wasserstein_distance(ps[key], pr[key]))
    return out


def evaluate_set(
    samples: Sequence[str],
    training: Sequence[str],
    *,
    held_out: Sequence[str] | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    max_length: int = 50,
    max_compare: int | None = 300,
    seed: int = 0,
) -> dict[str, float]:
    """All sequence-level metrics of one sample set against the training (and held-out) peptides.

    ``embed`` maps peptides to pooled teacher embeddings ``(N, D)`` for the Fréchet distance
    against ``held_out``.
    """
    samples = [s for s in samples if s]
    out: dict[str, float] = {"n": float(len(samples)), "uniqueness": uniqueness(samples)}
    out.update(novelty(samples, training, max_compare=max_compare, seed=seed))
    out["diversity_mean_identity"] = diversity(samples, seed=seed)
    out.update(distribution_metrics(samples, training, max_length=max_length))
    if embed is not None and held_out:
        out["frechet_distance"] = frechet_distance(embed(list(samples)), embed(list(held_out)))
    return out


def plot_distributions(
    groups: dict[str, Sequence[str]], path: str | Path, max_length: int = 50
) -> Path:
    """One PNG: composition, length and physico-chemical histograms for named peptide sets."""
    plt = pyplot()

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    width = 0.8 / max(len(groups), 1)
    for i, (name, seqs) in enumerate(groups.items()):
        x = np.arange(20) + i * width
        axes[0, 0].bar(x, composition(seqs), width=width, label=name)
        axes[0, 1].hist(
            [len(s) for s in seqs],
            bins=range(1, max_length + 2),
            alpha=0.5,
            density=True,
            label=name,
        )
        props = physchem(seqs)
        for ax, key in zip(axes.flat[2:], PHYSCHEM, strict=False):
            ax.hist(props[key], bins=30, alpha=0.5, density=True, label=name)
            ax.set_title(key)
    axes[0, 0].set_xticks(np.arange(20) + 0.4 - width / 2, list(AMINO_ACIDS))
    axes[0, 0].set_title("amino-acid composition")
    axes[0, 1].set_title("length")
    axes[0, 0].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def safe_float(value: float) -> float | None:
    """JSON-friendly float (NaN becomes None)."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def pooled_embedder(teacher) -> Callable[[list[str]], np.ndarray]:  # noqa: ANN001
    """Mean-pooled last-layer teacher embeddings ``(N, D)`` as a numpy array."""

    def embed(seqs: list[str]) -> np.ndarray:
        return np.stack([e.pooled.float().numpy() for e in teacher.embed(seqs)])

    return embed


def conditional_fidelity(
    classifier,  # noqa: ANN001 - classifier.TypeClassifier
    samples_by_type: dict[str, list[str]],
) -> dict[str, float]:
    """Fraction of each type's samples that the type classifier assigns to that type (types the
    classifier does not know are left out)."""
    out = {}
    for name, seqs in samples_by_type.items():
        if name in classifier.types and seqs:
            pred = classifier.predict(seqs)
            out[name] = float((pred == classifier.types.index(name)).float().mean())
    return out


def evaluate_samples(
    samples_by_type: dict[str, list[str]],
    split,  # noqa: ANN001 - data.PeptideSplit
    *,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    classifier=None,  # noqa: ANN001 - classifier.TypeClassifier
    fd_max: int = 500,
    max_compare: int = 300,
    max_length: int = 50,
    seed: int = 0,
) -> dict:
    """Per-type metrics of generated peptides against the split's train / held-out peptides."""
    per_type: dict[str, dict] = {}
    fidelity = conditional_fidelity(classifier, samples_by_type) if classifier else {}
    for name, seqs in samples_by_type.items():
        train = split.sequences("train", name)
        held = _subset(split.sequences("val", name), fd_max, seed)
        if embed is not None and len(held) == 1:
            raise ConfigError(
                f"type {name!r} has 1 held-out peptide; the Fréchet distance needs at least 2",
                record=name,
                fix="raise val_fraction or add peptides of this type",
            )
        metrics = evaluate_set(
            seqs,
            train or split.sequences("train"),
            held_out=held,
            embed=embed,
            max_length=max_length,
            max_compare=max_compare,
            seed=seed,
        )
        if name in fidelity:
            metrics["conditional_fidelity"] = fidelity[name]
        per_type[name] = {k: safe_float(v) for k, v in metrics.items()}
    return {"per_type": per_type}
