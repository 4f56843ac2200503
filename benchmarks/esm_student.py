"""ESM student benchmark: 2- and 3-layer students of the 6-layer stand-in teacher.

    python benchmarks/esm_student.py --layers 2 3 --max-proteins 700 --epochs 1

Each student is made by `protdistill distill` (DistilBERT-style init from evenly spaced teacher
layers; hidden-state + attention + contact-map KD; the stand-in teacher has no LM head) on Guo
yeast proteins cropped to ``--max-length``. On the held-out proteins of the same seeded split it
reports: cosine similarity of mean-pooled embeddings to the teacher's, contact-map agreement
(Pearson r of contact probabilities for |i-j| >= 6, and overlap of the top-L/5 pairs), and
inference speed in residues/s (teacher and students timed interleaved in this process, best of
``--repeats``; the machine is shared, so ratios are more meaningful than absolute values).
The same figures for the undistilled initialisation ("init") show what training adds.
Writes benchmarks/results/esm-students/esm_student.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEACHER = SHARED / "models" / "esm2_t6_8M_standin"
FASTA = SHARED / "data" / "ppi" / "guo_yeast" / "sequences.fasta"


def _residue_mask(tokens: torch.Tensor, mask: torch.Tensor, eos: int) -> torch.Tensor:
    return mask & (tokens != eos) & (torch.arange(tokens.shape[1]) > 0)


@torch.no_grad()
def features(model, batches, eos: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per protein: pooled embedding (D,) and contact map (L, L)."""
    from protdistill.students.small_esm import esm_forward

    pooled, contacts = [], []
    for b in batches:
        out = esm_forward(model, b["tokens"], b["mask"], contacts=True)
        res = _residue_mask(b["tokens"], b["mask"], eos)
        for i in range(len(res)):
            pooled.append(out.hidden[i][res[i]].mean(0))
            n = int(res[i].sum())
            contacts.append(out.contacts[i, :n, :n])
    return pooled, contacts


def contact_agreement(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> dict:
    """Mean Pearson r (|i-j| >= 6) and top-L/5 overlap of student vs teacher contact maps."""
    rs, overlaps = [], []
    for s, t in zip(student, teacher, strict=True):
        n = t.shape[0]
        i, j = torch.triu_indices(n, n, offset=6)
        if len(i) < 10:
            continue
        sv, tv = s[i, j], t[i, j]
        rs.append(float(torch.corrcoef(torch.stack([sv, tv]))[0, 1]))
        k = max(1, n // 5)
        top_s = set(torch.topk(sv, k).indices.tolist())
        top_t = set(torch.topk(tv, k).indices.tolist())
        overlaps.append(len(top_s & top_t) / k)
    return {
        "pearson_r": sum(rs) / len(rs),
        "top_L5_overlap": sum(overlaps) / len(overlaps),
        "proteins": len(rs),
    }


@torch.no_grad()
def speed(models: dict, batches, repeats: int) -> dict[str, float]:
    """Residues/s of each model's forward pass (no attentions), interleaved, best of repeats."""
    residues = sum(int(b["mask"].sum()) for b in batches)
    best = dict.fromkeys(models, float("inf"))
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            for b in batches:
                model(input_ids=b["tokens"], attention_mask=b["mask"].long())
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: residues / t for name, t in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--max-proteins", type=int, default=700)
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "runs" / "esm_student"))
    out = ROOT / "benchmarks" / "results" / "esm-students" / "esm_student.json"
    ap.add_argument("--json", default=str(out))
    args = ap.parse_args()
    if not TEACHER.is_dir() or not FASTA.is_file():
        raise SystemExit(f"needs {TEACHER} and {FASTA} (../shared beside the checkout)")
    torch.set_num_threads(2)
    from transformers import AutoTokenizer, EsmModel

    from protdistill.api.distill import run_distill
    from protdistill.distill.config import DistillConfig
    from protdistill.io.atomic import write_json
    from protdistill.io.fasta import read_fasta
    from protdistill.students.small_esm import load_small_esm, make_small_esm
    from protdistill.tasks.esm.distill import protein_loader, split_proteins

    started = time.time()
    tok = AutoTokenizer.from_pretrained(TEACHER)
    teacher = EsmModel.from_pretrained(TEACHER, add_pooling_layer=False)
    teacher.set_attn_implementation("eager")
    teacher.eval()
    _, train, val_ids, val = split_proteins(
        read_fasta(FASTA),
        max_length=args.max_length,
        max_proteins=args.max_proteins,
        val_fraction=args.val_fraction,
        seed=0,
    )
    batches = list(protein_loader(val, tok, args.batch_size, shuffle=False))
    eos = tok.eos_token_id
    t_pooled, t_contacts = features(teacher, batches, eos)
    results: dict = {"students": {}}
    models = {"teacher (6 layers)": teacher}
    for n in args.layers:
        out = Path(args.out) / f"L{n}"
        cfg = DistillConfig(
            teacher_checkpoint=str(TEACHER),
            data=str(FASTA),
            student_layers=n,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            max_length=args.max_length,
            max_proteins=args.max_proteins,
            val_fraction=args.val_fraction,
            output_path=str(out),
            progress=False,
            resume=True,
        )
        report = run_distill(cfg)
        student, _ = load_small_esm(out / "best_student_model.pt")
        init, layer_map = make_small_esm(teacher, n)
        row = {"layer_map": layer_map, "parameters": report["student_parameters"]}
        row.update({k: report[k] for k in ("best_loss", "wall_time_s", "train_proteins")})
        for label, model in (("distilled", student), ("init", init.eval())):
            pooled, contacts = features(model, batches, eos)
            cos = torch.nn.functional.cosine_similarity(
                torch.stack(pooled), torch.stack(t_pooled), dim=-1
            )
            row[label] = {
                "pooled_cosine_mean": float(cos.mean()),
                "pooled_cosine_min": float(cos.min()),
                "contacts": contact_agreement(contacts, t_contacts),
            }
        results["students"][f"{n} layers"] = row
        models[f"student ({n} layers)"] = student
    rates = speed(models, batches, args.repeats)
    base = rates["teacher (6 layers)"]
    results.update(
        {
            "date": str(date.today()),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, shared CPU",
            "teacher": "the stand-in teacher (esm2_t6_8M_standin, fine-tuned ESM-2 8M backbone)",
            "teacher_parameters": sum(p.numel() for p in teacher.parameters()),
            "data": f"Guo yeast proteins: {len(train)} train / {len(val)} held-out, cropped to "
            f"{args.max_length} residues, seed 0",
            "held_out_ids": val_ids[:5] + ["..."],
            "residues_per_s": rates,
            "speedup": {k: v / base for k, v in rates.items()},
            "settings": vars(args),
            "seconds": time.time() - started,
        }
    )
    write_json(args.json, results)
    print(json.dumps({k: results[k] for k in ("residues_per_s", "speedup")}, indent=1))
    for name, row in results["students"].items():
        print(name, json.dumps({k: row[k] for k in ("distilled", "init")}))


if __name__ == "__main__":
    main()
