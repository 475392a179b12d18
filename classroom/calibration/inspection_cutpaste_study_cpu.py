"""Lesson 11 (issue 26), second study: does CutPaste pretraining (Li et al., 2021), made to train, lift the ViT at
200 labels above the ViT from scratch by more than the seed spread? The first study
(``inspection_pretrain_study_cpu.py``, ``results/inspection_pretrain_study_cpu.json``) found no masked-patch recipe
above 0.095 and a two-way CutPaste whose pretext loss stayed at ln 2 in two of three seeds.

The same CPU proxy of the gpu profile as the first study (ViT d_model 64, 3 layers; 400 fine-tuning steps of 64,
lr 1e-3; the surfaces of version 2; the first n labelled training images; all 4,000 training images unlabelled for
pretraining; recall at false alarms <= 0.05 on the test split, ``inspection.evaluate``), and the library's own code
for everything the lesson runs: ``inspection.pretrain_cutpaste`` then ``inspection.fine_tune``, against
``inspection.train_model`` from scratch. Each pretraining is cached under ``--cache`` (fine-tuning budgets share
it); every finished run is appended at once to ``--out`` as one JSON line.

    PYTHONPATH=$PWD .venv/bin/python classroom/calibration/inspection_cutpaste_study_cpu.py \\
        --variants scratch cutpaste --seeds 0 1 2 3 4 --labels 200 --out /tmp/cutpaste.jsonl
    PYTHONPATH=$PWD .venv/bin/python classroom/calibration/inspection_cutpaste_study_cpu.py \\
        --summarise /tmp/cutpaste.jsonl --into results/inspection_cutpaste_study_cpu.json

A variant names a pretraining recipe (``PRETRAIN``; "scratch" has none); ``--pretrain-steps`` and ``--labels``
apply to all. The gpu profile's ViT shape, with fewer steps: ``--d-model 96 --layers 4 --pretrain-batch 128
--pretrain-steps 600`` (its rows are kept apart in the results, under ``gpu_shape_check``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from attention_course.factory import inspection
from attention_course.factory.surfaces import VERSION, load_split

# pretraining recipes: keyword arguments of inspection.pretrain_cutpaste (its defaults are the lesson's recipe)
PRETRAIN = {
    "cutpaste": dict(),  # three-way, per-patch head, brightness shift 0.15-0.30, 10 % warm-up
    "cutpaste-faint": dict(jitter=(0.03, 0.12)),  # shifts about as large as the textures' own variation
    "cutpaste-nopatch": dict(patch_weight=0.0),  # [CLS] head only
}
VARIANTS = ("scratch", *PRETRAIN)


def pretrain(vit_kw: dict, images: torch.Tensor, recipe: str, steps: int, batch: int, lr: float, seed: int,
             cache: Path) -> tuple[inspection.InspectionViT, dict]:
    """The ViT pretrained by ``recipe`` (from the cache when it was run before) and its pretext figures."""
    path = cache / f"{recipe}-{vit_kw['d_model']}x{vit_kw['n_layers']}-{steps}-{batch}-{lr}-s{seed}.pt"
    torch.manual_seed(seed)
    vit = inspection.InspectionViT(**vit_kw)
    if path.exists():
        vit.load_state_dict(torch.load(path))
        return vit, json.loads(path.with_suffix(".json").read_text())
    history = inspection.pretrain_cutpaste(vit, images, steps, batch_size=batch, lr=lr, seed=seed, progress=False,
                                           **PRETRAIN[recipe])
    losses, accuracy = history["loss"], history["accuracy"]
    window = max(1, min(50, steps // 10))
    info = {"pretrain_loss_first": float(np.mean(losses[:window])), "pretrain_loss_last": float(np.mean(losses[-window:])),
            "pretrain_accuracy_last": float(np.mean(accuracy[-window:])),
            "pretrain_loss_every_50": [round(float(np.mean(losses[i:i + 50])), 3) for i in range(0, steps, 50)],
            "pretrain_seconds": round(history["seconds"], 1)}
    torch.save(vit.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps(info))
    return vit, info


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    vit_kw = dict(patch=8, d_model=args.d_model, n_heads=4, n_layers=args.layers)
    train, validation, test = load_split("train"), load_split("validation"), load_split("test")
    for seed in args.seeds:
        for variant in args.variants:
            for n in args.labels:
                start, info = time.perf_counter(), {}
                labelled = train.take(n)
                if variant == "scratch":
                    torch.manual_seed(seed)
                    model = inspection.InspectionViT(**vit_kw)
                    fit = inspection.train_model(model, labelled.images, labelled.labels, args.steps, batch_size=args.batch,
                                                 lr=args.lr, seed=seed, progress=False)
                else:
                    encoder, info = pretrain(vit_kw, train.images, variant, args.pretrain_steps, args.pretrain_batch,
                                             args.pretrain_lr, seed, args.cache)
                    model, fit = inspection.fine_tune(encoder, labelled.images, labelled.labels, args.steps, seed=seed,
                                                      batch_size=args.batch, lr=args.lr, progress=False)
                scores = inspection.evaluate(model, validation, test)
                row = {"variant": variant, "labels": n, "seed": seed, "recall_at_far": scores["recall_at_far"],
                       "deployed_recall": scores["deployed"]["recall"], "kind_accuracy": scores["kind_accuracy"],
                       "final_loss": float(np.mean(fit["loss"][-50:])), **info,
                       "proxy": dict(vit=vit_kw, steps=args.steps, batch=args.batch, lr=args.lr,
                                     pretrain_steps=args.pretrain_steps, pretrain_batch=args.pretrain_batch,
                                     pretrain_lr=args.pretrain_lr),
                       "seconds": round(time.perf_counter() - start, 1)}
                print(json.dumps({k: row[k] for k in ("variant", "labels", "seed", "recall_at_far", "seconds")}), flush=True)
                with args.out.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")


def summarise(lines: Path, into: Path, notes: dict) -> None:
    """Per (variant, labels): every seed's recall, mean and sample sd; the gap of each pretrained variant over
    scratch at the same budget against the larger sd (the lesson's test), merged into ``into``'s JSON."""
    rows = [json.loads(line) for line in lines.read_text().splitlines() if line.strip()]
    table = {}
    for variant, n in sorted({(r["variant"], r["labels"]) for r in rows}, key=lambda k: (k[1], VARIANTS.index(k[0]))):
        runs = sorted((r for r in rows if r["variant"] == variant and r["labels"] == n), key=lambda r: r["seed"])
        values = np.array([r["recall_at_far"] for r in runs])
        table[f"{variant} @ {n}"] = {"seeds": [r["seed"] for r in runs], "recall_at_far": values.tolist(),
                                     "mean": round(float(values.mean()), 3),
                                     "sd": round(float(values.std(ddof=1)), 3) if len(values) > 1 else None}
    gaps = {}
    for key, entry in table.items():
        variant, n = key.split(" @ ")
        base = table.get(f"scratch @ {n}")
        if variant == "scratch" or base is None or entry["sd"] is None or base["sd"] is None:
            continue
        gap, spread = entry["mean"] - base["mean"], max(entry["sd"], base["sd"])
        gaps[key] = {"gap_over_scratch": round(gap, 3), "largest_sd": spread, "gap_larger_than_sd": gap > spread,
                     "seeds": len(entry["seeds"])}
    result = json.loads(into.read_text()) if into.exists() else {}
    result.update(notes)
    result.update({"table": table, "gap_vs_spread": gaps, "runs": rows})
    into.write_text(json.dumps(result, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["scratch", "cutpaste"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--labels", nargs="+", type=int, default=[200])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pretrain-steps", type=int, default=800)
    parser.add_argument("--pretrain-batch", type=int, default=64)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cutpaste-study-cache"))
    parser.add_argument("--out", type=Path, help="JSON lines, one per run, appended")
    parser.add_argument("--summarise", type=Path, help="summarise these JSON lines instead of running")
    parser.add_argument("--into", type=Path, help="with --summarise: the results JSON to write (merged)")
    args = parser.parse_args()
    if args.summarise:
        if args.into is None:
            parser.error("--summarise needs --into (the results JSON)")
        summarise(args.summarise, args.into, {"surfaces_version": VERSION, "machine": platform.machine(),
                                              "torch": torch.__version__, "max_false_alarm": inspection.MAX_FALSE_ALARM,
                                              "chance_pretext_loss": round(math.log(len(inspection.PRETEXT_CLASSES)), 4)})
        return
    if args.out is None:
        parser.error("--out is required when running")
    run(args)


if __name__ == "__main__":
    main()
