"""The PPI training step: alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE
+ lambda * map (spatial KL or MSE between binned student and teacher interaction maps)
+ beta * feature (cosine distance of projected student protein embeddings to standardised
teacher embeddings) + rank * in-batch ranking KD (every protein of the batch against the batch's
other proteins, teacher head vs student head; distill.losses.ranking_kd)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from protdistill.distill.losses import FeatureProjector, map_kd, ranking_kd, response_kd
from protdistill.distill.trainer import DistillModule, TrainConfig
from protdistill.errors import ConfigError
from protdistill.tasks.ppi.common.maps import bin_student_map


class PpiModule(DistillModule):
    """Trains a pair student on labels, cached teacher logits and (optionally) teacher maps.

    alpha = 0 is the label-only baseline; the teacher is never run here (its outputs are cached).
    """

    def __init__(
        self,
        student: nn.Module,
        cfg: TrainConfig,
        *,
        alpha: float,
        temperature: float,
        map_weight: float = 0.0,
        map_loss: str = "spatial",
        feature_weight: float = 0.0,
        teacher_dim: int | None = None,
        rank_weight: float = 0.0,
        teacher_scores: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(student, cfg)
        self.alpha, self.temperature = alpha, temperature
        self.map_weight, self.map_loss = map_weight, map_loss
        self.feature_weight = feature_weight
        if feature_weight > 0:
            if teacher_dim is None:
                raise ConfigError("feature KD needs the teacher's embedding width", record="ppi")
            # trained with the student, dropped at export: only the student is saved
            self.projector = FeatureProjector(student.embedding_dim, teacher_dim)
        self.rank_weight = rank_weight
        if rank_weight > 0 and (teacher_scores is None or not _has_pair_head(student)):
            raise ConfigError(
                "ranking KD needs a Siamese student (a pair head) and the teacher head's scores",
                record="ppi",
                fix="use --student resnet1d or esm, or set --rank-weight 0",
            )
        # a plain function, not a submodule: the frozen teacher is neither trained nor saved
        self.teacher_scores = teacher_scores

    def step(self, batch: dict, stage: str) -> dict[str, torch.Tensor]:
        out = self.student(batch["tokens_a"], batch["mask_a"], batch["tokens_b"], batch["mask_b"])
        labels = batch["label"]
        ce = nn.functional.cross_entropy(out.logits, labels)
        terms = {"ce": ce, "acc": (out.logits.argmax(-1) == labels).float().mean()}
        if self.alpha > 0 and "teacher_logits" in batch:
            terms["response"] = response_kd(
                out.logits,
                batch["teacher_logits"],
                labels,
                alpha=self.alpha,
                temperature=self.temperature,
            )
        else:
            terms["response"] = ce
        loss = terms["response"]
        if self.map_weight > 0 and out.interaction_map is not None and "teacher_map" in batch:
            binned = bin_student_map(
                torch.sigmoid(out.interaction_map), batch["bins_a"], batch["bins_b"]
            )
            terms["map"] = self._map_term(binned, batch)
            loss = loss + self.map_weight * terms["map"]
        if self.feature_weight > 0 and "teacher_emb_a" in batch:
            terms["feature"] = 0.5 * (
                _cosine_distance(self.projector(out.embedding_a), batch["teacher_emb_a"])
                + _cosine_distance(self.projector(out.embedding_b), batch["teacher_emb_b"])
            )
            loss = loss + self.feature_weight * terms["feature"]
        if self.rank_weight > 0 and "teacher_emb_a" in batch:
            terms["rank"] = self._rank_term(out, batch)
            loss = loss + self.rank_weight * terms["rank"]
        terms["loss"] = loss
        return terms

    def _rank_term(self, out, batch: dict) -> torch.Tensor:
        """Every protein of the batch ranks the batch's other proteins (a copy of itself
        excluded), each candidate centred by its mean score; the student's softmax over them
        learns the teacher head's, both in units of the teacher's spread (the stand-in teacher's
        column-centred scores in a batch of 64 Bernett proteins have sd 0.25-0.31: at the
        response temperature the term was ~0.01 and taught next to nothing)."""
        z = torch.cat([out.embedding_a, out.embedding_b])
        e = torch.cat([batch["teacher_emb_a"], batch["teacher_emb_b"]])
        with torch.no_grad():
            teacher = self.teacher_scores(e, e)
        distinct = (e[:, None, :] != e[None, :, :]).any(-1)
        return ranking_kd(
            self.student.head.score(z, z), teacher, distinct,
            centre_columns=True, standardise=True,
        )  # fmt: skip

    def _map_term(self, binned: torch.Tensor, batch: dict) -> torch.Tensor:
        """MSE, or the spatial KL divided by that of a flat map on the same teacher maps.

        The stand-in teacher's maps are nearly flat, so their raw spatial KL is ~0.007 and,
        weighted 1, taught nothing (map Pearson r 0.05 on Guo validation pairs); relative to a
        flat map it starts near 1 whatever the teacher, and 0 means the teacher's pattern.
        """
        args = (batch["teacher_map"], batch["map_mask_a"], batch["map_mask_b"])
        loss = map_kd(binned, *args, mode=self.map_loss)
        if self.map_loss != "spatial":
            return loss
        flat = map_kd(torch.ones_like(binned), *args, mode="spatial")
        return loss / flat.detach().clamp_min(1e-8)


def _cosine_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean 1 - cos over the batch: in [0, 2] whatever the width (an L2-normalised MSE shrinks
    as 1/D, which made the term vanish next to the cross-entropy at D = 320)."""
    return (1.0 - nn.functional.cosine_similarity(student, teacher, dim=-1)).mean()


def _has_pair_head(student: nn.Module) -> bool:
    """A Siamese student: one embedding per protein and a head that scores rows x columns."""
    return hasattr(getattr(student, "head", None), "score")
