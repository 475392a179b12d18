"""The ``attention-course`` command: doctor, exercises, bench."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import sys
from pathlib import Path

from . import exercises as exercise_sync

# (distribution, why the course needs it)
PACKAGES = [
    ("torch", "tensors, models, training"), ("transformers", "the pretrained MiniLM encoder"),
    ("matplotlib", "plots"), ("ipywidgets", "the interactive explorers"), ("jupyterlab", "the lessons"),
    ("bertviz", "attention views"), ("scikit-learn", "baselines"), ("tqdm", "progress bars"),
    ("nbval", "notebook tests"),
]


def find_root(start: Path | None = None) -> Path:
    """The course repository root: the nearest folder (from ``start`` upwards) holding solutions/."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "solutions").is_dir():
            return folder
    raise FileNotFoundError(f"no course repository (a folder with solutions/) at or above {here}")


def _doctor_checks() -> list[tuple[str, bool, str]]:
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
    from . import data, pretrained

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

    from .device import device_name, pick_device, pick_profile

    device = pick_device()
    hint = "GPU lessons run their full size" if device.type == "cuda" else "no GPU: lessons use the smaller cpu profile"
    results.append((f"device {device.type}: {device_name(device)}; profile {pick_profile(device)}; "
                    f"torch {torch.__version__}", True, hint))
    return results


def run_doctor(as_json: bool) -> int:
    results = _doctor_checks()
    if as_json:
        print(json.dumps([{"check": what, "ok": ok, "detail": detail} for what, ok, detail in results], indent=1))
    else:
        for what, ok, detail in results:
            print(f"{'ok ' if ok else 'FIX'}  {what}  ({detail})" if ok else f"FIX  {what}\n     -> {detail}")
    problems = sum(not ok for _, ok, _ in results)
    if not as_json:
        print("All good: open the lessons with `make lab`." if not problems else f"{problems} problem(s) to fix.")
    return 1 if problems else 0


def run_exercises(root: Path | None, check_only: bool, force: bool) -> int:
    root = root or find_root()
    report = exercise_sync.sync_exercises(root / "solutions", root / "exercises", check_only, force)
    if check_only:
        if report.stale:
            print(f"exercises/ is out of date for: {', '.join(report.stale)}\n"
                  "Regenerate with `attention-course exercises`.")
            return 1
        print(f"exercises/ is up to date ({len(report.unchanged)} notebooks).")
        return 0
    for name in report.written:
        print(f"wrote exercises/{name}")
    for name in report.backups:
        print(f"kept your previous version as exercises/{name}")
    for name in report.skipped_edited:
        print(f"SKIPPED exercises/{name}: you edited it. Your work is untouched; "
              "rerun with --force to regenerate it (your version is then kept as a .bak copy).")
    for name in report.orphans:
        print(f"note: exercises/{name} has no solution notebook")
    print(f"{len(report.written)} written, {len(report.unchanged)} already up to date.")
    return 1 if report.skipped_edited else 0


BENCHES = {"parallelism": "attention_course.bench", "gpt": "attention_course.bench", "ddp": "attention_course.bench",
           "transfer": "attention_course.transfer"}


def run_bench(name: str, profile: str | None, as_json: bool) -> int:
    module = importlib.import_module(BENCHES[name])
    result = getattr(module, f"bench_{name}")(profile=profile)
    print(json.dumps(result, indent=1) if as_json else module.format_result(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attention-course", description="Attention in Parallel: course tools")
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check Python, packages, data, model and GPU; print fixes")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    ex = commands.add_parser("exercises", help="regenerate exercises/ from solutions/")
    ex.add_argument("--check", action="store_true", help="only report; exit 1 if exercises/ is stale")
    ex.add_argument("--force", action="store_true", help="also regenerate notebooks you edited (keeps a .bak)")
    ex.add_argument("--root", type=Path, help="the course repository (default: found from the current folder)")
    bench = commands.add_parser("bench", help="reproduce the book's measurements on this machine")
    bench.add_argument("name", choices=sorted(BENCHES))
    bench.add_argument("--profile", choices=["smoke", "cpu", "gpu"], help="size (default: from the device)")
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "doctor":
            return run_doctor(args.json)
        if args.command == "exercises":
            return run_exercises(args.root, args.check, args.force)
        return run_bench(args.name, args.profile, args.json)
    except (FileNotFoundError, ValueError) as error:
        print(f"attention-course: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
