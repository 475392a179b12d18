"""The ``attention-course`` command: doctor, trust, exercises, bench, classroom, hub, handout, i18n.

Tools that need the Jupyter stack (nbformat, nbgrader, JupyterHub) are imported only when their command runs:
a GPU image without it still runs ``bench`` and ``doctor``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.course import find_root
from .doctor import run_doctor, run_trust

JUPYTER_STACK_FIX = "the Jupyter stack is not installed here; `make setup` (or `pip install -r requirements.txt`) installs it"


def run_exercises(root: Path | None, check_only: bool, force: bool) -> int:
    """Regenerate (or check) exercises/; exit 1 only for a stale or missing course copy or a broken solution."""
    from . import exercises as exercise_sync

    root = root or find_root()
    report = exercise_sync.sync_exercises(root / "solutions", root / "exercises", check_only, force)
    for name, why in report.bad_solutions.items():
        print(f"ERROR solutions/{name} cannot be used: {why}. Its exercise was not generated.")
    for name, why in report.unreadable.items():
        action = "replaced (a copy is kept as .bak)" if name in report.written else \
            "left as it is; `attention-course exercises --force` replaces it with the course's version (keeping a copy)"
        print(f"note: exercises/{name} is not a readable notebook ({why}): {action}.")
    for name in report.edited:
        behind = " The course's version has changed since you got it." if name in report.edited_behind else ""
        action = "regenerated (your version is kept as a .bak copy)" if name in report.written else \
            "left untouched; `attention-course exercises --force` regenerates it and keeps yours as a .bak copy"
        print(f"edited by you: exercises/{name}: {action}.{behind}")
    if check_only:
        for name in report.stale:
            print(f"STALE exercises/{name}: still the course's copy, but solutions/{name} now generates something else.")
        for name in report.missing:
            print(f"MISSING exercises/{name}: solutions/{name} has no exercise.")
        if report.stale or report.missing:
            print("Regenerate with `attention-course exercises`.")
        print(f"exercises/: {len(report.unchanged)} up to date, {len(report.edited)} edited by you, "
              f"{len(report.stale) + len(report.missing)} to regenerate.")
        return 1 if report.errors else 0
    for name in report.written:
        print(f"wrote exercises/{name}")
    for name in report.backups:
        print(f"kept the previous version as exercises/{name}")
    for name in report.orphans:
        print(f"note: exercises/{name} has no solution notebook")
    print(f"{len(report.written)} written, {len(report.unchanged)} already up to date, "
          f"{len(report.skipped_edited)} edited by you and left untouched.")
    return 1 if report.bad_solutions else 0


# Every module that registers a benchmark with ``@benchmark``: importing it registers them (a test keeps this complete).
BENCHMARK_MODULES = ("parallel.sweeps", "parallel.gpt_step", "parallel.idle", "parallel.scaling", "parallel.sharding",
                     "inside.transfer", "deploy.experiment", "tools.bench_generation", "beyond.vision")


def registered_benchmarks() -> dict:
    """Every benchmark the lessons' modules register (importing them registers them)."""
    import importlib

    from ..core.benchmarks import BENCHMARKS

    for module in BENCHMARK_MODULES:
        importlib.import_module(f"{__package__.rpartition('.')[0]}.{module}")
    return BENCHMARKS


def run_bench(name: str, profile: str | None, as_json: bool, only: str | None = None, batches: list[int] | None = None,
              progress: bool = False, resume: bool = False) -> int:
    chosen = registered_benchmarks()[name]
    cut = {key: value for key, value in (("only", only), ("batches", batches), ("progress", progress),
                                         ("resume", resume)) if value}
    if cut and name != "generation":
        raise ValueError(f"--only, --batch, --progress and --resume apply to `bench generation`, not to `bench {name}`")
    result = chosen.run(profile=profile, **cut)
    print(json.dumps(result, indent=1) if as_json else chosen.render(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attention-course", description="Attention in Parallel: course tools")
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check Python, packages, data, model and GPU; print fixes")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--only", choices=["all", "open", "run", "test"], default="all",
                        help="only what opening the lessons, running them, or the tests need (default: all)")
    trust = commands.add_parser("trust", help="trust the course's notebooks, so JupyterLab shows their stored outputs")
    trust.add_argument("--root", type=Path, help="the course repository (default: found from the current folder)")
    ex = commands.add_parser("exercises", help="regenerate exercises/ from solutions/")
    ex.add_argument("--check", action="store_true", help="only report; exit 1 if exercises/ is stale")
    ex.add_argument("--force", action="store_true", help="also regenerate notebooks you edited (keeps a .bak)")
    ex.add_argument("--root", type=Path, help="the course repository (default: found from the current folder)")
    try:  # a broken install (no torch, say) must still let `doctor` run and name the fix
        benchmarks = registered_benchmarks()
        from ..core.profiles import PROFILES
    except Exception as error:
        benchmarks, PROFILES = {}, None
        doctor.epilog = f"note: the benchmarks could not be loaded ({type(error).__name__}: {error})"
    bench = commands.add_parser("bench", help="reproduce the book's measurements on this machine",
                                description="\n".join(f"{name}: {b.describe}" for name, b in sorted(benchmarks.items())),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("name", choices=sorted(benchmarks) or None)
    bench.add_argument("--profile", choices=PROFILES, help="size (default: from the device)")
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    bench.add_argument("--only", metavar="MODEL", help='generation: measure this model of the grid only ("GPT-2 small")')
    bench.add_argument("--batch", type=int, action="append", metavar="N", dest="batches",
                       help="generation: measure batch size N only (repeat for several)")
    bench.add_argument("--progress", action="store_true", help="generation: print each row to stderr as it is measured")
    bench.add_argument("--resume", action="store_true",
                       help="generation: go on from the partial result a cut-short run left in ATTENTION_COURSE_RESULTS_DIR")
    _add_classroom_parser(commands)
    from . import handout, hub, i18n  # standard library only: their Jupyter imports wait until a command runs

    hub.add_parser(commands)
    handout.add_parser(commands)
    i18n.add_parser(commands)
    return parser


def _add_classroom_parser(commands) -> None:
    """The classroom commands, or a stand-in that says what is missing where nbformat/nbgrader are absent."""
    try:
        from . import classroom
    except ImportError as error:
        room = commands.add_parser("classroom", help=f"grading a room (unavailable: {error})")
        room.add_argument("rest", nargs=argparse.REMAINDER)
        room.set_defaults(missing=f"`attention-course classroom` needs {error.name or 'nbformat'}: {JUPYTER_STACK_FIX}")
        return
    classroom.add_parser(commands)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "doctor":
            return 1 if run_doctor(args.json, args.only) else 0
        if args.command == "trust":
            return run_trust(args.root)
        if args.command == "exercises":
            return run_exercises(args.root, args.check, args.force)
        if getattr(args, "missing", None):
            print(f"attention-course: error: {args.missing}", file=sys.stderr)
            return 2
        if args.command == "classroom":
            from . import classroom

            return classroom.run(args)
        if args.command == "hub":
            from . import hub

            return hub.run(args)
        if args.command == "handout":
            from . import handout

            return handout.run(args)
        if args.command == "i18n":
            from . import i18n

            return i18n.run(args)
        return run_bench(args.name, args.profile, args.json, args.only, args.batches, args.progress, args.resume)
    except (FileNotFoundError, ValueError, ImportError) as error:
        print(f"attention-course: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
