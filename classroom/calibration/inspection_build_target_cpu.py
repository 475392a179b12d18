"""Lesson 11's build-it task (11.build_inspector): where to set the cpu profile's recall target.

Runs the solution notebook's ``train_and_score`` (read from solutions/11_factory_floor.ipynb, so this measures the
reference the course ships) with four seeds, and three weaker answers, on exactly the check's data: the first
1,000 labelled training surfaces, the next 1,000 unlabelled, the first 500 validation surfaces. Prints and writes
recall at false alarms <= 0.05 per answer. It lives with the classroom kit, not in results/ (which learners receive
in a hand-out), because it reads the worked solutions.

    PYTHONPATH=$PWD OMP_NUM_THREADS=2 .venv/bin/python classroom/calibration/inspection_build_target_cpu.py \
        --out results/inspection_build_target_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import nbformat
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from attention_course.core.profiles import LESSON11_BUILD
from attention_course.factory import surfaces
from attention_course.factory.inspection import recall_at_false_alarm

SOLUTION_CELL = "39bf4ac2"


def reference_source(seed: int, average_pool: bool, standardise: bool) -> str:
    """The solution cell's code without nbgrader's markers, with the seed and two ablations substituted."""
    notebook = nbformat.read("solutions/11_factory_floor.ipynb", as_version=4)
    source = next(c.source for c in notebook.cells if c.get("id") == SOLUTION_CELL)
    source = "\n".join(line for line in source.splitlines() if "### " not in line)
    replacements = {"manual_seed(0)": f"manual_seed({seed})"}
    if average_pool:
        replacements["nn.AdaptiveMaxPool2d(1)"] = "nn.AdaptiveAvgPool2d(1)"
    if not standardise:
        replacements["((x - x.mean((-2, -1), keepdim=True)) / 0.1)[:, None]"] = "x[:, None]"
    for old, new in replacements.items():
        if old not in source:
            raise SystemExit(f"the solution cell no longer contains {old!r}: update this script")
        source = source.replace(old, new)
    return source


def run_reference(seed: int, average_pool: bool = False, standardise: bool = True):
    namespace = {"torch": torch, "nn": nn, "F": torch.nn.functional}
    exec(reference_source(seed, average_pool, standardise), namespace)  # noqa: S102  (our own solution cell)
    return namespace["train_and_score"]


def logistic_regression(images, labels, unlabelled, held_out):
    model = LogisticRegression(max_iter=2000).fit(images.reshape(len(images), -1).numpy(), (labels > 0).numpy())
    return model.predict_proba(held_out.reshape(len(held_out), -1).numpy())[:, 1]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sizes = LESSON11_BUILD["cpu"]
    train = surfaces.load_split("train")
    labelled = train.take(sizes["n_labels"])
    unlabelled = train.images[sizes["n_labels"]: sizes["n_labels"] + sizes["n_unlabelled"]]
    held_out = surfaces.load_split("validation", sizes["n_eval"])
    answers = {f"reference, seed {seed}": run_reference(seed) for seed in range(4)}
    answers["reference with average pooling"] = run_reference(0, average_pool=True)
    answers["reference without standardising"] = run_reference(0, standardise=False)
    answers["logistic regression on pixels"] = logistic_regression
    rows = []
    for name, answer in answers.items():
        start = time.perf_counter()
        scores = answer(labelled.images, labelled.labels, unlabelled, held_out.images)
        scores = scores.numpy() if isinstance(scores, torch.Tensor) else scores
        point = recall_at_false_alarm(scores, held_out.defective.numpy(), 0.05)
        rows.append(dict(answer=name, recall=point["recall"], false_alarm=point["false_alarm"],
                         seconds=round(time.perf_counter() - start, 1)))
        print(rows[-1], flush=True)
    record = dict(machine=f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
                  sizes=sizes, surfaces_version=surfaces.VERSION, rows=rows)
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
