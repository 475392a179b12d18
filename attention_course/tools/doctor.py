"""``attention-course doctor``: check a seat (Python, packages, data, model, device) and print a fix for each problem."""

from __future__ import annotations

import importlib.metadata
import json
import sys

# (distribution, why the course needs it)
PACKAGES = [
    ("torch", "tensors, models, training"), ("transformers", "the pretrained MiniLM encoder"),
    ("matplotlib", "plots"), ("ipywidgets", "the interactive explorers"), ("jupyterlab", "the lessons"),
    ("bertviz", "attention views"), ("scikit-learn", "baselines"), ("tqdm", "progress bars"),
    ("nbval", "notebook tests"),
]


def doctor_checks() -> list[tuple[str, bool, str]]:
    """(what, ok, detail or fix) for each thing the course needs."""
    results = []
    version = sys.version_info
    python_ok = version >= (3, 11)
    results.append((f"Python {version.major}.{version.minor}", python_ok,
                    "the course needs 3.11+" if python_ok else "install Python 3.11 or newer, then run `make lab`"))
    for dist, why in PACKAGES:
        try:
            results.append((f"{dist} {importlib.metadata.version(dist)}", True, why))
        except importlib.metadata.PackageNotFoundError:
            results.append((dist, False, f"missing ({why}): run `make lab`, or `pip install -r requirements.txt`"))
    from .. import data, pretrained

    for label, loader in [("Rotten Tomatoes sentences", lambda: len(data.rotten_tomatoes("train"))),
                          ("Shakespeare text", lambda: len(data.shakespeare_text())),
                          ("MNIST digits", lambda: len(data.mnist_digits()[1]))]:
        try:
            results.append((f"{label}: {loader():,} items", True, "offline"))
        except Exception as error:  # report every broken data set, not just the first
            results.append((label, False, str(error)))
    try:
        results.append((f"pretrained MiniLM at {pretrained.model_folder()}", True, "offline"))
    except FileNotFoundError as error:
        results.append(("pretrained MiniLM", False, str(error)))
    import torch

    from ..device import device_name, pick_device
    from ..profiles import pick_profile

    device = pick_device()
    hint = "GPU lessons run their full size" if device.type == "cuda" else "no GPU: lessons use the smaller cpu profile"
    results.append((f"device {device.type}: {device_name(device)}; profile {pick_profile(device)}; "
                    f"torch {torch.__version__}", True, hint))
    return results


def run_doctor(as_json: bool) -> int:
    """Print the report (text or JSON); return 1 if anything needs fixing."""
    results = doctor_checks()
    if as_json:
        print(json.dumps([{"check": what, "ok": ok, "detail": detail} for what, ok, detail in results], indent=1))
    else:
        for what, ok, detail in results:
            print(f"{'ok ' if ok else 'FIX'}  {what}  ({detail})" if ok else f"FIX  {what}\n     -> {detail}")
    problems = sum(not ok for _, ok, _ in results)
    if not as_json:
        print("All good: open the lessons with `make lab`." if not problems else f"{problems} problem(s) to fix.")
    return 1 if problems else 0
