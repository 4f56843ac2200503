"""`ppi screen`: score every pair of a proteome (or query x proteome) with a trained student.

1. Each protein's student features are computed once (``tasks/ppi/run/embed``) and cached in
   ``OUT_DIR/embeddings/``, so a re-run or a second query reuses them.
2. The pair head scores row blocks of the pair grid (all-vs-all: each unordered pair once;
   bipartite: every query x proteome pair); block sides come from the ``memory`` budget.
3. Kept: each protein's top-K partners and/or every pair with probability >= ``threshold``;
   after every row block the running top-K and that block's hits are saved to ``HITS.parts/``,
   so a killed screen restarts at its first unfinished block and writes identical output.
4. ``HITS.tsv.gz`` or ``HITS.parquet`` (protein_a, protein_b, probability, specificity, rank)
   and ``HITS.summary.json`` (pairs scored, wall times, pairs/s, settings, skipped proteins).

Long proteins are cropped to the student's ``max_residues`` (first residues), exactly as in
training and ``ppi predict``: a screen's probability equals ``ppi predict``'s for that pair.
"""

from __future__ import annotations

import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from protdistill.config import Config
from protdistill.distill.parallel import Ranks, ScaleConfig, all_sum, finish, launch, main_first
from protdistill.errors import CheckpointError, ConfigError, InputError
from protdistill.io.atomic import save_tensors, write_json
from protdistill.io.fasta import read_fasta
from protdistill.io.lock import run_lock
from protdistill.io.readback import header_int, read_json, read_tensors
from protdistill.progress import Log, Meter, no_log
from protdistill.tasks.ppi.run.embed import is_siamese, student_features, weights_digest
from protdistill.tasks.ppi.run.student import load_student, max_residues_of
from protdistill.tasks.ppi.screen.blocks import (
    InteractionScorer,
    SiameseScorer,
    TopK,
    pair_mask,
)
from protdistill.tasks.ppi.screen.output import (
    hits_table,
    list_ranks,
    named_table,
    output_paths,
    write_table,
)
from protdistill.tasks.ppi.screen.ranking import prior_shift, profile, reference_set, specificity

Scorer = SiameseScorer | InteractionScorer
RESTART = "delete {} to start this screen over"


class ScreenConfig(Config):
    """Every `ppi screen` option."""

    model: str
    fasta: str
    out: str
    query: str | None = Field(None, description="query FASTA: score query x proteome")
    top_k: int = Field(50, ge=0, description="partners kept per protein (0 = none)")
    threshold: float | None = Field(None, ge=0, le=1, description="keep pairs with p >= this")
    rank_by: Literal["probability", "specificity"] = Field(
        "specificity",
        description="order of each protein's partners: probability, or specificity (how far "
        "the pair's logit stands above the partner's usual logits, in standard deviations: "
        "hubs no longer fill every list)",
    )
    prior: float | None = Field(
        None, gt=0, lt=1,
        description="report probabilities calibrated to this share of interacting pairs "
        "(e.g. 0.01; default: the training data's share, 0.5 for balanced data)",
    )  # fmt: skip
    reference: int = Field(
        2000,
        ge=2,
        description="proteome proteins (seeded sample) each protein's usual logits are measured on",
    )
    include_self: bool = Field(False, description="also score a protein with itself")
    memory_mb: int = Field(1024, ge=16, description="working memory of one block of pairs")
    block: int | None = Field(None, ge=1, description="block side (default: from memory_mb)")
    tokens_per_batch: int = Field(64_000, ge=1000, description="residues per embedding batch")
    threads: int | None = Field(None, ge=1, description="torch CPU threads")
    progress: bool = True
    scale: ScaleConfig = ScaleConfig()


def _grid(cfg: ScreenConfig, log: Log) -> tuple[list[str], dict[str, str], list[int], int]:
    """(all ids, sequences, row indices, proteome size): the proteome's ids come first, then
    query-only ids; rows are the proteome itself (all-vs-all) or the query proteins."""
    proteome = read_fasta(cfg.fasta)
    if cfg.query is None:
        return list(proteome), proteome, list(range(len(proteome))), len(proteome)
    query = read_fasta(cfg.query)
    for pid in set(query) & set(proteome):
        if query[pid] != proteome[pid]:
            raise InputError(
                f"protein {pid!r} has another sequence in the proteome FASTA",
                path=cfg.query,
                record=pid,
                fix="use one sequence per id in both files",
            )
    ids = list(proteome) + [p for p in query if p not in proteome]
    sequences = {**proteome, **query}
    index = {pid: i for i, pid in enumerate(ids)}
    log(f"bipartite screen: {len(query)} query x {len(proteome)} proteome proteins")
    return ids, sequences, [index[p] for p in query], len(proteome)


def _settings(cfg: ScreenConfig, digest: str, n: int, side: int, world: int) -> dict:
    keys = ("fasta", "query", "top_k", "threshold", "include_self", "rank_by", "prior")
    keys += ("reference",)
    settings = {k: getattr(cfg, k) for k in keys}
    settings.update({"model": digest, "proteins": n, "block": side})
    return settings if world == 1 else {**settings, "ranks": world}


def _open_parts(parts: Path, settings: dict) -> None:
    """Start ``parts`` (its settings.json), or check that the unfinished screen there is ours."""
    state = parts / "settings.json"
    if not state.exists():
        if parts.exists():
            shutil.rmtree(parts)  # parts of a screen killed before it wrote its settings
        parts.mkdir(parents=True)
        write_json(state, {"settings": settings})
        return
    saved = read_json(state, fix=RESTART.format(parts), keys=("settings",))
    if saved["settings"] != settings:
        raise ConfigError(
            "an unfinished screen with other settings is in the way",
            path=parts,
            fix="re-run with the same options to resume it, or delete this folder",
        )


def _commit_file(parts: Path, ranks: Ranks) -> Path:
    """The rank's commit point: its top-K after its last finished row block, with the count of
    its blocks done, written atomically after that block's hits."""
    if ranks.world == 1:
        return parts / "topk.safetensors"
    return parts / f"topk-rank{ranks.rank}-of-{ranks.world}.safetensors"


def _resume(commit: Path, n: int, k: int) -> tuple[int, TopK]:
    """(this rank's row blocks already done, its top-K state); a fresh start when absent. The
    state is checked before it is used: a damaged or foreign file is one line, not a crash."""
    if not commit.exists():
        return 0, TopK.empty(n, k)
    expect = {"values": (torch.float32, 2), "index": (torch.int64, 2)}
    fix = RESTART.format(commit.parent)
    loaded, header = read_tensors(commit, fix=fix, expect=expect, metadata=("rows_done",))
    if loaded["values"].shape != (n, k) or loaded["index"].shape != (n, k):
        raise CheckpointError(f"top-K state of shape {tuple(loaded['values'].shape)}, not "
                              f"{(n, k)}", path=commit, fix=fix)  # fmt: skip
    done = header_int(header, "rows_done", commit, fix=fix)
    return done, TopK(loaded["values"], loaded["index"])


@dataclass
class Ranking:
    """How a block's logits become ranking values: ``shift`` (calibration to the stated prior),
    ``mean`` / ``sd`` (N,) of every protein's logits against the reference set, ``by``
    probability or specificity."""

    shift: float
    mean: Tensor
    sd: Tensor
    by: str

    def probability(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits + self.shift)

    def values(self, logits: Tensor, cols: Tensor) -> Tensor:
        """(R, C) ranking values of the column proteins as partners of the row proteins (a new
        tensor: ``logits`` is left as it is)."""
        if self.by == "specificity":
            return specificity(logits, self.mean[cols], self.sd[cols])
        return self.probability(logits)


def _score_rows(
    scorer: Scorer,
    rows: Tensor,
    cols: Tensor,
    cfg: ScreenConfig,
    sym: bool,
    top: TopK,
    side: int,
    ranking: Ranking,
) -> tuple[int, list[Tensor]]:
    """Score one row block against every column block; returns (pairs scored, hit triples)."""
    scored, hits = 0, []
    start = int(rows[0]) if sym else 0
    cols = cols[cols >= start] if sym else cols
    for j in range(0, len(cols), side):
        c = cols[j : j + side]
        logits = scorer(rows, c)
        # a block wholly above the diagonal of an all-vs-all grid keeps every pair: no mask
        keep = (
            None if sym and int(c[0]) > int(rows[-1]) else pair_mask(rows, c, sym, cfg.include_self)
        )
        scored += logits.numel() if keep is None else int(keep.sum())
        top.merge(rows, _masked(ranking.values(logits, c), keep), c)
        if sym:  # the same pairs offered to the column proteins' lists (contiguous rows: a
            # transposed view made their top-K ~8x slower)
            values = ranking.values(logits.T.contiguous(), rows)
            top.merge(c, _masked(values, None if keep is None else keep.T), rows)
        if cfg.threshold is not None:
            probs = _masked(ranking.probability(logits), keep)
            r, q = torch.nonzero(probs >= cfg.threshold, as_tuple=True)
            hits.append((torch.stack([rows[r], c[q]], dim=1).int(), probs[r, q]))
    return scored, hits


def _masked(values: Tensor, keep: Tensor | None) -> Tensor:
    """``values`` with the pairs not kept at -inf (in place: the values are this block's own)."""
    return values if keep is None else values.masked_fill_(~keep, float("-inf"))


def _embeddings(cfg: ScreenConfig, model, meta: dict, digest: str, log: Log):
    """(N, D) embeddings in id order (NaN rows for skipped proteins), the row and column indices
    of the grid (skipped proteins left out) and the skipped ids."""
    out = Path(cfg.out)
    ids, sequences, query, n_proteome = _grid(cfg, log)
    emb_map, skipped = student_features(
        model,
        sequences,
        out.parent / "embeddings" / f"student-{digest}",
        max_residues=max_residues_of(meta),
        tokens_per_batch=cfg.tokens_per_batch,
        show_progress=cfg.progress,
        log=log,
    )
    if not emb_map:
        raise InputError("no protein could be embedded", path=cfg.fasta, fix="see the log")
    features = [emb_map.get(p) for p in ids]
    kind = SiameseScorer if is_siamese(model) else InteractionScorer
    scorer = kind(model, features, cfg.memory_mb * 2**20)
    rows = torch.tensor([i for i in query if ids[i] in emb_map], dtype=torch.long)
    cols = torch.tensor([i for i in range(n_proteome) if ids[i] in emb_map], dtype=torch.long)
    return (ids, scorer), rows, cols, skipped


def screen(cfg: ScreenConfig, *, log: Log = no_log) -> dict:
    """Run the screen described by ``cfg``; returns the summary (also written as JSON). A
    second screen into the same output while this one runs stops with one line."""
    if cfg.top_k == 0 and cfg.threshold is None:
        raise ConfigError("nothing to keep", fix="pass --top-k K and/or --threshold P")
    out = output_paths(cfg.out)[0]
    ranks = launch(cfg.scale)
    with run_lock(out.parent, f".{out.name}.lock") if ranks.is_main else nullcontext():
        return _screen(cfg, ranks, log)


def _screen(cfg: ScreenConfig, ranks: Ranks, log: Log) -> dict:
    out, parts, summary_path = output_paths(cfg.out)
    # a table beside its unfinished parts: a screen stopped in its clean-up, finished here
    finishing = out.exists() and (parts / "settings.json").exists()
    if out.exists() and not finishing:
        raise InputError("output exists", path=out, fix="choose another --out or delete the file")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model, meta = load_student(cfg.model)
    sym = cfg.query is None
    digest = weights_digest(model)
    t0 = time.perf_counter()
    embedded = main_first(lambda: _embeddings(cfg, model, meta, digest, log))
    (ids, scorer), rows_all, cols_all, skipped = embedded
    t_embed = time.perf_counter() - t0
    side = cfg.block or scorer.side
    settings = _settings(cfg, digest, len(ids), side, ranks.world)
    main_first(lambda: _open_parts(parts, settings))
    ranking = _ranking(cfg, scorer, meta, rows_all, cols_all, side)
    n_blocks = (len(rows_all) + side - 1) // side
    total = _total_pairs(rows_all, cols_all, sym, cfg.include_self)
    t1 = time.perf_counter()
    scored = _score_share(scorer, rows_all, cols_all, cfg, sym, side, parts, ranks, total,
                          len(ids), ranking)  # fmt: skip
    scored = int(all_sum(scored))
    t_score = time.perf_counter() - t1
    if not finish().is_main:
        return {}
    top = _merged_topk(parts, ranks.world, len(ids), cfg.top_k)
    table = _table(cfg, scorer, ranking, ids, hits_table(parts, n_blocks, top, rows_all.tolist(),
                                                           cfg.threshold, cfg.top_k))  # fmt: skip
    summary = {
        "output": str(out),
        "proteins": len(ids),
        "query_proteins": len(rows_all),
        "skipped_proteins": skipped,
        "pairs_scored_this_run": scored,
        "pairs_total": total,
        "rows_written": len(table["protein_a"]),
        "block_side": side,
        "wall_seconds": {"embedding": t_embed, "scoring": t_score},
        "scoring_pairs_per_second": scored / t_score if t_score > 0 and scored else None,
        "threads": torch.get_num_threads(),
        "train_prior": meta.get("train_prior"),
        "settings": {**settings, "memory_mb": cfg.memory_mb, "long_proteins": "crop"},
    }
    # the table last: its name is what a re-run checks, so a fault before it leaves a screen
    # that the same command finishes (from HITS.parts/), never one that it refuses
    write_json(summary_path, summary)
    write_table(out, table, replace=finishing)
    shutil.rmtree(parts)
    return summary


def _ranking(cfg: ScreenConfig, scorer: Scorer, meta: dict, rows: Tensor, cols: Tensor,
             side: int) -> Ranking:  # fmt: skip
    """Calibration shift and every protein's usual logits (against a seeded proteome sample)."""
    shift = prior_shift(float(meta.get("train_prior") or 0.5), cfg.prior)
    proteins = torch.unique(torch.cat([rows, cols]))
    n = int(proteins.max()) + 1 if len(proteins) else 0
    mean, sd = torch.full((n,), torch.nan), torch.full((n,), torch.nan)
    if isinstance(scorer, InteractionScorer) and cfg.rank_by != "specificity":
        return Ranking(shift, mean, sd, cfg.rank_by)  # each pair a residue map: no extra pass
    mean[proteins], sd[proteins] = profile(scorer, proteins, reference_set(cols, cfg.reference),
                                           side)  # fmt: skip
    return Ranking(shift, mean, sd, cfg.rank_by)


def _table(cfg: ScreenConfig, scorer: Scorer, ranking: Ranking, ids: list[str],
           index: dict) -> dict[str, list]:  # fmt: skip
    """Output columns: each kept pair's probability and specificity (with top-K and a
    threshold, only partners whose probability reaches it, ranks counted among those)."""
    a, b = torch.as_tensor(index["a"]), torch.as_tensor(index["b"])
    logits = scorer.pairs(a, b) if len(a) else torch.zeros(0)
    prob = ranking.probability(logits)
    spec = (logits - ranking.mean[b]) / ranking.sd[b].clamp(min=1e-6) if len(a) else logits
    if cfg.top_k > 0 and cfg.threshold is not None:
        keep = (prob >= cfg.threshold).numpy()
        index = {"a": index["a"][keep], "b": index["b"][keep]}
        index["rank"] = list_ranks(index["a"])
        prob, spec = prob[keep], spec[keep]
    return named_table(ids, index, prob.double().numpy(), spec.double().numpy())


def _total_pairs(rows: Tensor, cols: Tensor, sym: bool, include_self: bool) -> int:
    """Pairs the grid scores: i < j (all-vs-all), else all, less same-id pairs unless kept."""
    n = len(rows)
    if sym:
        return n * (n - 1) // 2 + (n if include_self else 0)
    return n * len(cols) - (0 if include_self else int(torch.isin(rows, cols).sum()))


def _score_share(
    scorer: Scorer,
    rows_all: Tensor,
    cols_all: Tensor,
    cfg: ScreenConfig,
    sym: bool,
    side: int,
    parts: Path,
    ranks: Ranks,
    total: int,
    n: int,
    ranking: Ranking,
) -> int:
    """Score this rank's row blocks (every ``world``-th from ``rank``: early all-vs-all blocks
    are the widest, so round-robin balances), resuming after its last committed block."""
    n_blocks = (len(rows_all) + side - 1) // side
    mine = list(range(ranks.rank, n_blocks, ranks.world))
    commit = _commit_file(parts, ranks)
    done, top = _resume(commit, n, cfg.top_k)
    label = "scoring pairs" + (f" (rank {ranks.rank}/{ranks.world})" if ranks.world > 1 else "")
    meter = Meter(total // ranks.world, label, "pairs", show=cfg.progress)
    scored = 0
    for count, b in enumerate(mine[done:], start=done + 1):
        rows = rows_all[b * side : (b + 1) * side]
        n, hits = _score_rows(scorer, rows, cols_all, cfg, sym, top, side, ranking)
        scored += n
        meter.advance(n)
        _save_rows(parts, b, hits, top, commit, count)
    meter.close()
    return scored


def _merged_topk(parts: Path, world: int, n: int, k: int) -> TopK:
    """The top-K of the whole grid: one rank's, or every rank's combined."""
    top = TopK.empty(n, k)
    for rank in range(world):
        top.combine(_resume(_commit_file(parts, Ranks(rank, world)), n, k)[1])
    return top


def _save_rows(
    parts: Path, b: int, hits: list[tuple[Tensor, Tensor]], top: TopK, commit: Path, count: int
) -> None:
    """Persist row block ``b``: its hits, then the top-K with the rank's block count (commit)."""
    if hits:
        pairs, prob = torch.cat([h[0] for h in hits]), torch.cat([h[1] for h in hits])
        save_tensors(parts / f"hits-{b:06d}.safetensors", {"pairs": pairs, "prob": prob})
    tensors = {"values": top.values, "index": top.index}
    save_tensors(commit, tensors, metadata={"rows_done": str(count)})
