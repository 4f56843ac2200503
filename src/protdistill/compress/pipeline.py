"""`protdistill compress`: load a trained student, run the chosen steps in the distil -> prune ->
low rank -> quantize order, measure every stage, save a rebuildable compressed model directory.

OUT/
  compression_manifest.json   base model description, steps applied, replaced-module specs
  model.safetensors           weights (plain tensors; int8 + float scales for quantized layers)
  compression_report.json     per-stage weights, MB, latency, throughput, ratios, metric
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

from protdistill.config import Config
from protdistill.errors import CheckpointError, ConfigError, InputError
from protdistill.io.atomic import write_json, write_text

MANIFEST = "compression_manifest.json"
WEIGHTS = "model.safetensors"
REPORT = "compression_report.json"
FORMAT = "protdistill-compressed"
METHODS = ("prune", "lowrank", "quantize")
Log = Callable[[str], None]


class CompressConfig(Config):
    """Every `protdistill compress` option."""

    model: str | None = None
    out: str | None = None
    method: list[str] = ["prune", "quantize"]
    # prune
    ratio: float = Field(0.5, ge=0, lt=1, description="fraction of units removed per group")
    importance: Literal["l1", "taylor"] = "l1"
    finetune_steps: int = Field(200, ge=0, description="fine-tuning steps after prune / lowrank")
    finetune_lr: float = Field(1e-3, gt=0)
    distill: bool = Field(True, description="fine-tune by distilling from the uncompressed model")
    alpha: float = Field(0.5, ge=0, le=1, description="KD weight when distilling (1-alpha on CE)")
    temperature: float = Field(4.0, gt=0)
    # low rank
    rank: int | None = Field(None, ge=1)
    energy: float | None = Field(None, gt=0, le=1, description="default 0.9 when rank unset")
    lowrank_min_params: int = Field(4096, ge=1)
    # quantize
    quantize_linear: bool = True
    quantize_conv: bool = True
    backend: Literal["native", "reference"] = "native"
    calibration_batches: int = Field(8, ge=1)
    skip: list[str] = Field(default_factory=list, description="module paths left untouched")
    # data / evaluation / benchmark
    pairs: str | None = None
    fasta: str | None = None
    batch_size: int = Field(32, ge=1)
    max_eval: int | None = Field(None, ge=2, description="cap on held-out items evaluated")
    bench_batch: int = Field(32, ge=1)
    bench_repeats: int = Field(7, ge=1)
    threads: int | None = Field(None, ge=1)
    seed: int = 0

    @field_validator("method", mode="before")
    @classmethod
    def _split_methods(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("method")
    @classmethod
    def _check_order(cls, value: list[str]) -> list[str]:
        bad = [m for m in value if m not in METHODS]
        if bad:
            raise ValueError(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
        if not value or len(set(value)) != len(value):
            raise ValueError("give each method once, e.g. prune,quantize")
        if value != sorted(value, key=METHODS.index):
            raise ValueError("steps must follow prune -> lowrank -> quantize (quantize last)")
        return value


# ----------------------------------------------------------------------------- tasks
@dataclass
class Task:
    """What compression needs from a model family: batches, a loss, a metric, timing input."""

    kind: str
    model: nn.Module
    base: dict[str, Any]
    meta: dict[str, Any]
    metric: str
    unit: str
    train: list[Any] = field(default_factory=list)
    held_out: list[Any] = field(default_factory=list)

    def forward(self, model: nn.Module, batch: dict) -> Tensor:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: dict, teacher: nn.Module | None, cfg) -> Tensor:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, reference: nn.Module) -> dict[str, float]:
        raise NotImplementedError

    def bench_batch(self, n: int) -> dict:
        raise NotImplementedError

    def batches(self, items: list[Any], size: int, shuffle: bool = False) -> Iterator[dict]:
        raise NotImplementedError


class PpiTask(Task):
    """A PPI pair student (``student.safetensors`` or a run directory) and its split."""

    max_residues: int = 1000
    sequences: dict[str, str]
    split_path: Path | None = None

    def batches(self, items, size, shuffle=False):
        from torch.utils.data import DataLoader

        from protdistill.tasks.ppi.data import PairDataset, collate_pairs

        ds = PairDataset(items, self.sequences, max_residues=self.max_residues)
        gen = torch.Generator().manual_seed(0)
        yield from DataLoader(
            ds, batch_size=size, shuffle=shuffle, collate_fn=collate_pairs, generator=gen
        )

    def forward(self, model, batch):
        return model(batch["tokens_a"], batch["mask_a"], batch["tokens_b"], batch["mask_b"]).logits

    def loss(self, model, batch, teacher, cfg):
        from protdistill.distill.losses import response_kd

        logits = self.forward(model, batch)
        labels = batch["label"]
        if teacher is None:
            return torch.nn.functional.cross_entropy(logits, labels)
        with torch.no_grad():
            t_logits = self.forward(teacher, batch)
        return response_kd(logits, t_logits, labels, alpha=cfg.alpha, temperature=cfg.temperature)

    def evaluate(self, model, reference):
        from protdistill.tasks.ppi.metrics import binary_metrics
        from protdistill.tasks.ppi.pipeline import predict_pairs

        labels = torch.tensor([p.label for p in self.held_out]).numpy()
        probs = predict_pairs(
            model, self.held_out, self.sequences, max_residues=self.max_residues
        ).numpy()
        return binary_metrics(labels, probs)

    def bench_batch(self, n):
        pool = self.held_out or self.train
        items = [pool[i % len(pool)] for i in range(n)]
        return next(self.batches(items, n))


class EsmTask(Task):
    """An ESM-like encoder (transformers ``EsmModel`` directory); the metric is the cosine
    similarity of its mean-pooled last hidden states to the uncompressed model's."""

    tokenizer: Any = None
    max_length: int = 512

    def batches(self, items, size, shuffle=False):
        order = list(range(len(items)))
        if shuffle:
            torch.manual_seed(0)
            order = torch.randperm(len(items)).tolist()
        for i in range(0, len(order), size):
            seqs = [items[j] for j in order[i : i + size]]
            enc = self.tokenizer(
                seqs,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            )
            yield {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def forward(self, model, batch):
        return model(**batch).last_hidden_state

    def _pooled(self, model, batch):
        mask = batch["attention_mask"][..., None].float()
        return (self.forward(model, batch) * mask).sum(1) / mask.sum(1)

    def loss(self, model, batch, teacher, cfg):
        if teacher is None:
            raise ConfigError(
                "an ESM encoder has no labels: fine-tuning must distil from the original",
                fix="keep --distill (the default) or set --finetune-steps 0",
            )
        with torch.no_grad():
            target = self.forward(teacher, batch)
        from protdistill.distill.losses import feature_kd

        return feature_kd(self.forward(model, batch), target, batch["attention_mask"].bool())

    @torch.no_grad()
    def evaluate(self, model, reference):
        sims = []
        for batch in self.batches(self.held_out, 16):
            a, b = self._pooled(model.eval(), batch), self._pooled(reference.eval(), batch)
            sims.append(torch.nn.functional.cosine_similarity(a, b, dim=-1))
        return {"cosine_to_original": float(torch.cat(sims).mean()), "n": len(self.held_out)}

    def bench_batch(self, n):
        pool = self.held_out or self.train
        return next(self.batches([pool[i % len(pool)] for i in range(n)], n))


def _run_dir_meta(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        return path, path / "student.safetensors"
    return path.parent, path


def load_task(cfg: CompressConfig, *, log: Log) -> Task:
    """The model behind ``cfg.model`` plus the data it is calibrated / tuned / scored on."""
    if not cfg.model:
        raise ConfigError("no model given", fix="protdistill compress MODEL --out DIR")
    path = Path(cfg.model)
    if not path.exists():
        raise InputError("model not found", path=path, fix="pass a run dir or .safetensors file")
    if path.is_dir() and (path / "config.json").exists() and not (path / MANIFEST).exists():
        return _esm_task(cfg, path)
    if path.suffix == ".pt":
        return _esm_task(cfg, path)
    if path.is_dir() and (path / MANIFEST).exists():
        base = json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("base", {})
        if base.get("kind") == "esm":
            return _esm_task(cfg, path)
    return _ppi_task(cfg, path, log=log)


def _ppi_task(cfg: CompressConfig, path: Path, *, log: Log) -> PpiTask:
    from protdistill.tasks.ppi.data import load_ppi, load_split, make_split
    from protdistill.tasks.ppi.pipeline import load_student

    model, meta = load_student(path)
    base = meta.get("compression", {}).get("base") or {"kind": "ppi_student", "meta": meta}
    ppi = meta.get("ppi", {})
    run_dir, _ = _run_dir_meta(path)
    split_path = run_dir / "split.json"
    if cfg.pairs or cfg.fasta or not split_path.exists():
        pairs, fasta = cfg.pairs or ppi.get("pairs"), cfg.fasta or ppi.get("fasta")
        if not pairs or not fasta:
            raise ConfigError(
                "no data to calibrate, fine-tune and evaluate on",
                path=path,
                fix="pass --pairs and --fasta (or a run directory holding split.json)",
            )
        data = load_ppi(pairs, fasta)
        idx = make_split(data.pairs, mode="protein", seed=cfg.seed)
        split = {k: [data.pairs[i] for i in v] for k, v in idx.items()}
        sequences = data.sequences
        log(f"data: {pairs} (protein-disjoint split, seed {cfg.seed})")
    else:
        split = load_split(split_path)
        fasta = cfg.fasta or ppi.get("fasta")
        if not fasta or not Path(fasta).exists():
            raise ConfigError(
                "the run's FASTA is missing", path=fasta, fix="pass --fasta with its sequences"
            )
        from protdistill.io.fasta import read_fasta

        sequences = read_fasta(fasta)
        log(f"data: {split_path} (train {len(split['train'])}, test {len(split['test'])} pairs)")
    held_out = split["test"][: cfg.max_eval] if cfg.max_eval else split["test"]
    task = PpiTask(
        kind="ppi",
        model=model,
        base=base,
        meta=meta,
        metric="aupr",
        unit="pairs/s",
        train=split["train"],
        held_out=held_out,
    )
    task.sequences = sequences
    task.max_residues = int(ppi.get("max_residues", 1000))
    task.split_path = None if cfg.pairs or cfg.fasta else split_path
    return task


def _esm_tokenizer():
    """ESM-2's tokenizer, for a student file that carries none."""
    import tempfile

    from transformers import EsmTokenizer

    from protdistill.alphabet import write_esm_vocab

    with tempfile.TemporaryDirectory() as tmp:
        return EsmTokenizer(str(write_esm_vocab(tmp)))


def _load_esm(path: Path) -> tuple[nn.Module, dict[str, Any], dict[str, Any], Any]:
    """``(model, base, meta, tokenizer)`` of an HF directory, a small-ESM ``.pt`` or a
    compressed ESM directory."""
    from transformers import AutoTokenizer, EsmModel

    if path.suffix == ".pt":
        from protdistill.students.small_esm import load_small_esm

        model, meta = load_small_esm(path)
        base = {"kind": "esm", "config": model.config.to_dict()}
        return model, base, {"esm": {"source": str(path), **meta}}, _esm_tokenizer()
    if (path / MANIFEST).exists():
        model, meta = load_compressed(path)
        return model, meta["compression"]["base"], meta, _esm_tokenizer()
    try:
        model = EsmModel.from_pretrained(path, add_pooling_layer=False).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"not a loadable ESM model directory ({exc})".splitlines()[0],
            path=path,
            fix="pass a directory written by EsmModel.save_pretrained with its tokenizer",
        ) from exc
    base = {"kind": "esm", "config": model.config.to_dict()}
    return model, base, {"esm": {"source": str(path)}}, tokenizer


def _esm_task(cfg: CompressConfig, path: Path) -> EsmTask:
    from protdistill.io.fasta import read_fasta

    model, base, meta, tokenizer = _load_esm(path)
    if not cfg.fasta:
        raise ConfigError(
            "an ESM model needs sequences to tune, calibrate and evaluate on",
            path=path,
            fix="pass --fasta FILE",
        )
    seqs = list(read_fasta(cfg.fasta).values())
    g = torch.Generator().manual_seed(cfg.seed)
    seqs = [seqs[i] for i in torch.randperm(len(seqs), generator=g).tolist()]
    n_test = max(1, len(seqs) // 5)
    held_out = seqs[:n_test][: cfg.max_eval] if cfg.max_eval else seqs[:n_test]
    task = EsmTask(
        kind="esm",
        model=model,
        base=base,
        meta=meta,
        metric="cosine_to_original",
        unit="seqs/s",
        train=seqs[n_test:],
        held_out=held_out,
    )
    task.tokenizer = tokenizer
    return task


# ----------------------------------------------------------------------------- steps
def finetune(
    task: Task, model: nn.Module, teacher: nn.Module | None, cfg: CompressConfig, *, log: Log
) -> float | None:
    """``cfg.finetune_steps`` AdamW steps on the training items; returns the mean last-50 loss."""
    if cfg.finetune_steps == 0 or not task.train:
        return None
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.finetune_lr)
    batches = itertools.cycle(list(task.batches(task.train, cfg.batch_size, shuffle=True)))
    if teacher is not None:
        teacher.eval()
    model.train()
    losses = []
    for step in range(cfg.finetune_steps):
        loss = task.loss(model, next(batches), teacher, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == cfg.finetune_steps:
            log(f"  fine-tune step {step + 1}/{cfg.finetune_steps}: loss {losses[-1]:.4f}")
    model.eval()
    tail = losses[-50:]
    return sum(tail) / len(tail)


def _calibration(task: Task, cfg: CompressConfig) -> list[dict]:
    return list(itertools.islice(task.batches(task.train, cfg.batch_size), cfg.calibration_batches))


def run_step(
    method: str, task: Task, model: nn.Module, teacher: nn.Module, cfg: CompressConfig, *, log: Log
) -> dict[str, Any]:
    """Apply one compression step in place; returns its summary for the manifest / report."""
    from protdistill.compress.lowrank import factorize_model
    from protdistill.compress.prune import prune_model
    from protdistill.compress.quantize import quantize_model

    calib = _calibration(task, cfg)

    def run_batches(m: nn.Module) -> None:
        with torch.no_grad():
            for b in calib:
                task.forward(m, b)

    if method == "prune":
        losses = [lambda m, b=b: task.loss(m, b, None, cfg) for b in calib]
        if task.kind == "esm":
            losses = [lambda m, b=b: task.loss(m, b, teacher, cfg) for b in calib]
        groups = prune_model(
            model,
            cfg.ratio,
            importance=cfg.importance,
            loss_batches=losses,
            run_example=lambda m: task.forward(m, calib[0]),
            skip=cfg.skip,
        )
        log(f"pruned {len(groups)} groups at ratio {cfg.ratio} ({cfg.importance})")
        summary: dict[str, Any] = {"ratio": cfg.ratio, "importance": cfg.importance}
        summary["groups"] = groups
    elif method == "lowrank":
        energy = cfg.energy if cfg.rank is None and cfg.energy is not None else None
        if cfg.rank is None and energy is None:
            energy = 0.9
        layers = factorize_model(
            model, rank=cfg.rank, energy=energy, min_params=cfg.lowrank_min_params, skip=cfg.skip
        )
        log(f"factorised {len(layers)} Linear layers")
        summary = {"rank": cfg.rank, "energy": energy, "layers": layers}
    else:
        summary = quantize_model(
            model,
            run_batches=run_batches,
            linear=cfg.quantize_linear,
            conv=cfg.quantize_conv,
            skip=cfg.skip,
            backend=cfg.backend,
        )
        log(f"quantized {len(summary['conv'])} Conv1d (static), {len(summary['linear'])} Linear")
        summary["backend"] = cfg.backend
        summary["engine"] = torch.backends.quantized.engine
        return {"method": method, **summary}
    tuned = finetune(task, model, teacher if cfg.distill else None, cfg, log=log)
    return {"method": method, **summary, "finetune_steps": cfg.finetune_steps, "final_loss": tuned}


# ----------------------------------------------------------------------------- save / load
_ATTRS = ("num_attention_heads", "all_head_size")


def diff_specs(base: nn.Module, model: nn.Module) -> dict[str, dict[str, Any]]:
    """Specs turning the fresh ``base`` architecture into ``model``'s, in pre-order (a replaced
    module is recorded before any of its own children that were replaced later)."""
    from protdistill.compress.lowrank import LowRankLinear
    from protdistill.compress.quantize import QuantConv1d, QuantLinear
    from protdistill.compress.specs import apply_specs, module_spec

    kinds = (nn.Linear, nn.Conv1d, nn.BatchNorm1d, nn.Identity, QuantLinear, QuantConv1d)
    kinds = kinds + (LowRankLinear,)
    shadow = copy.deepcopy(base)
    specs: dict[str, dict[str, Any]] = {}
    for path, m in model.named_modules():
        try:
            old = shadow.get_submodule(path)
        except AttributeError:
            old = None
        attrs = {a: getattr(m, a) for a in _ATTRS if hasattr(m, a)}
        if old is not None and attrs and attrs != {a: getattr(old, a, None) for a in attrs}:
            specs[path] = {"type": "attrs", "values": attrs}
            apply_specs(shadow, {path: specs[path]})
        if not isinstance(m, kinds):
            continue
        spec = module_spec(m)
        same = old is not None and type(old) is type(m) and module_spec(old) == spec
        if not same:
            specs[path] = spec
            apply_specs(shadow, {path: spec})
    return specs


def build_base(base: dict[str, Any]) -> nn.Module:
    """A fresh (uncompressed) model from a manifest's ``base`` entry."""
    if base.get("kind") == "ppi_student":
        from protdistill.students import build_student

        return build_student(base["meta"]["student"])
    if base.get("kind") == "esm":
        from transformers import EsmConfig, EsmModel

        config = EsmConfig.from_dict(base["config"])
        config._attn_implementation = "eager"
        return EsmModel(config, add_pooling_layer=False)
    raise CheckpointError(
        f"unknown base model kind {base.get('kind')!r}",
        record="base.kind",
        fix="re-run compress with this protdistill version",
    )


def save_compressed(
    out: str | Path, model: nn.Module, task: Task, steps: list[dict[str, Any]]
) -> Path:
    """Write ``OUT/model.safetensors`` then ``OUT/compression_manifest.json`` (the manifest last,
    so a directory with a manifest always has matching weights)."""
    from protdistill.distill.checkpoint import save_model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = task.meta.get("compression", {}).get("steps", [])
    manifest = {
        "format": FORMAT,
        "version": 1,
        "base": task.base,
        "steps": previous + steps,
        "modules": diff_specs(build_base(task.base), model),
        "weights": WEIGHTS,
    }
    meta = {k: v for k, v in task.meta.items() if k != "compression"}
    save_model(out / WEIGHTS, model, {**meta, "compression": {"steps": manifest["steps"]}})
    split_path = getattr(task, "split_path", None)
    if split_path is not None and split_path.resolve() != (out / "split.json").resolve():
        # the held-out split travels with the model, so re-compressing never tunes on test pairs
        write_text(out / "split.json", split_path.read_text(encoding="utf-8"))
    write_json(out / MANIFEST, manifest)
    return out


def load_compressed(path: str | Path, backend: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild a compressed model from its directory: ``(model in eval mode, meta)``.

    ``meta`` is the original model's metadata (e.g. ``student`` and ``ppi`` for PPI students) with
    ``meta["compression"] = {"steps": [...], "base": {...}}``. ``backend`` overrides the INT8
    backend (``native`` / ``reference``).
    """
    from protdistill.compress.quantize import QuantConv1d, QuantLinear
    from protdistill.compress.specs import apply_specs
    from protdistill.distill.checkpoint import load_model_state

    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(
            "no compression manifest here", path=manifest_path, fix="pass a `compress --out` dir"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"corrupt manifest ({exc.msg})", path=manifest_path, fix="re-run compress"
        ) from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != 1:
        raise CheckpointError(
            "unknown manifest format or version", path=manifest_path, fix="re-run compress"
        )
    state, meta = load_model_state(path / manifest.get("weights", WEIGHTS))
    model = apply_specs(build_base(manifest["base"]), manifest["modules"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"weights do not match the manifest ({' '.join(str(exc).split())[:300]})",
            path=path / WEIGHTS,
            fix="re-run compress; the directory was modified",
        ) from exc
    if backend is not None:
        for m in model.modules():
            if isinstance(m, (QuantLinear, QuantConv1d)):
                m.backend = backend
    meta = dict(meta)
    meta["compression"] = {"steps": manifest["steps"], "base": manifest["base"]}
    return model.eval(), meta


# ----------------------------------------------------------------------------- orchestration
def _stage(name: str, model: nn.Module, task: Task, original: nn.Module) -> dict[str, Any]:
    from protdistill.compress.report import count_weights, disk_mb

    return {
        "step": name,
        "weights": count_weights(model),
        "size_mb": disk_mb(model),
        "metrics": task.evaluate(model, original),
    }


def compress(cfg: CompressConfig, *, log: Log = lambda _: None) -> dict[str, Any]:
    """Run ``cfg.method`` on ``cfg.model``; save to ``cfg.out``; return the report dict."""
    from protdistill.compress.report import build_rows, interleaved_latency

    if not cfg.out:
        raise ConfigError("no output directory", fix="pass --out DIR")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    task = load_task(cfg, log=log)
    original = task.model.eval()
    for p in original.parameters():
        p.requires_grad_(False)
    log(f"evaluating the original ({len(task.held_out)} held-out items)")
    stages = [_stage("original", original, task, original)]
    models = [original]
    model = copy.deepcopy(original)
    for p in model.parameters():
        p.requires_grad_(True)
    steps = []
    for method in cfg.method:
        log(f"step {method}")
        steps.append(run_step(method, task, model, original, cfg, log=log))
        models.append(copy.deepcopy(model).eval())
        stages.append(_stage(method, models[-1], task, original))
    log("saving and reloading the compressed model")
    save_compressed(cfg.out, model, task, steps)
    reloaded, _ = load_compressed(cfg.out, backend=cfg.backend)
    with torch.no_grad():
        batch = task.bench_batch(min(cfg.bench_batch, 8))
        drift = (task.forward(reloaded, batch) - task.forward(model.eval(), batch)).abs().max()
    bench = task.bench_batch(cfg.bench_batch)
    log(f"timing {len(models)} stages x {cfg.bench_repeats} repeats (interleaved)")
    latencies, cpu_times = interleaved_latency(
        models, lambda m: task.forward(m, bench), repeats=cfg.bench_repeats
    )
    unit = task.unit.replace("/", "_per_")
    rows = build_rows(stages, latencies, cfg.bench_batch, unit, cpu_times)
    report = {
        "model": str(cfg.model),
        "kind": task.kind,
        "metric": task.metric,
        "unit": unit,
        "bench_batch": cfg.bench_batch,
        "threads": torch.get_num_threads(),
        "quantized_engine": torch.backends.quantized.engine,
        "reload_max_abs_diff": float(drift),
        "config": cfg.model_dump(),
        "steps": steps,
        "stages": rows,
    }
    write_json(Path(cfg.out) / REPORT, report)
    return report
