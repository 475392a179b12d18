"""Where the GPT step leaves the GPU idle (``attention-course bench gpt-idle``): the CPU's time to queue each phase of a
step, and the gaps between the device's kernels from a device-only profile."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable

import torch

from ..core.benchmarks import benchmark, environment
from ..core.device import pick_device, synchronize, tf32, time_fn
from ..core.fused_loss import one_pass_available
from ..core.gpt import GPT, GPTConfig
from ..core.profiles import GPT_BENCH, pick_profile, sizes
from .gpt_step import _forward_loss, _harness, _load_nanogpt, _nanogpt_model, _optimizer_step, _random_batch, _repeated

# Upper edges (microseconds) of the gap classes that ``kernel_gaps`` counts; the last class is open-ended.
GAP_EDGES_US = (1, 2, 3, 5, 10, 20, 100)


def kernel_gaps(intervals: list[tuple[float, float]], steps: int = 1) -> dict[str, object]:
    """The device's idle time between kernels: ``intervals`` are (start, duration) in microseconds of the kernels,
    memsets and copies of ``steps`` steps, in any order (kernels on several streams may overlap).

    Returns, per step: ``device_ops`` (kernels, memsets and copies), ``busy_ms`` (the union of the intervals),
    ``idle_ms`` (the gaps between them), ``span_ms`` (first start to last end), the median gap in microseconds, and
    a histogram of the gaps by ``GAP_EDGES_US`` (a gap of exactly an edge counts in the class above it).
    """
    if steps < 1 or not intervals:
        raise ValueError(f"expected at least one (start, duration) interval and steps >= 1; got {len(intervals)} "
                         f"intervals, steps={steps}")
    if any(duration < 0 for _, duration in intervals):
        raise ValueError("interval durations must be >= 0 microseconds")
    ordered = sorted(intervals)
    gaps, busy, end = [], 0.0, ordered[0][0]
    for start, duration in ordered:
        if start > end:
            gaps.append(start - end)
        busy += max(0.0, start + duration - max(start, end))  # only the part not already covered
        end = max(end, start + duration)
    lows, highs = (0, *GAP_EDGES_US), (*GAP_EDGES_US, float("inf"))
    histogram = {(f"{low}-{high} us" if high != float("inf") else f">= {low} us"):
                 {"gaps": sum(low <= g < high for g in gaps) / steps,
                  "ms": sum(g for g in gaps if low <= g < high) / 1e3 / steps}
                 for low, high in zip(lows, highs, strict=True)}
    return {"device_ops": len(intervals) / steps, "busy_ms": busy / 1e3 / steps, "idle_ms": sum(gaps) / 1e3 / steps,
            "span_ms": (end - ordered[0][0]) / 1e3 / steps, "median_gap_us": statistics.median(gaps) if gaps else 0.0,
            "gap_histogram": histogram}


def _device_intervals(step: Callable[[], object], device: torch.device, steps: int) -> list[tuple[float, float]]:
    """(start, duration) in microseconds of every kernel, memset and copy of ``steps`` calls of ``step``,
    from a device-only profiler trace (recording no CPU operators keeps most of the profiler's cost off the CPU;
    ``kernel_gaps``'s ``span_ms`` next to the unprofiled step time shows how much is left)."""
    from torch.profiler import ProfilerActivity, profile, schedule

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Profiler clears events")
        # One untraced warm-up call first, so that the profiler's start-up costs land there. The device is
        # synchronised after it (none of its kernels may run into the trace) and after the last traced call.
        with profile(activities=[ProfilerActivity.CUDA], schedule=schedule(wait=0, warmup=1, active=steps, repeat=1)) as prof:
            for call in range(1 + steps):
                step()
                if call in (0, steps):
                    synchronize(device)
                prof.step()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as trace:
            events = json.load(trace)["traceEvents"]
    return [(event["ts"], event["dur"]) for event in events
            if event.get("cat") in ("kernel", "gpu_memset", "gpu_memcpy")]


def cpu_time_per_phase(runner: Callable, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                       device: torch.device, repeats: int = 10) -> dict[str, float]:
    """Median milliseconds the CPU spends queueing each phase of a training step (forward, backward, optimizer
    step with zero_grad). Each phase starts with the device idle, so the time is the CPU's own work, not waiting
    for a full launch queue; on a GPU, a step whose phases add up to less than its step time is not held back by
    the CPU."""
    if repeats < 1:
        raise ValueError(f"need repeats >= 1, got {repeats}")
    samples: dict[str, list[float]] = {"forward": [], "backward": [], "optimizer": []}
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        loss = _forward_loss(runner, x, y, device)
        samples["forward"].append(time.perf_counter() - start)
        synchronize(device)
        start = time.perf_counter()
        loss.backward()
        samples["backward"].append(time.perf_counter() - start)
        synchronize(device)
        start = time.perf_counter()
        _optimizer_step(optimizer)
        samples["optimizer"].append(time.perf_counter() - start)
    return {phase: statistics.median(values) * 1e3 for phase, values in samples.items()}


def format_gpt_idle(result: dict) -> str:
    """``bench_gpt_idle``'s result as text: step time, the CPU's share, and the gaps between kernels."""
    phases = ", ".join(f"{phase} {ms:.2f}" for phase, ms in result["cpu_ms"].items())
    lines = [f"{result['device_name']} | torch {result['torch']} | profile {result['profile']}",
             f"{result['model']}, compile mode {result['compile_mode'] or 'default'}: {result['step_ms']:.2f} ms per step",
             f"  CPU queueing the step: {result['cpu_ms_per_step']:.2f} ms ({phases})"]
    gaps = result["kernel_gaps"]
    if gaps is None:
        lines.append("  gaps between kernels: measured on CUDA only")
    else:
        lines.append(f"  {gaps['device_ops']:.0f} kernels, memsets and copies per step; profiled step "
                     f"{gaps['span_ms']:.2f} ms first to last: busy {gaps['busy_ms']:.2f} ms, none running "
                     f"{gaps['idle_ms']:.2f} ms (median gap {gaps['median_gap_us']:.1f} us)")
        lines += [f"    gaps {label:>12}: {row['gaps']:6.1f} per step, {row['ms']:.3f} ms"
                  for label, row in gaps["gap_histogram"].items()]
    return "\n".join(lines)


@benchmark("gpt-idle", "where the GPT step of `bench gpt` leaves the GPU idle: CPU time per phase, gaps between kernels",
           format_gpt_idle)
def bench_gpt_idle(profile: str | None = None, compile_model: bool | None = None, compile_mode: str | None = None,
                   model_file: str | None = None) -> dict:
    """The step of ``bench_gpt`` (fused loss where it runs, no biases), timed as there, plus two measurements of
    what keeps it from being only its kernels' time: ``cpu_time_per_phase`` (is the CPU fast enough to keep the GPU
    fed?) and, on CUDA, ``kernel_gaps`` over a device-only profile of one timing group (how much of the step no
    kernel runs, and in gaps of what size). ``model_file`` times nanoGPT's ``model.py`` in its place (same shape
    and harness; from Python only: the command line times the course's GPT); ``compile_mode`` "reduce-overhead"
    replays the compiled passes as CUDA graphs.
    """
    device = pick_device()
    profile = profile or pick_profile(device)
    size = sizes(GPT_BENCH, profile)
    compile_model = device.type == "cuda" if compile_model is None else compile_model
    torch.manual_seed(0)
    if model_file:
        model, name = _nanogpt_model(_load_nanogpt(model_file), size.model), "nanoGPT"
    else:
        model, name = GPT(GPTConfig(**size.model, bias=False, fused_loss=one_pass_available(device))), "course"
    x, y = _random_batch(size.model["vocab_size"], size.batch, size.model["block_size"], device)
    runner, optimizer, step = _harness(model.to(device), x, y, device, compile_model, compile_mode)
    with tf32(True):
        timing = time_fn(_repeated(step, size.steps_per_timing), device=device, repeats=size.repeats, warmup=size.warmup)
        cpu_ms = cpu_time_per_phase(runner, optimizer, x, y, device, repeats=size.repeats)
        gaps = (kernel_gaps(_device_intervals(step, device, size.steps_per_timing), size.steps_per_timing)
                if device.type == "cuda" else None)
    return {**environment(device, profile), "model": name, "shape": size.model, "batch": size.batch,
            "compiled": compile_model, "compile_mode": compile_mode, "step_ms": timing.median / size.steps_per_timing * 1e3,
            "cpu_ms": cpu_ms, "cpu_ms_per_step": sum(cpu_ms.values()), "kernel_gaps": gaps}
