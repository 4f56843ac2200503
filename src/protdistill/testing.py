"""Tiny random ESM-2 models (2 layers, width 32) for tests and examples that must run without
downloaded weights. Same vocabulary and tokenizer format as the hub's `facebook/esm2_*`."""

from __future__ import annotations

import os
from pathlib import Path

from protdistill.alphabet import ESM_VOCAB, write_esm_vocab  # noqa: F401 (re-exported)


def tiny_esm_config(**overrides):  # noqa: ANN201 (transformers.EsmConfig, imported lazily)
    """An `EsmConfig` of ESM-2 shape: rotary positions, token dropout, 33-token vocabulary."""
    from transformers import EsmConfig  # lazy: start-up time

    base = dict(
        vocab_size=33,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        pad_token_id=1,
        mask_token_id=32,
        position_embedding_type="rotary",
        token_dropout=True,
        max_position_embeddings=1026,
    )
    return EsmConfig(**{**base, **overrides})


def tiny_esm(seed: int = 0, **overrides):  # noqa: ANN201 (transformers.EsmModel)
    """A seeded random `EsmModel` in eval mode."""
    import torch  # lazy: start-up time
    from transformers import EsmModel

    torch.manual_seed(seed)
    return EsmModel(tiny_esm_config(**overrides), add_pooling_layer=False).eval()


def save_tiny_esm(folder: str | Path, seed: int = 0, **overrides) -> str:
    """Save a tiny random ESM-2 (weights + tokenizer) as a local model directory."""
    from transformers import EsmTokenizer  # lazy: start-up time

    folder = Path(folder)
    tiny_esm(seed, **overrides).save_pretrained(folder)
    EsmTokenizer(str(write_esm_vocab(folder))).save_pretrained(folder)
    return str(folder)


def first_step_gradient(rank: int, world: int, port: int, out: str, batch: int) -> None:
    """Fit one step of a linear student on 16 fixed samples through :func:`fit` with ``world``
    DDP processes (gloo) of ``batch`` samples each; rank 0 saves the reduced gradient of the
    first step to ``out/grad<world>.pt``. Used by the scale-out tests (``mp.spawn`` target)."""
    # lazy: this module is imported by light tests; only this helper needs Lightning
    import lightning as L
    import torch
    from torch import nn

    from protdistill.distill.module import DistillModule
    from protdistill.distill.trainer import TrainConfig, fit

    class Linear(DistillModule):
        def step(self, b, stage):  # noqa: ANN001, ANN202
            x, y = b
            return {"loss": nn.functional.mse_loss(self.student(x).squeeze(-1), y)}

    class Grab(L.Callback):
        grad: torch.Tensor | None = None

        def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:  # noqa: ANN001
            if self.grad is None:
                self.grad = pl_module.student.weight.grad.detach().clone()

    if world > 1:
        os.environ.update({
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
            "NODE_RANK": "0", "LOCAL_RANK": str(rank), "RANK": str(rank),
        })  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(16, generator=gen)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)
    torch.manual_seed(0)
    cfg = TrainConfig(
        epochs=1, batch_size=batch, progress=False, accelerator="cpu", devices=world,
        strategy="ddp" if world > 1 else "auto", grad_clip=None, monitor="train_loss",
    )  # fmt: skip
    grab = Grab()
    fit(Linear(nn.Linear(4, 1), cfg), loader, None, cfg, Path(out) / f"w{world}", callbacks=[grab])
    if rank == 0:
        torch.save(grab.grad, Path(out) / f"grad{world}.pt")


def screen_rank(
    rank: int, world: int, port: int, options: dict, die_after: int | None = None
) -> None:
    """Run ``ppi screen`` (``ScreenConfig(**options)``) as rank ``rank`` of ``world`` CPU
    processes (gloo), as torchrun would start them; with ``die_after``, the last rank exits
    after committing that many row blocks (a killed rank). Used by the scale-out tests."""
    from protdistill.tasks.ppi.screen import screening as stage  # lazy: see above

    if die_after is not None and rank == world - 1:
        real, done = stage._save_rows, []

        def dying(*args) -> None:  # noqa: ANN002
            real(*args)
            done.append(1)
            if len(done) == die_after:
                os._exit(1)  # no clean-up, like a SIGKILL

        stage._save_rows = dying

    os.environ.update({
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
        "NODE_RANK": "0", "LOCAL_RANK": str(rank), "RANK": str(rank),
    })  # fmt: skip
    scale = {"accelerator": "cpu", "devices": world}
    stage.screen(stage.ScreenConfig(**options, scale=scale, progress=False))
