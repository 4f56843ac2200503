"""Distilling a DeepSC teacher into a shallower student: whole model, transmitter or receiver.

``full``: both parts get ``student_layers`` layers, initialised from evenly spaced teacher layers
(DistilBERT-style; embeddings, channel codecs and output layer copied), and both learn.
``encoder`` / ``decoder``: only that part is shallower and learns; the other part is an exact,
frozen copy of the teacher's (it stays bit-identical through training).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from protdistill.distill.partial import (
    DistillConfig,
    copy_layers,
    copy_part,
    copy_shared,
    freeze,
    trainable_count,
)
from protdistill.distill.trainer import TrainConfig, fit
from protdistill.io.atomic import write_json
from protdistill.tasks.semcom.data import Vocab, load_split, make_loader
from protdistill.tasks.semcom.hybrid import save_hybrid
from protdistill.tasks.semcom.model import (
    DeepSC,
    LoadedDeepSC,
    count_parameters,
    load_deepsc,
    save_deepsc,
)
from protdistill.tasks.semcom.train import (
    ExportEpochs,
    SemcomDataConfig,
    SemcomModule,
    best_epoch,
    load_best_student,
)


def make_student(teacher: DeepSC, part: str, student_layers: int) -> tuple[DeepSC, dict]:
    """Student of ``teacher`` for ``part``; returns it and ``{"encoder"|"decoder": indices}``
    (the teacher layers each student layer was initialised from)."""
    cfg = teacher.config
    enc = student_layers if part in ("full", "encoder") else cfg.enc_layers
    dec = student_layers if part in ("full", "decoder") else cfg.dec_layers
    student = DeepSC(cfg.model_copy(update={"enc_layers": enc, "dec_layers": dec}))
    copy_shared(teacher, student, skip=("transmitter.layers.", "receiver.layers."))
    layer_map = {
        "encoder": copy_layers(teacher.transmitter.layers, student.transmitter.layers),
        "decoder": copy_layers(teacher.receiver.layers, student.receiver.layers),
    }
    if part == "encoder":
        copy_part(teacher.receiver, student.receiver, "receiver (decoder)")
        freeze(student.receiver)
    elif part == "decoder":
        copy_part(teacher.transmitter, student.transmitter, "transmitter (encoder)")
        freeze(student.transmitter)
    return student, layer_map


def _check_layers(teacher: LoadedDeepSC, cfg: DistillConfig) -> None:
    """The distilled part(s) cannot have more layers than the teacher's."""
    from protdistill.errors import ConfigError

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


def distill_semcom(cfg: DistillConfig) -> dict[str, Any]:
    """Run `protdistill distill` for a DeepSC teacher; returns the distillation_config.json dict."""
    start = time.time()
    out = Path(cfg.output_path)
    teacher = load_deepsc(cfg.teacher_checkpoint)
    data = SemcomDataConfig(**teacher.meta.get("data", {}))
    if cfg.data:
        data = data.model_copy(update={"corpus": cfg.data})
    train, test = load_split(
        data.corpus,
        min_words=data.min_words,
        max_words=data.max_words,
        max_sentences=data.max_sentences,
        test_fraction=data.test_fraction,
        seed=data.split_seed,
    )
    train = train[: cfg.max_train_sentences] if cfg.max_train_sentences else train
    _check_layers(teacher, cfg)
    vocab = Vocab(teacher.vocab)
    student, layer_map = make_student(teacher.model, cfg.distill_part, cfg.student_layers)
    tcfg = TrainConfig(
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        progress=cfg.progress,
    )
    module = SemcomModule(
        student,
        tcfg,
        teacher.model,
        snr_range=(cfg.snr_min, cfg.snr_max),
        channel=cfg.channel,
        alpha=cfg.distill_weight,
        temperature=cfg.temperature,
    )
    module.add_config("distill", cfg)
    meta = {
        "role": "student",
        "teacher": str(teacher.path),
        "data": data.model_dump(),
        "distill": cfg.model_dump(),
        "layer_map": layer_map,
    }
    export = ExportEpochs(out, "student_model_epoch", vocab.words, meta)
    result = fit(
        module,
        make_loader(train, vocab, cfg.batch_size, shuffle=True, seed=cfg.seed),
        make_loader(test[: cfg.val_sentences], vocab, cfg.batch_size, shuffle=False),
        tcfg,
        out,
        resume=cfg.resume,
        callbacks=[export],
    )
    save_deepsc(out / "final_student_model.pt", student, vocab.words, meta)
    load_best_student(module, result.best_path)
    loss, epoch = best_epoch(result.history)
    save_deepsc(out / "best_student_model.pt", student, vocab.words, {**meta, "best_epoch": epoch})
    hybrid_path = None
    if cfg.create_hybrid:
        hybrid_path = Path(cfg.hybrid_output or out / "hybrid_model.pt")
        save_hybrid(
            hybrid_path,
            teacher.model,
            student,
            vocab.words,
            {"transmitter": str(teacher.path), "receiver": str(out / "best_student_model.pt"),
             "temperature": cfg.temperature, "distill_part": cfg.distill_part},
        )  # fmt: skip
    n_teacher, n_student = count_parameters(teacher.model), count_parameters(student)
    report = {
        **cfg.model_dump(),
        "family": "semcom",
        "best_loss": loss,
        "best_epoch": epoch,
        "teacher_parameters": n_teacher,
        "student_parameters": n_student,
        "distilled_parameters": trainable_count(student),
        "compression_ratio": n_teacher / n_student,
        "layer_map": layer_map,
        "hybrid_path": None if hybrid_path is None else str(hybrid_path),
        "data": data.model_dump(),
        "train_sentences": len(train),
        "history": result.history,
        "wall_time_s": time.time() - start,
    }
    write_json(out / "distillation_config.json", report)
    return report
