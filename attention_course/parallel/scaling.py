"""Data-parallel scaling through torchrun (``attention-course bench ddp``, ``ddp-gpt2``), and ``torchrun``: the one
way the course launches a module on several processes (the DDP benchmarks here, lesson 04b's strategies in
``sharding``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from ..core.benchmarks import benchmark, environment
from ..core.device import pick_device
from ..core.profiles import DDP, pick_profile, sizes


def torchrun(module: str, processes: int, args: list[str], cpu: bool = False, timeout: float = 1800) -> str:
    """Run ``python -m MODULE ARGS`` under torchrun on ``processes`` processes and return what they printed.

    On GPUs each process drives one GPU (NCCL); with ``cpu=True`` the processes run on the CPU (gloo), one thread
    each unless ``OMP_NUM_THREADS`` says otherwise. A failed run raises with the end of its error output.
    """
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}", "--standalone",
               "-m", module, *args]
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if finished.returncode != 0:
        raise RuntimeError(f"torchrun with {processes} processes failed:\n{finished.stderr[-4000:]}")
    return finished.stdout


def ddp_scaling(processes: list[int], profile: str, max_steps: int, extra: list[str] = (),
                cpu: bool = False) -> list[dict]:
    """Train with ``python -m attention_course.parallel.train`` under torchrun for each process count; collect its
    summaries, each with its scaling efficiency against one process.

    Each process trains on its own batch, so N processes see N times the tokens per step.
    """
    results = []
    for count in processes:
        printed = torchrun("attention_course.parallel.train", count,
                           ["--profile", profile, "--max-steps", str(max_steps), *extra], cpu=cpu)
        results.append(json.loads(printed.strip().splitlines()[-1]))
    base = results[0]["tokens_per_s"] / results[0]["world_size"]
    for summary in results:
        summary["scaling_efficiency"] = summary["tokens_per_s"] / (base * summary["world_size"])
    return results


@benchmark("ddp", "DDP scaling over your GPUs (NCCL), or 2 CPU processes (gloo): lesson 05's character GPT")
def bench_ddp(profile: str | None = None, max_steps: int | None = None, shape: str = "char") -> dict:
    """DDP throughput on 1, 2, 4, ... of the visible GPUs (NCCL), or 1 and 2 CPU processes (gloo).

    ``shape="char"``: lesson 05's character GPT (10.7 M parameters on the gpu profile); ``shape="gpt2"``: the
    model ``bench gpt`` times (GPT-2 small, 124 M parameters, batch 12 x 1024 on the gpu profile), trained on
    the same characters, where the gradient all-reduce is a larger share of each step.
    """
    device = pick_device()
    profile = profile or pick_profile(device)
    gpus = torch.cuda.device_count()
    counts = [n for n in (1, 2, 4, 8) if n <= gpus] if gpus else [1, 2]
    steps = max_steps or sizes(DDP, profile).max_steps
    runs = ddp_scaling(counts, profile, steps, extra=["--no-compile", "--shape", shape], cpu=not gpus)
    return {**environment(device, profile), "backend": "nccl" if gpus else "gloo", "max_steps": steps,
            "shape": shape, "compiled": False, "runs": runs}


@benchmark("ddp-gpt2", "DDP scaling as `ddp`, at the GPT-2-small shape of `bench gpt` (all-reduce of 124 M gradients)")
def bench_ddp_gpt2(profile: str | None = None, max_steps: int | None = None) -> dict:
    """``bench_ddp`` at the GPT-2-small shape."""
    return bench_ddp(profile, max_steps, shape="gpt2")
