"""Peptide-type classifier for conditional fidelity: a small CNN student distilled from a probe.

Teacher: multinomial logistic regression on the frozen ESM-2 (stand-in) mean-pooled embeddings.
Student: residue CNN on one-hot tokens, trained with ``response_kd`` (α·T²·KL + (1−α)·CE).
Peptides labelled with more than one of the chosen types are left out (their class is ambiguous).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from protdistill.alphabet import VOCAB_SIZE, encode_batch
from protdistill.distill.checkpoint import load_model_state, save_model
from protdistill.distill.losses import response_kd


@dataclass
class ClassifierOutput:
    """``logits`` ``(B, C)``."""

    logits: Tensor


class TypeClassifier(nn.Module):
    """Embedding → two dilated convolutions → masked mean + max pooling → linear."""

    def __init__(self, types: Sequence[str], dim: int = 64, kernel: int = 5) -> None:
        super().__init__()
        self.types = list(types)  # output order: logit i is types[i]
        self.num_types, self.dim = len(self.types), dim
        self.embed = nn.Embedding(VOCAB_SIZE, dim, padding_idx=0)
        self.conv1 = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(dim, dim, kernel, padding=2 * (kernel // 2), dilation=2)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(2 * dim, self.num_types))

    def forward(self, tokens: Tensor) -> ClassifierOutput:
        """``tokens`` ``(B, L)`` alphabet ids (0 = padding)."""
        mask = (tokens != 0).unsqueeze(1).float()
        h = self.embed(tokens).transpose(1, 2)
        h = F.gelu(self.conv1(h)) * mask
        h = (h + F.gelu(self.conv2(h))) * mask
        mean = h.sum(-1) / mask.sum(-1).clamp_min(1)
        mx = h.masked_fill(mask == 0, -1e4).max(-1).values
        return ClassifierOutput(self.head(torch.cat([mean, mx], -1)))

    @torch.no_grad()
    def predict(self, seqs: Sequence[str], batch: int = 512) -> Tensor:
        """Predicted type index per peptide ``(N,)``."""
        self.eval()
        out = []
        for i in range(0, len(seqs), batch):
            tokens, _ = encode_batch(list(seqs[i : i + batch]))
            out.append(self(tokens).logits.argmax(-1))
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def unambiguous(peptides: Sequence, types: Sequence[str]) -> tuple[list[str], Tensor]:
    """Sequences with exactly one of ``types`` and their labels ``(N,)``."""
    counts = Counter(p.sequence for p in peptides)
    keep = [p for p in peptides if counts[p.sequence] == 1]
    return [p.sequence for p in keep], torch.tensor([list(types).index(p.type) for p in keep])


def _probe_logits(x_train: Tensor, y_train: Tensor, x_all: list[Tensor], c: float = 1.0):
    probe = LogisticRegression(C=c, max_iter=2000)
    probe.fit(x_train.numpy(), y_train.numpy())
    return [torch.tensor(probe.decision_function(x.numpy()), dtype=torch.float32) for x in x_all]


def _fit_student(
    model: nn.Module,
    seqs: list[str],
    labels: Tensor,
    teacher_logits: Tensor,
    epochs: int,
    seed: int,
    alpha: float,
    temperature: float,
) -> None:
    """AdamW + cosine on labels and the probe's logits (response KD)."""
    tokens, _ = encode_batch(seqs)
    loader = DataLoader(
        TensorDataset(tokens, labels, teacher_logits),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * len(loader))
    for _ in range(epochs):
        model.train()
        for tok, y, t in loader:
            loss = response_kd(model(tok).logits, t, y, alpha=alpha, temperature=temperature)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()


def train_type_classifier(
    split,  # noqa: ANN001 - data.PeptideSplit
    feats,  # noqa: ANN001 - data.TeacherFeatures
    out_dir: str | Path,
    *,
    epochs: int = 30,
    seed: int = 0,
    alpha: float = 0.5,
    temperature: float = 2.0,
    log: Callable[[str], None] = lambda _: None,
) -> dict:
    """Fit probe (teacher) then CNN student; save ``classifier.safetensors``; return accuracies."""
    torch.manual_seed(seed)
    types = split.types
    tr_seqs, tr_y = unambiguous(split.train, types)
    va_seqs, va_y = unambiguous(split.val, types)

    def pooled(seqs: list[str]) -> Tensor:
        return torch.stack([feats.embeddings[s].mean(0) for s in seqs])

    x_tr = pooled(tr_seqs)
    x_va = pooled(va_seqs) if va_seqs else x_tr[:0]
    t_tr, t_va = _probe_logits(x_tr, tr_y, [x_tr, x_va])
    model = TypeClassifier(types)
    _fit_student(model, tr_seqs, tr_y, t_tr, epochs, seed, alpha, temperature)
    result = {
        "types": types,
        "n_train": len(tr_seqs),
        "n_val": len(va_seqs),
        "teacher_probe_val_accuracy": float((t_va.argmax(-1) == va_y).float().mean())
        if va_seqs
        else None,
        "student_val_accuracy": float((model.predict(va_seqs) == va_y).float().mean())
        if va_seqs
        else None,
        "student_val_accuracy_per_type": per_type_accuracy(model.predict(va_seqs), va_y, types)
        if va_seqs
        else {},
    }
    out_dir = Path(out_dir)
    save_model(
        out_dir.parent / "classifier.safetensors",
        model,
        {"types": types, "dim": model.dim, "metrics": result},
    )
    log(f"type classifier: held-out accuracy {result['student_val_accuracy']}")
    return result


def per_type_accuracy(pred: Tensor, target: Tensor, types: Sequence[str]) -> dict[str, float]:
    """Accuracy within each true type."""
    out = {}
    for i, name in enumerate(types):
        sel = target == i
        if sel.any():
            out[name] = float((pred[sel] == i).float().mean())
    return out


def load_classifier(path: str | Path) -> tuple[TypeClassifier, dict]:
    state, meta = load_model_state(path)
    model = TypeClassifier(meta["types"], int(meta["dim"]))
    model.load_state_dict(state)
    return model.eval(), meta
