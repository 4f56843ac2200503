"""Distilling a DeepSC teacher into a shallower student: whole model, transmitter or receiver.

``full``: both parts get ``student_layers`` layers, initialised from evenly spaced teacher layers
(DistilBERT-style; embeddings, channel codecs and output layer copied), and both learn.
``encoder`` / ``decoder``: only that part is shallower and learns; the other part is an exact,
frozen copy of the teacher's (it stays bit-identical through training).

Besides the output KD, each learning student layer reproduces the hidden states and attention maps
(self- and, in the receiver, cross-attention) of the last teacher layer of the block it replaces
(``hidden_weight``, ``attention_weight``; 0 turns a term off).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from protdistill.distill.checkpoint import load_best_student
from protdistill.distill.parallel import current_ranks
from protdistill.distill.partial import (
    DistillConfig,
    copy_layers,
    copy_part,
    copy_shared,
    distill_report,
    freeze,
    train_config,
    trainable_count,
)
from protdistill.distill.trainer import best_epoch, fit
from protdistill.errors import ConfigError
from protdistill.io.atomic import write_json
from protdistill.tasks.semcom.data import Vocab, make_loader
from protdistill.tasks.semcom.hybrid import save_hybrid
from protdistill.tasks.semcom.model import (
    DeepSC,
    LoadedDeepSC,
    load_deepsc,
    save_deepsc,
)
from protdistill.tasks.semcom.taps import student_to_teacher_layers
from protdistill.tasks.semcom.train import (
    ExportEpochs,
    SemcomModule,
    teacher_split,
)


def make_student(
    teacher: DeepSC, part: str, student_layers: int, init_layers: list[int] | None = None
) -> tuple[DeepSC, dict]:
    """Student of ``teacher`` for ``part``; returns it and ``{"encoder"|"decoder": indices}``
    (the teacher layers each student layer was initialised from: ``init_layers`` for the
    distilled part(s), evenly spaced by default)."""
    cfg = teacher.config
    enc = student_layers if part in ("full", "encoder") else cfg.enc_layers
    dec = student_layers if part in ("full", "decoder") else cfg.dec_layers
    student = DeepSC(cfg.model_copy(update={"enc_layers": enc, "dec_layers": dec}))
    copy_shared(teacher, student, skip=("transmitter.layers.", "receiver.layers."))
    chosen = {p: init_layers if part in ("full", p) else None for p in ("encoder", "decoder")}
    layer_map = {
        "encoder": copy_layers(
            teacher.transmitter.layers, student.transmitter.layers, chosen["encoder"]
        ),
        "decoder": copy_layers(teacher.receiver.layers, student.receiver.layers, chosen["decoder"]),
    }
    if part == "encoder":
        copy_part(teacher.receiver, student.receiver, "receiver (decoder)")
        freeze(student.receiver)
    elif part == "decoder":
        copy_part(teacher.transmitter, student.transmitter, "transmitter (encoder)")
        freeze(student.transmitter)
    return student, layer_map


def taught_layers(teacher: DeepSC, part: str, student_layers: int) -> dict[str, list]:
    """``{part: [(student layer, teacher layer), ...]}`` for the parts that learn: each student
    layer reproduces the last teacher layer of the block it replaces."""
    cfg = teacher.config
    n_teacher = {"encoder": cfg.enc_layers, "decoder": cfg.dec_layers}
    parts = ("encoder", "decoder") if part == "full" else (part,)
    return {
        p: list(enumerate(student_to_teacher_layers(n_teacher[p], student_layers))) for p in parts
    }


def _check_layers(teacher: LoadedDeepSC, cfg: DistillConfig) -> None:
    """The distilled part(s) cannot have more layers than the teacher's."""
    tc = teacher.model.config
    parts = {"full": ("enc_layers", "dec_layers"), "encoder": ("enc_layers",)}
    names = parts.get(cfg.distill_part, ("dec_layers",))
    most = min(getattr(tc, n) for n in names)
    if not 1 <= cfg.student_layers <= most:
        raise ConfigError(
            f"student_layers={cfg.student_layers} but the teacher's "
            f"{'/'.join(n.split('_')[0] + 'oder' for n in names)} has {most} layers",
            path=teacher.path,
            fix=f"choose 1 <= --student-layers <= {most}",
        )


def _checked_student(teacher: LoadedDeepSC, cfg: DistillConfig) -> tuple[DeepSC, dict]:
    """The student ``cfg`` asks for, after checking its depth against the teacher's."""
    _check_layers(teacher, cfg)
    return make_student(teacher.model, cfg.distill_part, cfg.student_layers, cfg.init_layers)


def _hybrid(cfg: DistillConfig, teacher: LoadedDeepSC, student: DeepSC, vocab: Vocab) -> Path:
    """Teacher transmitter + student receiver, saved as one model."""
    out = Path(cfg.output_path)
    path = Path(cfg.hybrid_output or out / "hybrid_model.pt")
    save_hybrid(
        path,
        teacher.model,
        student,
        vocab.words,
        {"transmitter": str(teacher.path), "receiver": str(out / "best_student_model.pt"),
         "temperature": cfg.temperature, "distill_part": cfg.distill_part},
    )  # fmt: skip
    return path


def distill_semcom(cfg: DistillConfig) -> dict[str, Any]:
    """Run `protdistill distill` for a DeepSC teacher; returns the distillation_config.json dict."""
    start = time.time()
    out = Path(cfg.output_path)
    teacher = load_deepsc(cfg.teacher_checkpoint)
    data, train, test = teacher_split(teacher, cfg.data)
    train = train[: cfg.max_train_sentences] if cfg.max_train_sentences else train
    vocab = Vocab(teacher.vocab)
    student, layer_map = _checked_student(teacher, cfg)
    tcfg = train_config(cfg)
    one = current_ranks().world == 1
    module = SemcomModule(
        student,
        tcfg,
        teacher.model,
        snr_range=(cfg.snr_min, cfg.snr_max),
        channel=cfg.channel,
        alpha=cfg.distill_weight,
        temperature=cfg.temperature,
        layer_pairs=taught_layers(teacher.model, cfg.distill_part, cfg.student_layers),
        hidden_weight=cfg.hidden_weight,
        attention_weight=cfg.attention_weight,
    )
    module.add_config("distill", cfg)
    meta = {
        "role": "student",
        "teacher": str(teacher.path),
        "data": data.model_dump(),
        "distill": cfg.model_dump(),
        "layer_map": layer_map,
    }
    result = fit(
        module,
        # under DDP Lightning shards a plain shuffled loader (length buckets are one-process)
        make_loader(train, vocab, cfg.batch_size, shuffle=True, seed=cfg.seed, bucket=one),
        make_loader(test[: cfg.val_sentences], vocab, cfg.batch_size, shuffle=False),
        tcfg,
        out,
        resume=cfg.resume,
        callbacks=[ExportEpochs(out, "student_model_epoch", vocab.words, meta)],
    )
    if not result.is_main:  # under DDP rank 0 writes the files
        return {}
    save_deepsc(out / "final_student_model.pt", student, vocab.words, meta)
    load_best_student(student, result.best_path)
    loss, epoch = best_epoch(result.history)
    save_deepsc(out / "best_student_model.pt", student, vocab.words, {**meta, "best_epoch": epoch})
    hybrid_path = _hybrid(cfg, teacher, student, vocab) if cfg.create_hybrid else None
    report = distill_report(cfg, "semcom", teacher.model, student, result.history, start,
                            best=(loss, epoch))  # fmt: skip
    report |= {
        "distilled_parameters": trainable_count(student),
        "layer_map": layer_map,
        "hybrid_path": None if hybrid_path is None else str(hybrid_path),
        "data": data.model_dump(),
        "train_sentences": len(train),
    }
    write_json(out / "distillation_config.json", report)
    return report
