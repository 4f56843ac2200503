"""Frozen ESM-2 teacher: per-residue / pooled embeddings, attentions, contact maps and pair maps.

Loads ESM-2 through ``transformers`` from a hub id or a local directory (one code path). Work is
batched by a token budget over length-sorted sequences (less padding) and returned in input order.

Sequences longer than ``max_residues`` (1022 for ESM-2) follow ``long_policy``, never silently:

* ``"window"`` (default): overlapping windows of ``max_residues`` residues, ``window_overlap``
  residues shared by neighbours; per-residue outputs are averaged over the windows covering each
  residue. Pairwise outputs (contacts, attentions) are averaged over the windows covering both
  residues; pairs that share no window (farther apart than a window) are 0.
* ``"crop"``: keep the first ``max_residues`` residues (the N-terminal part, as ESM's own
  ``extract.py`` truncation does); outputs cover only that span, reported as ``span``.
* ``"error"``: :class:`~protdistill.errors.InputError` naming the record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from protdistill.errors import InputError, ModelError
from protdistill.progress import Meter
from protdistill.teachers.loading import (
    TeacherPrecision,
    autocast,
    check_precision,
    config_hash,
    load_esm,
    sha256_state_dict,
    weights_digest,
)
from protdistill.teachers.windows import Piece, crop_pair, stack_padded, stitch, window_starts

__all__ = ["EsmEmbedding", "EsmTeacher", "PairMap", "crop_pair", "stack_padded", "window_starts"]


LongPolicy = Literal["crop", "window", "error"]


ESM2_MAX_RESIDUES = 1022


DEFAULT_LINKER = "G" * 25


@dataclass
class EsmEmbedding:
    """Embedding of one sequence.

    ``per_residue``: ``(L, D)``, or ``(K, L, D)`` when ``layers`` was a sequence of K layers.
    ``pooled``: ``(D,)`` or ``(K, D)``, the mean over residues (CLS/EOS/padding excluded).
    ``layers``: hidden-state indices used (0 = token embeddings, ``num_layers`` = last).
    ``span``: residue range ``[start, end)`` covered (``(0, L)`` unless cropped).
    """

    per_residue: Tensor
    pooled: Tensor
    layers: tuple[int, ...]
    span: tuple[int, int]


@dataclass
class PairMap:
    """Inter-protein contact block ``map`` ``(La', Lb')`` for residues ``range_a`` x ``range_b``."""

    map: Tensor
    range_a: tuple[int, int]
    range_b: tuple[int, int]


class EsmTeacher:
    """A frozen ESM-2 model with batched, length-sorted inference.

    ``model`` is the frozen ``EsmModel`` backbone; ``lm_head`` the masked-LM head or ``None``.
    ``identity`` is ``<name>-w<weights sha256[:16]>-c<config sha256[:12]>``: caches made with
    another teacher are detected by it. ``sort_by_length=False`` batches in input order (only
    useful to measure what sorting saves).
    """

    def __init__(
        self,
        name_or_path: str | Path,
        *,
        max_residues: int = ESM2_MAX_RESIDUES,
        long_policy: LongPolicy = "window",
        window_overlap: int = 256,
        tokens_per_batch: int = 8192,
        device: str | torch.device = "cpu",
        sort_by_length: bool = True,
        precision: TeacherPrecision = "32",
    ) -> None:
        name = str(name_or_path)
        model, tokenizer = load_esm(name)
        digest = weights_digest(name) or sha256_state_dict(model)
        label = Path(name.rstrip("/")).name or name
        self._setup(model, tokenizer, label, digest)
        self._configure(max_residues, long_policy, window_overlap, tokens_per_batch, sort_by_length)
        self._place(precision, device)

    @classmethod
    def from_model(
        cls,
        esm_model: nn.Module,
        tokenizer: Any,
        *,
        name: str = "in-memory",
        max_residues: int = ESM2_MAX_RESIDUES,
        long_policy: LongPolicy = "window",
        window_overlap: int = 256,
        tokens_per_batch: int = 8192,
        device: str | torch.device = "cpu",
        sort_by_length: bool = True,
        precision: TeacherPrecision = "32",
    ) -> EsmTeacher:
        """Wrap an in-memory ``EsmModel``/``EsmForMaskedLM`` (identity hashes its state dict)."""
        self = cls.__new__(cls)
        digest = sha256_state_dict(esm_model)
        self._setup(esm_model, tokenizer, name, digest)
        self._configure(max_residues, long_policy, window_overlap, tokens_per_batch, sort_by_length)
        self._place(precision, device)
        return self

    def _place(self, precision: str, device: str | torch.device) -> None:
        """Forward on ``device`` under autocast to ``precision`` (outputs float32); a reduced
        precision is part of ``identity``."""
        self.precision = check_precision(precision)
        self.identity += "" if precision == "32" else f"-p{precision}"
        self.device = torch.device(device)
        self._frozen.to(self.device)

    def _setup(self, model: nn.Module, tokenizer: Any, label: str, digest: str) -> None:
        model.eval().requires_grad_(False)
        self._frozen = model
        self.model: nn.Module = getattr(model, "esm", model)
        self.lm_head: nn.Module | None = getattr(model, "lm_head", None)
        self.tokenizer = tokenizer
        vocab = tokenizer.get_vocab()
        self.identity = f"{label}-w{digest[:16]}-c{config_hash(self.model.config, vocab)[:12]}"
        self._cls, self._eos = tokenizer.cls_token_id, tokenizer.eos_token_id
        self._pad = tokenizer.pad_token_id
        self._residue_ids = {t: i for t, i in vocab.items() if len(t) == 1 and t.isalpha()}

    def _configure(
        self,
        max_residues: int,
        long_policy: str,
        window_overlap: int,
        tokens_per_batch: int,
        sort_by_length: bool,
    ) -> None:
        if long_policy not in ("crop", "window", "error"):
            raise ModelError(
                f"unknown long_policy {long_policy!r}", fix="use 'window', 'crop' or 'error'"
            )
        if max_residues < 1 or not 0 <= window_overlap < max_residues:
            raise ModelError(
                f"need max_residues >= 1 and 0 <= window_overlap < max_residues, got "
                f"{max_residues} and {window_overlap}",
                fix="lower --window-overlap or raise --max-residues",
            )
        self.max_residues = max_residues
        self.long_policy = long_policy
        self.window_overlap = window_overlap
        self.tokens_per_batch = tokens_per_batch
        self.sort_by_length = sort_by_length

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    # ------------------------------------------------------------------ public API
    def embed(
        self,
        seqs: Sequence[str],
        layers: int | Sequence[int] | None = None,
        progress: bool = False,
        ids: Sequence[str] | None = None,
    ) -> list[EsmEmbedding]:
        """Embeddings from hidden-state ``layers`` (default: last), one per input, in order.

        ``layers`` indexes ``hidden_states`` (0 = token embeddings, -1 = last). ``ids`` name the
        records in error messages.
        """
        stack = isinstance(layers, Sequence)
        chosen = tuple(layers) if stack else (self.num_layers if layers is None else layers,)
        index = tuple(self._layer_index(i) for i in chosen)

        def run(tokens: Tensor, mask: Tensor) -> Tensor:
            hidden = self.model(tokens, attention_mask=mask, output_hidden_states=True)
            return torch.stack([hidden.hidden_states[i] for i in index], dim=1)  # (B, K, T, D)

        out = []
        per_res, spans = self._run(seqs, run, "residue", progress, ids)
        for tensor, span in zip(per_res, spans, strict=True):
            tensor = tensor if stack else tensor[0]
            out.append(EsmEmbedding(tensor, tensor.mean(dim=-2), index, span))
        return out

    def contacts(
        self, seqs: Sequence[str], progress: bool = False, ids: Sequence[str] | None = None
    ) -> list[Tensor]:
        """Contact probabilities ``(L, L)`` from ESM-2's contact head, one per input."""

        def run(tokens: Tensor, mask: Tensor) -> Tensor:
            return self.model.predict_contacts(tokens, mask)  # (B, T-2, T-2), residues only

        with self._eager():
            maps, _ = self._run(seqs, run, "pair", progress, ids, offset=0)
        return maps

    def attentions(
        self, seqs: Sequence[str], progress: bool = False, ids: Sequence[str] | None = None
    ) -> list[Tensor]:
        """Attention maps ``(layers, H, L, L)`` between residues (CLS/EOS rows/cols dropped)."""

        def run(tokens: Tensor, mask: Tensor) -> Tensor:
            out = self.model(tokens, attention_mask=mask, output_attentions=True)
            return torch.stack(out.attentions, dim=1)  # (B, layers, H, T, T)

        with self._eager():
            maps, _ = self._run(seqs, run, "pair", progress, ids)
        return maps

    def pair_map(
        self,
        seq_a: str,
        seq_b: str,
        linker: str = DEFAULT_LINKER,
        max_residues_each: int | None = None,
    ) -> Tensor:
        """Inter-protein contact block ``(La', Lb')`` of ESM-2's contacts on A + linker + B.

        When ``La + len(linker) + Lb`` exceeds ``max_residues``, the first residues of each
        protein are kept (see :func:`crop_pair`); use :meth:`pair_maps` to get the ranges.
        """
        return self.pair_maps([(seq_a, seq_b)], linker, max_residues_each)[0].map

    def pair_maps(
        self,
        pairs: Sequence[tuple[str, str]],
        linker: str = DEFAULT_LINKER,
        max_residues_each: int | None = None,
        progress: bool = False,
        ids: Sequence[str] | None = None,
    ) -> list[PairMap]:
        """Batched :meth:`pair_map`; each result carries the residue ranges actually used."""
        budget = self.max_residues - len(linker)
        if budget < 2:
            raise ModelError(f"linker of {len(linker)} leaves no room", fix="use a shorter linker")
        joined, ranges = [], []
        for i, (a, b) in enumerate(pairs):
            name = ids[i] if ids else f"pair {i}"
            ra, rb = crop_pair(len(a), len(b), budget, max_residues_each)
            if (ra[1] < len(a) or rb[1] < len(b)) and self.long_policy == "error":
                raise InputError(
                    f"pair of {len(a)} + {len(b)} residues plus a {len(linker)}-residue linker "
                    f"exceeds the model limit of {self.max_residues}",
                    record=name,
                    fix="use long_policy 'crop' or 'window' (pairs are cropped) or shorter chains",
                )
            joined.append(a[: ra[1]] + linker + b[: rb[1]])
            ranges.append((ra, rb))
        maps = self.contacts(joined, progress=progress, ids=ids)
        out = []
        for m, (ra, rb) in zip(maps, ranges, strict=True):
            start_b = ra[1] + len(linker)
            out.append(PairMap(m[: ra[1], start_b : start_b + rb[1]].clone(), ra, rb))
        return out

    # ------------------------------------------------------------------ internals
    def _layer_index(self, layer: int) -> int:
        n = self.num_layers
        if not -(n + 1) <= layer <= n:
            raise ModelError(
                f"layer {layer} out of range for a {n}-layer model",
                fix=f"use 0..{n} (0 = token embeddings) or negative indices",
            )
        return layer % (n + 1)

    @contextmanager
    def _eager(self) -> Iterator[None]:
        """Attentions need the eager attention implementation; restore the previous one after."""
        previous = self.model.config._attn_implementation
        if previous != "eager":
            self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            if previous != "eager":
                self.model.set_attn_implementation(previous)

    def _check(self, seq: str, name: str) -> str:
        seq = seq.upper()
        if not seq:
            raise InputError("empty sequence", record=name, fix="remove the record")
        for pos, char in enumerate(seq, start=1):
            if char not in self._residue_ids:
                raise InputError(
                    f"character {char!r} at position {pos} is not an ESM-2 residue letter",
                    record=name,
                    fix="keep amino-acid letters only (X for unknown)",
                )
        return seq

    def _pieces(
        self, seqs: Sequence[str], ids: Sequence[str] | None
    ) -> tuple[list[Piece], list[tuple[int, int]]]:
        """Split inputs into model-sized pieces by ``long_policy``; return pieces and spans."""
        pieces, spans = [], []
        for i, raw in enumerate(seqs):
            name = ids[i] if ids else f"sequence {i}"
            seq = self._check(raw, name)
            n, limit = len(seq), self.max_residues
            if n > limit and self.long_policy == "error":
                raise InputError(
                    f"{n} residues exceed the model limit of {limit}",
                    record=name,
                    fix="use long_policy 'window' or 'crop', or split the sequence",
                )
            if n > limit and self.long_policy == "crop":
                pieces.append(Piece(i, 0, seq[:limit]))
                spans.append((0, limit))
                continue
            for start in window_starts(n, limit, self.window_overlap):
                pieces.append(Piece(i, start, seq[start : start + limit]))
            spans.append((0, n))
        return pieces, spans

    def _batches(self, pieces: list[Piece]) -> Iterator[list[int]]:
        """Indices of pieces grouped (longest first) so that ``B * T <= tokens_per_batch``."""
        order = list(range(len(pieces)))
        if self.sort_by_length:
            order.sort(key=lambda j: -len(pieces[j].seq))
        batch: list[int] = []
        width = 0
        for j in order:
            new_width = max(width, len(pieces[j].seq) + 2)
            if batch and (len(batch) + 1) * new_width > self.tokens_per_batch:
                yield batch
                batch, new_width = [], len(pieces[j].seq) + 2
            batch.append(j)
            width = new_width
        if batch:
            yield batch

    def _tokenize(self, seqs: list[str]) -> tuple[Tensor, Tensor]:
        """``(B, T)`` token ids with CLS/EOS and padding, and the ``(B, T)`` attention mask."""
        width = max(len(s) for s in seqs) + 2
        tokens = torch.full((len(seqs), width), self._pad, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids = [self._cls, *(self._residue_ids[c] for c in s), self._eos]
            tokens[i, : len(ids)] = torch.tensor(ids)
        return tokens.to(self.device), (tokens != self._pad).long().to(self.device)

    def _run(
        self,
        seqs: Sequence[str],
        fn: Callable[[Tensor, Tensor], Tensor],
        kind: Literal["residue", "pair"],
        progress: bool,
        ids: Sequence[str] | None,
        offset: int = 1,
    ) -> tuple[list[Tensor], list[tuple[int, int]]]:
        """Run ``fn`` over length-sorted batches; stitch pieces back per input sequence.

        ``fn`` maps ``(tokens, mask)`` to a tensor whose last one (``residue``: dim -2) or two
        (``pair``) token axes start with ``offset`` special tokens before the residues.
        """
        pieces, spans = self._pieces(seqs, ids)
        results: list[Tensor | None] = [None] * len(pieces)
        bar = Meter(sum(len(p.seq) for p in pieces), "ESM-2", "residues", show=progress)
        with torch.inference_mode(), autocast(self.precision, self.device.type):
            for batch in self._batches(pieces):
                out = fn(*self._tokenize([pieces[j].seq for j in batch])).float().cpu()
                for row, j in enumerate(batch):
                    n = len(pieces[j].seq)
                    cut = out[row, ..., offset : offset + n, :]
                    results[j] = (
                        cut if kind == "residue" else cut[..., offset : offset + n]
                    ).clone()
                bar.advance(sum(len(pieces[j].seq) for j in batch))
        bar.close()
        return stitch(pieces, results, spans, kind), spans
