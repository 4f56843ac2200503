"""Stage 2b of the PPI flow: the student backbone the task distillation starts from.

``--init DIR`` names one (`ppi pretrain` output). With ``--transfer-fasta`` (or ``pretrain``) the
run pretrains its own on the transfer FASTAs plus, by default, its train / val proteins; **the
test split's proteins are removed by sequence** unless ``transductive``. The backbone is
content-addressed in the teacher cache (``backbones/backbone-<id>``), so runs that differ only in
the student seed share one pretraining. RUN_DIR/pretrain.json says what was used.
"""

from __future__ import annotations

from pathlib import Path

from protdistill.io.atomic import write_json
from protdistill.io.pairs import Pair
from protdistill.progress import Log, no_log
from protdistill.tasks.ppi.common.config import PpiConfig
from protdistill.tasks.ppi.common.data import PpiData
from protdistill.tasks.ppi.pretrain.general import (
    PretrainConfig,
    backbone_id,
    pretrain,
    transfer_teacher,
)
from protdistill.tasks.ppi.pretrain.transfer import BLOCK, TransferSet, build_transfer_set
from protdistill.tasks.ppi.run.prepare import proteins_of
from protdistill.tasks.ppi.run.student import student_config
from protdistill.tasks.ppi.run.teacher import cache_root


def encoder_config(cfg: PpiConfig) -> dict:
    """The student settings a backbone depends on (the pair head is not pretrained, so its
    choice leaves backbone ids, and cached backbones, as they were)."""
    head = ("head", "head_width", "head_phi_hidden")
    return {k: v for k, v in student_config(cfg).items() if k not in head}


def pretrain_config(cfg: PpiConfig, run_dir: Path) -> PretrainConfig:
    """The run's general-distillation settings (crop rounded down to a block multiple)."""
    return PretrainConfig(
        teacher=cfg.teacher,
        cache=str(cache_root(cfg, run_dir)),
        teacher_layer=cfg.teacher_layer,
        transfer_cap=cfg.transfer_cap,
        tokens_per_batch=cfg.tokens_per_batch,
        teacher_precision=cfg.teacher_precision,
        student=encoder_config(cfg),
        max_residues=max(BLOCK, cfg.max_residues // BLOCK * BLOCK),
        random_crops=cfg.random_crops,
        residue_weight=cfg.residue_weight,
        residue_stages=cfg.residue_stages,
        epochs=cfg.pretrain_epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
        progress=cfg.progress,
    )


def run_transfer_set(cfg: PpiConfig, data: PpiData, split: dict[str, list[Pair]]) -> TransferSet:
    """Transfer FASTAs (+ the run's train / val proteins), never the test proteins unless
    ``transductive``."""
    fit_ids = proteins_of(split["train"]) | proteins_of(split["val"])
    test_seqs = [data.sequences[p] for p in sorted(proteins_of(split["test"]))]
    extra = {p: data.sequences[p] for p in sorted(fit_ids)} if cfg.pretrain_run_proteins else {}
    return build_transfer_set(
        cfg.transfer_fasta,
        extra=extra,
        exclude=test_seqs,
        transductive=test_seqs if cfg.transductive else (),
    )


def run_backbone(
    cfg: PpiConfig,
    run_dir: Path,
    data: PpiData,
    split: dict[str, list[Pair]],
    *,
    log: Log = no_log,
) -> Path | None:
    """The backbone directory the student starts from, pretraining it first when needed."""
    if cfg.init:
        write_json(run_dir / "pretrain.json", {"backbone": cfg.init, "given": True})
        return Path(cfg.init)
    if not cfg.pretrains:
        return None
    transfer = run_transfer_set(cfg, data, split)
    p = pretrain_config(cfg, run_dir)
    teacher = transfer_teacher(p)
    out = Path(p.cache) / "backbones" / f"backbone-{backbone_id(p, transfer, teacher.identity)}"
    log(
        f"general distillation: {transfer.report['proteins']} transfer proteins "
        f"({transfer.report['excluded_test_sequences']} test proteins left out, "
        f"{transfer.report['transductive_added']} added transductively)"
    )
    pretrain(p, out, transfer, teacher=teacher, log=log)
    write_json(
        run_dir / "pretrain.json",
        {"backbone": str(out), "given": False, "transductive": cfg.transductive,
         "transfer": transfer.report},
    )  # fmt: skip
    return out
