"""Pure distillation losses. Every function returns a scalar tensor.

Conventions shared by all losses:

- Masks are bool tensors, ``True`` = valid item (a real residue, a real sample). Masked items never
  contribute, whatever their values (even ``inf``/``nan``), neither to the value nor to gradients.
- "mean over valid items": the per-item losses are averaged over the valid items of the whole batch
  (not per sample first). With no valid item at all the loss is ``0`` (still attached to the graph).
- The teacher tensors are used as given: pass them detached (a frozen teacher) unless you mean to
  train through them.
- Bad hyper-parameters raise :class:`ConfigError`; mismatched shapes raise :class:`ModelError`.
"""

from protdistill.distill.losses.feature import (
    FeatureProjector,
    cosine_kd,
    feature_kd,
    multi_feature_kd,
)
from protdistill.distill.losses.maps import attention_kd, map_kd
from protdistill.distill.losses.relation import (
    ranking_kd,
    rkd_angle,
    rkd_distance,
    similarity_kd,
)
from protdistill.distill.losses.response import cross_entropy, kd_kl, response_kd

__all__ = [
    "FeatureProjector",
    "attention_kd",
    "cosine_kd",
    "cross_entropy",
    "feature_kd",
    "kd_kl",
    "map_kd",
    "multi_feature_kd",
    "ranking_kd",
    "response_kd",
    "rkd_angle",
    "rkd_distance",
    "similarity_kd",
]
