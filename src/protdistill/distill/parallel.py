"""Ranks: which share of the work this process does, launched by Lightning (never a home-made
launcher).

One process is rank 0 of 1. With ``devices > 1`` or ``num_nodes > 1``, :func:`launch` starts
Lightning Fabric with the chosen strategy (``ddp`` by default): on one machine Lightning re-runs
the command once per extra device; under ``torchrun`` or SLURM it joins the processes those
started (Lightning reads their environment variables). Work is then split by :meth:`Ranks.share`:
a deterministic, cost-balanced share per rank (longest first, dealt round-robin), the same on
every rank without any communication.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import Field

from protdistill.config import Config

T = TypeVar("T")


class ScaleConfig(Config):
    """Where the heavy stages run (the options every heavy command shares)."""

    accelerator: str = Field("auto", description="cpu, gpu or auto")
    devices: int = Field(1, ge=1, description="processes (GPUs) per node; > 1 = DDP")
    num_nodes: int = Field(1, ge=1, description="machines (torchrun / SLURM)")
    strategy: str = Field("ddp", description="Lightning strategy when devices x nodes > 1")

    @property
    def distributed(self) -> bool:
        return self.devices * self.num_nodes > 1


class ScaleOptions(ScaleConfig):
    """A command's own config holding the where-it-runs fields flat (``--devices`` ...);
    ``scale`` is them alone. Global batch = batch_size x devices x num_nodes."""

    @property
    def scale(self) -> ScaleConfig:
        return ScaleConfig(**{name: getattr(self, name) for name in ScaleConfig.model_fields})


@dataclass(frozen=True)
class Ranks:
    """This process's ``rank`` among ``world`` processes."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence[T], cost: Callable[[T], float] | None = None) -> list[T]:
        """This rank's items: ``items`` sorted by decreasing ``cost`` (stable), every
        ``world``-th one from position ``rank``. The shares are disjoint and cover ``items``."""
        order = list(range(len(items)))
        if cost is not None:
            order.sort(key=lambda i: -cost(items[i]))
        return [items[i] for k, i in enumerate(order) if k % self.world == self.rank]


def current_ranks() -> Ranks:
    """Ranks of the initialised ``torch.distributed`` group, or rank 0 of 1."""
    dist = _dist()
    if dist is not None:
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    dist = _dist()
    if dist is not None:
        dist.barrier()


def finish() -> Ranks:
    """End the distributed part: wait for every rank, close the process group, and return the
    ranks this process had (rank 0 then goes on alone, e.g. to evaluate)."""
    ranks = current_ranks()
    dist = _dist()
    if dist is not None:
        dist.barrier()
        dist.destroy_process_group()
    return ranks


def all_sum(value: float) -> float:
    """``value`` summed over the ranks (itself in one process)."""
    dist = _dist()
    if dist is None:
        return value
    import torch  # lazy: see _dist

    total = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(total)
    return float(total.item())


def main_first(fn: Callable[[], T]) -> T:
    """``fn()`` on rank 0, then on the other ranks (which then read what rank 0 wrote)."""
    ranks = current_ranks()
    if not ranks.is_main:
        barrier()
    out = fn()
    if ranks.is_main:
        barrier()
    return out


def _dist():  # noqa: ANN202 (torch.distributed or None)
    """``torch.distributed`` when a process group is initialised (torch imported lazily: configs
    import this module and must stay cheap)."""
    if "torch" not in sys.modules:  # nothing can have initialised a process group
        return None
    import torch.distributed as dist  # lazy: importing this module must not import torch

    return dist if dist.is_available() and dist.is_initialized() else None


def launch(scale: ScaleConfig) -> Ranks:
    """Join (or start) the processes ``scale`` asks for and return this one's ranks."""
    if not scale.distributed:
        return current_ranks()
    from lightning.fabric import Fabric  # lazy: only distributed runs need it

    fabric = Fabric(
        accelerator=scale.accelerator,
        devices=scale.devices,
        num_nodes=scale.num_nodes,
        strategy=scale.strategy,
    )
    fabric.launch()
    return Ranks(fabric.global_rank, fabric.world_size)
