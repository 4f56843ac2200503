"""The PPI run configuration: one object, saved with the run and inside every checkpoint."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from protdistill.distill.config import Precision
from protdistill.distill.parallel import ScaleOptions


class PpiConfig(ScaleOptions):
    """Every `protdistill ppi` option; defaults < YAML (`--config`) < command-line options."""

    # data
    pairs: str | None = None
    fasta: str | None = None
    test_pairs: str | None = Field(
        None, description="held-out pairs file used as the test split (no test split is drawn)"
    )
    max_pairs: int | None = Field(None, ge=2, description="seeded, label-stratified subsample")
    self_pairs: Literal["keep", "drop", "error"] = "keep"
    split: Literal["protein", "random"] = "protein"
    negatives: Literal["given", "degree"] = Field(
        "given",
        description="train/val negatives: as given, or degree-matched (both ends drawn from the "
        "proteins of the positive pairs, known positives excluded; for data whose negatives are "
        "uniform, e.g. Guo: degree then no longer gives the label away). Test pairs stay as given",
    )
    test_fraction: float = Field(0.2, gt=0, lt=1)
    val_fraction: float = Field(0.1, gt=0, lt=1)
    folds: int = Field(1, ge=1, description="k-fold cross-validation when > 1")
    seed: int = 0
    student_seed: int | None = Field(
        None, description="seed of the student's initialisation and batches (default: seed)"
    )
    max_residues: int = Field(512, ge=8, description="student input crop (first N residues)")
    # teacher
    teacher: str = "facebook/esm2_t6_8M_UR50D"
    cache: str | None = Field(
        None, description="teacher cache dir (default RUN_DIR/../teacher_cache)"
    )
    teacher_layer: int = -1
    teacher_max_residues: int = Field(1022, ge=8, description="longer proteins: long_policy")
    long_policy: Literal["window", "crop", "error"] = "window"
    teacher_precision: Literal["32", "bf16", "16"] = Field(
        "32", description="teacher forward: float32, or autocast to bf16 / 16 (GPU)"
    )
    tokens_per_batch: int = 8192
    head_hidden: int = 256
    head_epochs: int = 200
    head_batch: int = Field(
        16384, ge=1, description="teacher-head mini-batch (one full batch when the pairs fit)"
    )
    head_crossfit: int = Field(5, ge=0, description="out-of-fold teacher logits on train pairs")
    map_residues: int = Field(128, ge=4, description="residues per protein in the teacher map")
    map_bins: int = Field(32, ge=2, description="stored map resolution (bins per protein)")
    map_pairs: int | None = Field(
        None,
        ge=1,
        description="teacher maps for at most N seeded train/val pairs (the rest: no map loss)",
    )
    # student + objective
    student: Literal["resnet1d", "interaction", "esm"] = Field(
        "resnet1d", description="esm: the teacher's first layers (`num_layers` in --student-config)"
    )
    student_config: dict[str, Any] = {}
    head: Literal["mlp", "factorised"] = Field(
        "factorised",
        description="pair head of the Siamese students: factorised beta(a) + beta(b) + "
        "phi(a)^T diag(lambda) phi(b) (screens as matrix products, 47x faster; partner ranking "
        "equal to the MLP's on Guo and Bernett, pair AUROC equal on Guo and 0.015 lower on "
        "Bernett val, 0.005 lower with --pretrain, 3 seeds), or mlp on [a+b, |a-b|, a*b]",
    )
    head_width: int = Field(64, ge=1, description="width of phi in the factorised head")
    alpha: float = Field(0.5, ge=0, le=1, description="weight of T^2 KL; 1 - alpha on CE")
    temperature: float = Field(4.0, gt=0)
    map_weight: float = Field(1.0, ge=0, description="lambda of the masked map loss")
    teacher_map: Literal["contact", "both_orders", "clean", "attention"] = Field(
        "contact",
        description="teacher map construction for map KD (teachers/pair_maps.py; 'contact' = "
        "the contact head on A+G25+B; 'clean' adds B+G25+A, masks the junction and applies APC)",
    )
    map_loss: Literal["spatial", "mse"] = Field(
        "spatial",
        description="spatial: KL between maps normalised over their cells (where, not how "
        "much), divided by that of a flat map; mse: squared error of binned probabilities",
    )
    feature_weight: float = Field(
        1.0,
        ge=0,
        description="beta of feature KD: the student's pooled protein embedding, projected, vs "
        "the teacher's (standardised on training proteins)",
    )
    rank_weight: float = Field(
        0.0,
        ge=0,
        description="weight of in-batch ranking KD (Siamese students): for every protein of a "
        "batch, KL between the teacher head's and the student's softmax over the batch's other "
        "proteins, each candidate centred by its mean score (what ranking by specificity sees); "
        "off by default: on Bernett val, weight 1 gave partner recall@50 0.029 vs 0.031 and pair "
        "AUROC 0.557 vs 0.574 (2 seeds)",
    )
    mask_rate: float = Field(0.05, ge=0, lt=1, description="random residue masking (train only)")
    swap_rate: float = Field(0.5, ge=0, le=1, description="random A/B order swap (train only)")
    # general distillation (a student backbone taught the teacher's representation first)
    init: str | None = Field(
        None,
        description="start from this backbone (`ppi pretrain` output; with --student esm, a "
        "`protdistill distill` ESM student .pt)",
    )
    transfer_fasta: list[str] = Field(
        [], description="unlabelled proteins for general distillation (implies pretrain)"
    )
    pretrain: bool = Field(False, description="general distillation before task distillation")
    pretrain_run_proteins: bool = Field(
        True, description="the run's train / val proteins join the transfer set"
    )
    transductive: bool = Field(
        False, description="the test proteins join the transfer set (screening use; labelled)"
    )
    sites: str | None = Field(
        None,
        description="binding-site supervision: a folder with sequences.fasta, labels.tsv and "
        "splits.tsv (the format of interface_sites); adds a teacher site head and site KD into a "
        "copy of the student (RUN/sites/, metrics.json 'sites')",
    )
    pretrain_epochs: int = Field(
        32, ge=1, description="passes over the transfer set (32 beat 4 on validation, two splits)"
    )
    residue_weight: float = Field(1.0, ge=0, description="per-residue KD weight (pretraining)")
    residue_stages: list[int] = Field([1, 3], description="student stages taught per residue")
    random_crops: bool = Field(
        False,
        description="random crops of long transfer proteins (off: their first residues, which "
        "validation CE preferred on two Guo splits; BENCHMARKS.md)",
    )
    transfer_cap: int = Field(1022, ge=8, description="teacher window per transfer protein")
    # training
    epochs: int = Field(6, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-3, gt=0)
    encoder_lr_scale: float = Field(
        1.0,
        ge=0,
        description="learning-rate multiplier of the student's encoder in task distillation "
        "(below 1 keeps more of a pretrained backbone; 0 freezes it)",
    )
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    grad_clip: float | None = 1.0
    accumulate: int = 1
    patience: int | None = None
    ema_decay: float | None = None
    progress: bool = True
    # where it runs (docs/scale.md): accelerator, devices, num_nodes, strategy (ScaleOptions)
    precision: Precision = Field("32-true", description="student training precision")

    @property
    def student_seed_or_seed(self) -> int:
        """The student seed; split, teacher head and map subset always follow ``seed``."""
        return self.seed if self.student_seed is None else self.student_seed

    @property
    def pretrains(self) -> bool:
        """General distillation runs inside `ppi run` (it does not with ``init``)."""
        return self.init is None and (self.pretrain or bool(self.transfer_fasta))

    @property
    def uses_map(self) -> bool:
        return self.student == "interaction" and self.map_weight > 0
