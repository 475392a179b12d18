"""Lesson 11 (issue 26): can a recipe change lift the CNN at 1,000 labels to defect recall >= 0.95 at false
alarms <= 0.05 on the test split? Trains ``InspectionCNN`` on the first 1,000 labelled training images with the
gpu profile's settings (width matched to the gpu ViT, batch 64, lr 1e-3, AdamW weight decay 0.05, warm-up + cosine)
unless a variant overrides them, sets the threshold on validation, and prints recall at FAR <= 0.05 on validation and
test (the test figure read both at the validation threshold and on the test ROC), per defect kind, and the seconds.

    PYTHONPATH=$PWD .venv/bin/python results/scripts/inspection_recipes_cpu.py --variant base --steps 1500 --seeds 0 1

Appends one row per (variant, seed) to ``--out`` (JSON list)."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from attention_course.core import profiles
from attention_course.factory import inspection
from attention_course.factory.surfaces import CLASSES, load_split


def dihedral(images: torch.Tensor, generator: torch.Generator, flip) -> torch.Tensor:
    """The lesson's random flips plus a random transpose: all 8 symmetries of the square (90-degree rotations
    included). A defect stays a defect of its kind under each of them."""
    images = flip(images, generator)
    swap = (torch.rand(len(images), generator=generator) < 0.5).to(images.device)
    return torch.where(swap[:, None, None], images.transpose(-1, -2), images)


class DeeperCNN(inspection.InspectionCNN):
    """InspectionCNN with a third stage (a pair of 3x3 convolutions at 8 x 8 pixels): its receptive field grows
    from about 29 to about 61 pixels, enough to see a whole stain (a soft blob of radius 5-9 pixels, low contrast)
    against the surface around it."""

    def __init__(self, width: int = 16):
        super().__init__(width)
        w4 = 4 * width
        extra = []
        for _ in range(2):
            extra += [torch.nn.Conv2d(w4, w4, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(w4), torch.nn.ReLU()]
        self.body = torch.nn.Sequential(*self.body, *extra)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    gpu = profiles.LESSONS["11"]["gpu"]
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", required=True, help="a name for the row")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=gpu["steps"])
    parser.add_argument("--batch", type=int, default=gpu["batch_size"])
    parser.add_argument("--lr", type=float, default=gpu["lr"])
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--width", type=int, default=None, help="CNN width (default: matched to the gpu ViT)")
    parser.add_argument("--deep", action="store_true", help="a third convolution stage (receptive field ~61 px)")
    parser.add_argument("--rot90", action="store_true", help="augment with all 8 symmetries of the square")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results/inspection_recipes_cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train, validation, test = load_split("train"), load_split("validation"), load_split("test")
    labelled = train.take(args.labels)
    original_flip = inspection.flip
    if args.rot90:  # train_model draws its augmentation through inspection.flip
        inspection.flip = lambda images, generator: dihedral(images, generator, original_flip)
    rows = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        if args.deep:
            model = DeeperCNN(args.width or 16)
        else:
            model = inspection.InspectionCNN(args.width) if args.width else inspection.build("cnn", gpu["vit"])
        fit = inspection.train_model(model, labelled.images, labelled.labels, args.steps, batch_size=args.batch,
                                     lr=args.lr, weight_decay=args.weight_decay, seed=seed, progress=False)
        scores = inspection.evaluate(model, validation, test)
        val_scores = inspection.defect_scores(inspection.class_probabilities(model, validation.images))
        val = inspection.recall_at_false_alarm(val_scores, validation.defective.numpy())
        flagged = scores["scores"] > scores["deployed"]["threshold"]
        by_kind = {kind: float(flagged[(test.labels == k).numpy()].mean()) for k, kind in enumerate(CLASSES) if k}
        row = {"variant": args.variant, "seed": seed, "labels": args.labels, "steps": args.steps, "batch": args.batch,
               "lr": args.lr, "weight_decay": args.weight_decay, "rot90": args.rot90, "deep": args.deep, "width": args.width,
               "params": inspection.n_params(model), "recall_val": val["recall"], "false_alarm_val": val["false_alarm"],
               "recall_test_at_val_threshold": scores["deployed"]["recall"],
               "false_alarm_test": scores["deployed"]["false_alarm"], "recall_test_roc": scores["recall_at_far"],
               "recall_test_by_kind": by_kind, "kind_accuracy": scores["kind_accuracy"],
               "final_loss": sum(fit["loss"][-50:]) / len(fit["loss"][-50:]), "seconds": round(fit["seconds"], 1),
               "hardware": f"{cpu_name()}, {args.threads} threads (shared 2-core machine, loaded)"}
        print(json.dumps(row), flush=True)
        rows.append(row)
    inspection.flip = original_flip
    out = Path(args.out)
    existing = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(existing + rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
