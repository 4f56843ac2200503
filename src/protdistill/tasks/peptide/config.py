"""StructDiff configs: one pydantic object per command (train, sample, evaluate)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from protdistill.config import Config
from protdistill.distill.config import TrainConfig
from protdistill.errors import ConfigError


class ModelConfig(Config):
    """Denoiser width/depth (input sizes and type count are filled in from the data)."""

    d_model: int = Field(192, ge=8)
    layers: int = Field(3, ge=1)
    heads: int = Field(6, ge=1)
    ff_mult: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    structure_hidden: int = Field(64, ge=4)
    decoder_hidden: int = Field(256, ge=8)
    self_condition: bool = Field(
        True, description="feed the previous clean estimate back to the denoiser"
    )
    absolute_positions: bool = Field(True, description="learned embedding of each residue index")
    relative_positions: int = Field(
        0, ge=0, le=64, description="k > 0: learned attention bias per offset, clipped at +-k"
    )
    families: dict[str, int] = Field(
        default_factory=dict,
        description="condition on k families of a type, e.g. {avp: 8} (tasks/peptide/families)",
    )

    @field_validator("families")
    @classmethod
    def _two_or_more(cls, value: dict[str, int]) -> dict[str, int]:
        if bad := {k: v for k, v in value.items() if v < 2}:
            raise ValueError(f"families {bad}: a type splits into at least 2 families")
        return value


class StageConfig(Config):
    """One training stage: which inputs are used and which parameters learn."""

    name: str = "end_to_end"
    epochs: int = Field(60, ge=1)
    structure: bool = Field(True, description="feed structure features to the denoiser")
    trainable: Literal["all", "sequence", "structure"] = "all"


class TypeSampling(Config):
    """Sampler settings of one peptide type that differ from the shared ones (None: shared)."""

    guidance: float | None = Field(None, ge=0)
    sampler: Literal["ddim", "ddpm"] | None = None
    steps: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, gt=0)
    guidance_rescale: float | None = Field(None, ge=0, le=1)
    candidates: int | None = Field(None, ge=1)


#: The keywords of ``sample_peptides`` that ``TypeSampling`` can set per type.
PER_TYPE_KNOBS = ("guidance", "sampler", "steps", "temperature", "guidance_rescale", "candidates")


class SampleConfig(Config):
    """``protdistill peptide sample``."""

    model: str = "runs/peptide/model.safetensors"
    type: str = "amp"
    length: int | None = Field(None, ge=1, description="None: drawn from the type's lengths")
    n: int = Field(100, ge=1)
    guidance: float | dict[str, float] = Field(
        2.0, description="guidance scale, or one per type: {amp: 5, afp: 5, avp: 2}"
    )
    steps: int = Field(50, ge=1)
    sampler: Literal["ddim", "ddpm"] = "ddpm"
    eta: float = Field(0.0, ge=0)
    structure: bool = Field(True, description="condition on predicted structure (if trained)")
    batch_size: int = Field(256, ge=1)
    seed: int = 0
    temperature: float = Field(1.0, gt=0, description="scale of the starting noise")
    project_below: float = Field(
        0.0, ge=0, le=1, description="fraction of timesteps whose estimate is re-embedded; 0 off"
    )
    teacher: str | None = Field(
        None, description="teacher re-embedding samples (projection, best of m); default: model's"
    )
    guidance_interval: tuple[float, float] = Field(
        (0.0, 1.0), description="fractions of the timesteps (low, high) where guidance applies"
    )
    guidance_rescale: float = Field(
        0.0, ge=0, le=1, description="undo guidance's overshoot of the spread (0 off, 1 full)"
    )
    candidates: int = Field(
        1, ge=1, description="best of m: candidates per peptide, the most typical kept (1 off)"
    )
    by_type: dict[str, TypeSampling] = Field(
        default_factory=dict,
        description="settings of one type that differ, e.g. {avp: {sampler: ddim, guidance: 2}}",
    )
    out: str = "samples.fasta"

    @field_validator("guidance")
    @classmethod
    def _non_negative(cls, value: float | dict[str, float]) -> float | dict[str, float]:
        scales = value if isinstance(value, dict) else {"": value}
        bad = {k: v for k, v in scales.items() if v < 0}
        if bad:
            named = ", ".join(f"{k}: {v:g}" if k else f"{v:g}" for k, v in bad.items())
            raise ValueError(f"negative guidance ({named}); a scale must be >= 0")
        return value

    def guidance_for(self, type_name: str) -> float:
        """The guidance scale of ``type_name`` (a per-type table must name it)."""
        scale = self.guidance
        if isinstance(scale, dict):
            if type_name not in scale:
                raise ConfigError(
                    f"no guidance scale for type {type_name!r} (the table has {sorted(scale)})",
                    fix=f"add {type_name}: <scale> under sample.guidance, or pass --guidance",
                )
            scale = scale[type_name]
        return float(scale)

    def settings_for(self, type_name: str) -> dict[str, float | int | str]:
        """``sample_peptides`` keywords of ``type_name``: the shared settings, then its own."""
        own = self.by_type.get(type_name, TypeSampling()).model_dump(exclude_none=True)
        shared = {k: getattr(self, k) for k in PER_TYPE_KNOBS if k != "guidance"}
        if "guidance" not in own:
            shared["guidance"] = self.guidance_for(type_name)
        return shared | own


class EvaluateConfig(Config):
    """``protdistill peptide evaluate``."""

    model: str = "runs/peptide/model.safetensors"
    reference: Literal["train"] = "train"
    classifier: str | None = Field(None, description="type classifier; default <model dir>")
    fd_max: int = Field(500, ge=10, description="peptides per set for the Fréchet distance")
    max_compare: int = Field(300, ge=1, description="samples aligned against training peptides")
    out: str | None = Field(None, description="output folder; default <samples>.eval/")
    seed: int = 0


class PeptideTrainConfig(Config):
    """``protdistill peptide train``: data, teacher, diffusion, network and stages."""

    data: str = "../shared/data/peptides/peptidereactor/positives_by_type.csv"
    types: list[str] = Field(default_factory=lambda: ["amp", "afp", "avp"])
    max_length: int = Field(50, ge=2)
    type_column: str = "type"
    sequence_column: str = "sequence"
    val_fraction: float = Field(0.1, ge=0, lt=1)
    split_seed: int = 0
    split_from: str | None = Field(
        None,
        description="split.json of an earlier run: keep its held-out peptides (per-type models)",
    )
    teacher: str = "../shared/models/esm2_t6_8M_standin"
    tokens_per_batch: int = Field(8192, ge=64)
    cache: str | None = Field(None, description="teacher cache dir; default <out>/../teacher_cache")
    fold_model: str | None = Field(None, description="EsmForProteinFolding weights (optional)")
    structure: bool = Field(True, description="use ESM-2 contact maps as structure features")
    decoder: Literal["auto", "trained", "lm_head"] = "auto"
    timesteps: int = Field(1000, ge=2)
    schedule: Literal["linear", "cosine", "sqrt"] = "sqrt"
    objective: Literal["eps", "x0"] = "x0"
    signal_scale: float = Field(
        1.0, gt=0, le=1, description="x standardised embeddings; < 1 = noisier schedule"
    )
    p_uncond: float = Field(0.1, ge=0, le=1, description="null-type rate (guidance training)")
    balance_types: bool = Field(
        False, description="draw training peptides with equal weight per type (with replacement)"
    )
    p_no_structure: float = Field(0.1, ge=0, le=1, description="structure dropout rate")
    structure_loss_weight: float = Field(0.5, ge=0)
    decoder_loss_weight: float = Field(1.0, ge=0)
    decoder_noise: float = Field(0.3, ge=0, description="jitter (std units) when fitting decoder")
    rounding_loss_weight: float = Field(
        0.0, ge=0, description="decoder CE on the denoiser's clean estimate, weighted by signal"
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    stages: list[StageConfig] = Field(default_factory=lambda: [StageConfig()])
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=60, lr=5e-4, batch_size=64, ema_decay=0.995, save_every_n_epochs=10
        )
    )
    out: str = "runs/peptide"
    progress: bool = True
    sample: SampleConfig | None = Field(None, description="defaults of `peptide sample`")
    evaluate: EvaluateConfig | None = Field(None, description="defaults of `peptide evaluate`")


def command_section(data: dict, name: str) -> dict:
    """The ``sample`` / ``evaluate`` options of a YAML file.

    A file holding a train config (``configs/peptide.yaml``: a ``name`` section or a key only
    training has) gives its ``name`` section, with ``model`` defaulting to
    ``<out>/model.safetensors``. Any other file (``model:``, ``n:`` …) is used as it is.
    """
    shared = set(SampleConfig.model_fields) | set(EvaluateConfig.model_fields)
    train_keys = set(PeptideTrainConfig.model_fields) - shared - {"sample", "evaluate"}
    if name not in data and not (set(data) & train_keys):
        return dict(data)
    section = dict(data.get(name) or {})
    if "out" in data and "model" not in section:
        section["model"] = f"{data['out']}/model.safetensors"
    return section
