"""The benchmark registry the command line runs (``attention-course bench NAME --json``), and what every result carries.

A benchmark is a function ``fn(profile=None) -> dict`` registered with ``@benchmark("name")`` by the module of the
lesson it measures (for example ``parallel.sweeps`` or ``inside.transfer``), or by its driver in ``tools`` where
the command line runs it differently from the lesson (``tools.bench_generation``); ``BENCHMARKS`` maps each name to it
and its text formatter. Results start with ``environment``: the device name, torch version and profile, so that they can be
compared across machines. Every timing is the median of repeated runs after a warm-up, with the GPU synchronised
(``device.time_fn``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .device import device_name


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: what it measures, the function that runs it, and how to print its result."""

    run: Callable[..., dict]
    describe: str
    formatter: Callable[[dict], str] | None = None

    def render(self, result: dict) -> str:
        """The result as text for the terminal (``format_result`` unless the benchmark brought its own)."""
        return (self.formatter or format_result)(result)


BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(name: str, describe: str, formatter: Callable[[dict], str] | None = None):
    """Register ``fn(profile=None) -> dict`` as ``attention-course bench NAME``; ``formatter`` renders it as text."""

    def register(fn: Callable[..., dict]) -> Callable[..., dict]:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} is registered twice")
        BENCHMARKS[name] = Benchmark(fn, describe, formatter)
        return fn

    return register


def environment(device: torch.device, profile: str) -> dict:
    """What every result starts with: the date, the device and its name, the torch version and the profile."""
    return {"date": time.strftime("%Y-%m-%d"), "device": device.type, "device_name": device_name(device),
            "torch": torch.__version__, "profile": profile}


def format_result(result: dict) -> str:
    """A plain-text rendering of a bench result, for the terminal."""
    lines = [f"{result['device_name']} | torch {result['torch']} | profile {result['profile']}"]
    if "sweep" in result:
        lines.append(f"{'method':>16} {'T':>6} {'ms':>10} {'peak MiB':>10}")
        for row in result["sweep"]:
            ms = "OOM" if row["ms"] is None else f"{row['ms']:.2f}"
            peak = "-" if row["peak_mib"] is None else f"{row['peak_mib']:.0f}"
            lines.append(f"{row['method']:>16} {row['T']:>6} {ms:>10} {peak:>10}")
        for row in result["precision"]:
            lines.append(f"{row['setting']:>32}: {row['ms']:.2f} ms, {row['tflops']:.1f} TFLOP/s")
    for run in result.get("runs", []):
        step = f", {run['ms_per_step']:.1f} ms/step" if "ms_per_step" in run else ""
        lines.append(f"{run['world_size']} x {run['device_name']}: {run['tokens_per_s']:,.0f} tokens/s{step}, "
                     f"scaling efficiency {100 * run['scaling_efficiency']:.0f}%")
    if "tokens_per_s" in result:
        mfu = "n/a (unknown peak)" if result["mfu"] is None else f"{100 * result['mfu']:.1f}%"
        biases = "with biases" if result["config"].get("bias") else "no biases"
        accumulation = f", {result['micro_batches']} micro-batches per step" if result.get("micro_batches", 1) > 1 else ""
        lines.append(f"GPT {result['params'] / 1e6:.{0 if result['params'] >= 1e7 else 2}f}M params ({biases}), batch {result['batch']} x "
                     f"{result['config']['block_size']}{accumulation}: {result['step_ms']:.1f} ms/step, "
                     f"{result['tokens_per_s']:,.0f} tokens/s, {result['achieved_tflops']:.1f} TFLOP/s, MFU {mfu}")
    for name, speed in result.get("speed_vs_nanogpt", {}).items():
        lines.append(f"{name:>24}: {result['step_ms'][name]:6.2f} ms per step, {speed:.3f} x nanoGPT's speed")
    for category, ms in (result.get("breakdown_ms") or {}).items():
        lines.append(f"  {category:>26}: {ms:6.2f} ms per step")
    return "\n".join(lines)
