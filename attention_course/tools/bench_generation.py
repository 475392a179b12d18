"""The generation benchmark's driver for maintainers: ``attention-course bench generation``, one process per cell.

Lesson 08 measures generation with ``deploy.generation.bench_generation``, all in the lesson's own process. The full
GPU grid (GPT-2 small and lesson 05's model, batch 1 to 32) is longer and harder on the GPU: it died twice of a
segmentation fault inside ``CUDAGraph.replay`` that needed earlier generators in the same process. This module's
``bench_generation``, the one the command line runs, measures the same grid, but on a GPU each (model, batch) cell in a
Python process of its own (``python -m attention_course.tools.bench_generation --task ...``, started by the benchmark,
never by hand), so that a crash costs one cell, not the run; it keeps the partial result after each cell and can go on
from it (``--resume``). One cell alone:
``attention-course bench generation --profile gpu --only "GPT-2 small" --batch 8 --progress --json``.
Lessons never import this module.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from ..core.benchmarks import benchmark
from ..core.gpt import GPTConfig
from ..deploy import generation


def _format(result: dict) -> str:
    lines = [f"{result['device_name']} | torch {result['torch']} | transformers {result['transformers']} | "
             f"{result['dtype']} | profile {result['profile']} | {result['seconds']:.0f} s"]
    for row in result["rows"]:
        first = f", first call {row['tokens_per_s_first']:,.0f}/s" if row["tokens_per_s_first"] else ""
        lines.append(f"{row['model']:>22} batch {row['batch']:>2} prompt {row['prompt']:>3}: {row['method']:<42} "
                     f"{row['tokens_per_s']:>9,.0f} tokens/s{first}, first token {1000 * row['ttft_s']:.1f} ms")
    for name, value in result["floors"].items():
        lines.append(f"floor: {name}: {value}")
    return "\n".join(lines)




# ---------------------------------------------------------------- one process per cell

# Test hook: "MODEL:BATCH" makes that cell's child process abort as it starts (a crash the parent must survive)
CRASH_CELL_ENV = "ATTENTION_COURSE_GENERATION_CRASH_CELL"
CELL_TIMEOUT_S = 1800  # a child still running after this is killed and recorded as failed (a hung GPU, say)

def _merge_info(into: dict, cell: dict) -> None:
    """A cell's facts into the run's: the per-batch tables merge, anything else is the latest cell's (as in one
    process, where each batch overwrites the model's facts)."""
    for label, facts in cell.items():
        model = into.setdefault(label, {})
        for key, value in facts.items():
            if key in ("compile_s", "prompt_forward_tokens_per_s") and isinstance(model.get(key), dict):
                model[key].update(value)
            else:
                model[key] = value


def _in_child(spec: dict, progress: bool, timeout_s: float | None = CELL_TIMEOUT_S) -> tuple[object, dict | None]:
    """Run ``spec`` (``_child_task``) in a fresh Python process: (what it returned, None), or (None, the failure:
    exit code, signal, whether it timed out, the tail of its output, which holds faulthandler's stack of a crash)."""
    root = str(Path(__file__).resolve().parents[2])  # the child imports this very copy of the course
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    tail: collections.deque[str] = collections.deque(maxlen=400)
    with tempfile.TemporaryDirectory(prefix="generation-cell-") as folder:
        out = Path(folder) / "result.pkl"
        started = time.perf_counter()
        task = json.dumps(dict(spec, parent=os.getpid()))
        command = [sys.executable, "-m", "attention_course.tools.bench_generation", "--task", task, "--out", str(out)]
        process = subprocess.Popen(command,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, text=True, errors="replace")

        def pump() -> None:  # the child's progress and warnings pass through to stderr, never to stdout (--json)
            for line in process.stdout:
                tail.append(line)
                if progress:
                    sys.stderr.write(line)
                    sys.stderr.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            code, timed_out = process.wait(), True
        reader.join(timeout=30)
        if code == 0 and not timed_out and out.exists():
            with out.open("rb") as file:
                return pickle.load(file), None
    failure = {**{k: v for k, v in spec.items() if k in ("model", "batch", "task")},
               "returncode": code, "signal": signal.Signals(-code).name if code < 0 else None,
               "timed_out": timed_out, "seconds": time.perf_counter() - started,
               "output_tail": "".join(tail)[-8000:]}
    if progress:
        print(f"FAILED in its own process: {failure['model'] if 'model' in failure else spec['task']} "
              f"batch {failure.get('batch')}: exit {code} ({failure['signal'] or 'no signal'})"
              f"{', timed out' if timed_out else ''}; the run goes on", file=sys.stderr, flush=True)
    return None, failure


def _child_task(spec: dict):
    """What one child process computes: a cell of the grid (``task`` "cell": one model at one batch size, its rows and
    facts) or the float32 token check (``task`` "same_tokens")."""
    s = generation._select(generation._grid(spec["profile"], spec["lesson"]), spec.get("model"),
                           [spec["batch"]] if "batch" in spec else None)
    device = torch.device(spec["device"])
    gpu = device.type == "cuda"
    compile = s["compile"] and gpu
    if spec["task"] == "same_tokens":
        label, (shape, _, _) = list(s["models"].items())[-1]
        return generation.same_tokens_fp32(GPTConfig(**shape), device, compile=compile, label=label)
    if os.environ.get(CRASH_CELL_ENV) == f"{spec['model']}:{spec['batch']}":
        os.abort()  # the test hook: die as a segmentation fault would, without a Python exception
    return generation._all_models(s, compile, device, torch.bfloat16 if gpu else torch.float32, spec["progress"])


def _isolated_models(s: dict, profile: str, lesson: bool, device, progress: bool, keep_partial,
                     timeout_s: float | None, earlier: dict | None = None) -> tuple[list[dict], dict, list[dict]]:
    """``deploy.generation._all_models`` with every (model, batch) cell in its own process: rows and facts merged in the grid's order,
    the partial result kept after each cell, and a cell whose process dies recorded in the failures. ``earlier`` (a
    cut-short run's partial result, ``_resumable``) supplies the cells it measured; those it lacks, or whose process
    failed, are measured now."""
    rows, info, failures = [], {}, []
    earlier = earlier or {"rows": [], "models": {}, "failures": []}
    failures += [dict(failure, earlier_run=True) for failure in earlier["failures"]]  # kept: evidence of a crash
    for label in s["models"]:
        for batch in generation._batches(s, label):
            done = [row for row in earlier["rows"] if row["model"] == label and row["batch"] == batch]
            if done:
                rows += done
                _merge_info(info, {label: earlier["models"].get(label, {})})
                continue
            spec = dict(task="cell", profile=profile, lesson=lesson, model=label, batch=batch, device=str(device),
                        progress=progress)
            payload, failure = _in_child(spec, progress, timeout_s)
            if failure is None:
                cell_rows, cell_info = payload
                rows += cell_rows
                _merge_info(info, cell_info)
            else:
                failures.append(failure)
            keep_partial(rows, info, failures)
    return rows, info, failures


def _resumable(heading: dict) -> dict | None:
    """What an earlier run of the same grid left in ``ATTENTION_COURSE_RESULTS_DIR``: the partial result of a run cut
    short, else the whole result of one that ended with failed cells (None where there is neither), checked to come
    from the same grid, device and versions."""
    path = generation._result_path(dict(heading, partial=True))
    if path is None:
        raise ValueError("resuming reads the partial result in ATTENTION_COURSE_RESULTS_DIR: set that variable to the "
                         "folder the cut-short run wrote to")
    if not path.exists():
        path = generation._result_path(heading)
    if not path.exists():
        print(f"nothing to resume ({path} does not exist): measuring every cell", file=sys.stderr, flush=True)
        return None
    earlier = json.loads(path.read_text())
    same = ("device_name", "torch", "transformers", "profile", "grid", "dtype", "selection")
    differ = [key for key in same if earlier.get(key) != heading.get(key)]
    if differ:
        found = ", ".join(f"{key} {earlier.get(key)!r}, here {heading.get(key)!r}" for key in differ)
        raise ValueError(f"{path} comes from another run ({found}): move it away to start afresh")
    for facts in earlier["models"].values():  # JSON wrote the batch sizes as strings
        facts["compile_s"] = {int(batch): seconds for batch, seconds in facts.get("compile_s", {}).items()}
    return {"rows": earlier["rows"], "models": earlier["models"], "failures": earlier.get("failures", []),
            "seconds": earlier.get("seconds", 0.0)}


# ---------------------------------------------------------------- the command


@benchmark("generation", "lesson 08: naive loop, growing cache, static cache + compiled decode step, transformers",
           formatter=_format)
def bench_generation(profile: str | None = None, progress: bool = False, lesson: bool = False,
                     only: str | None = None, batches: list[int] | None = None, isolate: bool | None = None,
                     cell_timeout_s: float | None = CELL_TIMEOUT_S, resume: bool = False) -> dict:
    """Every method of ``GENERATION[profile]`` (``deploy.generation``) timed on this machine, with issue 24's floors
    judged on a GPU; ``progress`` prints each row to stderr as it is measured; ``lesson`` runs lesson 08's cut
    (``LESSON_GRID``) where the profile has one.

    ``only`` (a model's name) and ``batches`` measure part of the grid, e.g. one cell alone:
    ``attention-course bench generation --profile gpu --only "GPT-2 small" --batch 8 --progress --json``
    (its file gets a ``_only-...`` suffix, so it never replaces the whole grid's).

    ``isolate`` (default: where the decode step is compiled and captured, that is on a GPU, except lesson 08's cut)
    measures every (model, batch) cell in a fresh Python process (``python -m attention_course.tools.bench_generation``):
    the full GPU grid died twice of a segmentation fault inside ``CUDAGraph.replay`` that needed earlier generators
    in the same process (``deploy.generation._own_cublas_workspace`` says the likely cause). A cell whose process dies,
    or runs past ``cell_timeout_s``, becomes an entry of ``failures`` (exit code, signal, the tail of its output) and
    the run goes on; the float32 token check runs in a process of its own too. Without ``isolate`` the run is
    ``deploy.generation.bench_generation``'s, in this process.

    ``resume`` (isolated runs; ``--resume``) goes on from what an earlier run of the same grid left in
    ``ATTENTION_COURSE_RESULTS_DIR``: the partial result of a run cut short (a time limit, a killed session), else the
    whole result of one with failed cells. Its measured cells are kept, the missing and the failed ones measured, so
    that a grid longer than one sitting is run by repeating one command until no ``_partial`` file is left and
    ``failures`` holds only entries marked ``earlier_run``.
    """
    plan = generation._plan(profile, lesson, only, batches)
    isolate = (plan.compile and not lesson) if isolate is None else isolate
    if resume and not isolate:
        raise ValueError("resume goes on cell by cell: it needs the isolated run (isolate=True, the GPU grid's default)")
    if not isolate:
        return generation._run_here(plan, progress)
    heading = generation._heading(plan, isolated=True)
    started = time.perf_counter()
    probe = generation._probe(plan)
    earlier = _resumable(heading) if resume else None
    if earlier is not None:
        started -= earlier["seconds"]  # the seconds count the whole grid's measuring, over every sitting
    rows, info, failures = _isolated_models(plan.grid, plan.profile, lesson, plan.device, progress,
                                            generation._keeper(heading, started), cell_timeout_s, earlier)
    last_name = list(plan.grid["models"])[-1]  # the smallest: one more compilation, in float32
    spec = dict(task="same_tokens", profile=plan.profile, lesson=lesson, model=last_name, device=str(plan.device),
                progress=progress)
    equal, failure = _in_child(spec, progress, cell_timeout_s)
    failures += [failure] if failure else []
    return generation._finish(heading, info, rows, equal, probe, started, failures)


def _child_main(argv: list[str] | None = None) -> int:
    """``python -m attention_course.tools.bench_generation --task SPEC --out PATH``: one ``_child_task`` (the parent,
    ``_in_child``, builds the command); the result is pickled to PATH."""
    import argparse
    import faulthandler

    faulthandler.enable()  # a segmentation fault prints the Python stack into the output the parent keeps
    parser = argparse.ArgumentParser(description=_child_main.__doc__)
    parser.add_argument("--task", required=True, help="the task as JSON (see _child_task)")
    parser.add_argument("--out", required=True, type=Path, help="where to pickle its result")
    args = parser.parse_args(argv)
    spec = json.loads(args.task)
    if sys.platform.startswith("linux"):  # die with the parent (a time limit that kills it must not leave us on the GPU)
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != spec.get("parent", os.getppid()):
            return 1  # the parent died before that took effect
    result = _child_task(spec)
    with args.out.open("wb") as file:
        pickle.dump(result, file)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
