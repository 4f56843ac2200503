"""Training a DeepSC teacher (cross-entropy over random SNRs) and the shared Lightning module
that also distils students (``α·T²·KL(teacher‖student) + (1−α)·CE``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from pydantic import Field

from protdistill.config import Config
from protdistill.distill.checkpoint import load_best_student
from protdistill.distill.losses import cross_entropy, kd_kl
from protdistill.distill.trainer import DistillModule, TrainConfig, best_epoch, fit
from protdistill.errors import ConfigError, ModelError
from protdistill.tasks.semcom.data import PAD, Vocab, load_split, make_loader
from protdistill.tasks.semcom.model import (
    DeepSC,
    DeepSCConfig,
    LoadedDeepSC,
    count_parameters,
    load_deepsc,
    save_deepsc,
)
from protdistill.tasks.semcom.taps import LayerTaps, layer_losses


class SemcomDataConfig(Config):
    """Which Europarl sentences are used and how they are split (stored in every checkpoint)."""

    corpus: str = "../shared/data/text/europarl_2000"
    min_words: int = Field(4, ge=1)
    max_words: int = Field(30, ge=1)
    max_sentences: int | None = Field(20000, ge=2, description="seeded subset; None = all")
    test_fraction: float = Field(0.1, gt=0, lt=1)
    split_seed: int = 0


class SemcomTrainConfig(SemcomDataConfig):
    """`protdistill semcom train` settings (every field is a CLI option)."""

    output_path: str = "runs/semcom/teacher"
    vocab_size: int = Field(4000, ge=8, description="vocabulary cap, specials included")
    d_model: int = 128
    n_heads: int = 8
    d_ff: int = 256
    enc_layers: int = Field(3, ge=1)
    dec_layers: int = Field(3, ge=1)
    symbol_dim: int = Field(16, ge=2)
    dropout: float = Field(0.1, ge=0, lt=1)
    receiver_positions: bool = Field(
        True, description="add symbol positions to the receiver's channel-decoded memory"
    )
    snr_min: float = 0.0
    snr_max: float = 18.0
    channel: Literal["awgn", "rayleigh", "mixed"] = "mixed"
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    val_sentences: int = Field(500, ge=1, description="test sentences used for val_loss")
    patience: int | None = Field(
        None, ge=1, description="stop after this many epochs without a better val_loss"
    )
    seed: int = 0
    init_checkpoint: str | None = Field(
        None, description="start from this DeepSC .pt (same architecture and vocabulary)"
    )
    resume: bool = True
    progress: bool = True

    def data(self) -> SemcomDataConfig:
        return SemcomDataConfig(**{k: getattr(self, k) for k in SemcomDataConfig.model_fields})

    def model(self, vocab_size: int) -> DeepSCConfig:
        fields = ("d_model", "n_heads", "d_ff", "enc_layers", "dec_layers", "symbol_dim", "dropout",
                  "receiver_positions")  # fmt: skip
        return DeepSCConfig(
            vocab_size=vocab_size, max_len=self.max_words + 2, **self.snapshot(fields)
        )

    def snapshot(self, fields: tuple[str, ...]) -> dict[str, Any]:
        return {k: getattr(self, k) for k in fields}


class SemcomModule(DistillModule):
    """Trains ``student`` on sentences ``{"tokens", "mask"}`` sent at random SNRs.

    Without a teacher the loss is cross-entropy; with one, ``alpha·T²·KL + (1−alpha)·CE`` where
    teacher and student see the same SNR and the same channel draw (noise, fading), plus, for
    ``layer_pairs`` ``{part: [(student layer, teacher layer), ...]}``, ``hidden_weight`` x MSE of
    those layers' hidden states and ``attention_weight`` x row-KL of their attention maps.
    """

    def __init__(
        self,
        student: DeepSC,
        cfg: TrainConfig,
        teacher: DeepSC | None = None,
        *,
        snr_range: tuple[float, float] = (0.0, 18.0),
        channel: str = "mixed",
        alpha: float = 0.7,
        temperature: float = 4.0,
        val_seed: int = 1234,
        layer_pairs: dict[str, list[tuple[int, int]]] | None = None,
        hidden_weight: float = 0.0,
        attention_weight: float = 0.0,
    ) -> None:
        super().__init__(student, cfg, teacher)
        if snr_range[0] > snr_range[1]:
            raise ConfigError(f"snr_min > snr_max ({snr_range})", fix="swap the SNR bounds")
        self.snr_range = snr_range
        self.channel = channel
        self.alpha = alpha
        self.temperature = temperature
        self.val_seed = val_seed
        self._val_gen: torch.Generator | None = None
        self.layer_pairs = layer_pairs or {}
        self.layer_weights = {"hidden": hidden_weight, "attention": attention_weight}

    def on_validation_epoch_start(self) -> None:
        self._val_gen = torch.Generator().manual_seed(self.val_seed)

    def step(self, batch: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        tokens, mask = batch["tokens"], batch["mask"]
        gen = self._val_gen if stage != "train" else None
        lo, hi = self.snr_range
        snr = lo + (hi - lo) * torch.rand(tokens.shape[0], generator=gen)
        seed = int(torch.randint(0, 2**62, (1,), generator=gen))
        taps = self.teacher is not None and any(w > 0 for w in self.layer_weights.values())
        layers = {p: [i for i, _ in v] for p, v in self.layer_pairs.items()} if taps else {}
        attention = self.layer_weights["attention"] > 0
        with LayerTaps(self.student, layers, attention) as s_taps:
            out = self.student(tokens, mask, snr, self.channel, torch.Generator().manual_seed(seed))
        labels = tokens[:, 1:]
        valid = labels != PAD
        ce = cross_entropy(out.logits, labels, valid)
        if self.teacher is None:
            return {"loss": ce}
        t_layers = {p: [j for _, j in v] for p, v in self.layer_pairs.items()} if taps else {}
        with torch.no_grad(), LayerTaps(self.teacher, t_layers, attention) as t_taps:
            ref = self.teacher(tokens, mask, snr, self.channel, torch.Generator().manual_seed(seed))
        kd = kd_kl(out.logits, ref.logits, self.temperature, valid)
        terms = {"kd": kd, "ce": ce}
        loss = self.alpha * kd + (1 - self.alpha) * ce
        if taps:
            masks = {"encoder": mask, "decoder": tokens[:, :-1] != PAD}
            extra = layer_losses(s_taps, t_taps, self.layer_pairs, masks)
            terms |= extra
            loss = loss + sum(self.layer_weights[k] * v for k, v in extra.items())
        return {"loss": loss, **terms}


class ExportEpochs(L.Callback):
    """After each epoch save the student as ``{prefix}{N}.pt`` (N from 1) in DeepSC format."""

    def __init__(self, out_dir: Path, prefix: str, vocab: list[str], meta: dict[str, Any]) -> None:
        self.out_dir, self.prefix, self.vocab, self.meta = Path(out_dir), prefix, vocab, meta

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.prefix or not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch + 1
        meta = {**self.meta, "epoch": epoch}
        save_deepsc(self.out_dir / f"{self.prefix}{epoch}.pt", pl_module.student, self.vocab, meta)


def _warm_start(model: DeepSC, vocab: Vocab, path: str) -> None:
    """Load weights from an earlier DeepSC checkpoint with the same vocabulary and shapes."""
    init = load_deepsc(path)
    if init.vocab != vocab.words or init.model.config != model.config:
        raise ModelError(
            "init checkpoint has another vocabulary or architecture",
            path=path,
            fix="use the same corpus, subset, vocab_size and model sizes as that checkpoint",
        )
    model.load_state_dict(init.model.state_dict())


def teacher_split(
    teacher: LoadedDeepSC, corpus: str | None = None
) -> tuple[SemcomDataConfig, list, list]:
    """The data settings a teacher was trained with (``corpus`` overrides its corpus) and the
    train / test sentences they give: students and analyses see the teacher's split."""
    data = SemcomDataConfig(**teacher.meta.get("data", {}))
    if corpus:
        data = data.model_copy(update={"corpus": corpus})
    train, test = load_split(
        data.corpus,
        min_words=data.min_words,
        max_words=data.max_words,
        max_sentences=data.max_sentences,
        test_fraction=data.test_fraction,
        seed=data.split_seed,
    )
    return data, train, test


@dataclass
class TeacherResult:
    """Paths and figures of a finished teacher training."""

    path: Path
    last_path: Path
    best_loss: float
    best_epoch: int
    parameters: int
    seconds: float


def train_teacher(cfg: SemcomTrainConfig) -> TeacherResult:
    """Train a DeepSC teacher; writes ``teacher.pt`` (best val loss), ``teacher_last.pt``,
    ``teacher_epoch{N}.pt`` and the trainer's files under ``cfg.output_path``."""
    start = time.time()
    out = Path(cfg.output_path)
    train, test = load_split(
        cfg.corpus,
        min_words=cfg.min_words,
        max_words=cfg.max_words,
        max_sentences=cfg.max_sentences,
        test_fraction=cfg.test_fraction,
        seed=cfg.split_seed,
    )
    vocab = Vocab.build(train, cfg.vocab_size)
    torch.manual_seed(cfg.seed)
    model = DeepSC(cfg.model(len(vocab)))
    if cfg.init_checkpoint:
        _warm_start(model, vocab, cfg.init_checkpoint)
    tcfg = TrainConfig(
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        progress=cfg.progress,
        patience=cfg.patience,
    )
    module = SemcomModule(model, tcfg, snr_range=(cfg.snr_min, cfg.snr_max), channel=cfg.channel)
    module.add_config("semcom", cfg)
    meta = {"role": "teacher", "data": cfg.data().model_dump(), "train": cfg.model_dump()}
    loaders = (
        make_loader(train, vocab, cfg.batch_size, shuffle=True, seed=cfg.seed),
        make_loader(test[: cfg.val_sentences], vocab, cfg.batch_size, shuffle=False),
    )
    export = ExportEpochs(out, "teacher_epoch", vocab.words, meta)
    result = fit(module, *loaders, tcfg, out, resume=cfg.resume, callbacks=[export])
    save_deepsc(out / "teacher_last.pt", model, vocab.words, meta)
    load_best_student(model, result.best_path)
    loss, epoch = best_epoch(result.history)
    meta = {**meta, "best_loss": loss, "best_epoch": epoch, "train_seconds": time.time() - start}
    path = save_deepsc(out / "teacher.pt", model, vocab.words, meta)
    return TeacherResult(
        path, out / "teacher_last.pt", loss, epoch, count_parameters(model), time.time() - start
    )
