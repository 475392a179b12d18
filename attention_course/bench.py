"""Benchmarks behind the book's figures, and the registry the command line runs: ``attention-course bench NAME --json``.

A benchmark is a function ``fn(profile=None) -> dict`` registered with ``@benchmark("name")`` (lessons'
modules register theirs, e.g. ``transfer``); ``BENCHMARKS`` maps each name to it and its text formatter.

Every timing is the median of repeated runs after a warm-up, with the GPU synchronised (device.time_fn).
Results carry the device name, torch version and profile so that they can be compared across machines.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .attention import MultiHeadAttention, TransformerBlock
from .device import compiler_tuning, device_name, pick_device, synchronize, tf32, time_fn
from .fused_loss import one_pass_available
from .gpt import GPT, GPTConfig, flops_per_token
from .profiles import DDP, GPT_BENCH, PARALLELISM, pick_profile, sizes
from .training import autocast, make_optimizer


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

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, in FLOP/s.
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10G": 70e12}


def peak_bf16_flops(name: str) -> float | None:
    """The card's dense bf16 peak, looked up by name; None if unknown (then no MFU is reported)."""
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)


# Memory bandwidth (HBM/GDDR) from the same data sheets, in bytes/s: with the peak above, a card's roofline.
# The SXM versions (H100 SXM 3.35 TB/s, H200 4.8 TB/s, A100 80 GB SXM 2.04 TB/s).
MEMORY_BANDWIDTH = {"H100": 3.35e12, "H200": 4.8e12, "A100": 2.04e12, "L4": 0.3e12, "A10G": 0.6e12}


def roofline_specs(name: str) -> tuple[float, float] | None:
    """(dense bf16 peak FLOP/s, memory bandwidth bytes/s) of the card named ``name``; None if unknown."""
    peak = peak_bf16_flops(name)
    bandwidth = next((value for key, value in MEMORY_BANDWIDTH.items() if key in name), None)
    return None if peak is None or bandwidth is None else (peak, bandwidth)


def _environment(device: torch.device, profile: str) -> dict:
    return {"date": time.strftime("%Y-%m-%d"), "device": device.type, "device_name": device_name(device),
            "torch": torch.__version__, "profile": profile}


def _train_step_fn(layer: nn.Module, x: torch.Tensor, call: Callable[[nn.Module, torch.Tensor], torch.Tensor]):
    def step():
        layer.zero_grad(set_to_none=True)
        call(layer, x).float().mean().backward()

    return step


SEQUENCE_MODELS: dict[str, tuple[Callable[[int, int], nn.Module], Callable]] = {
    "LSTM": (lambda d, h: nn.LSTM(d, d, batch_first=True), lambda m, x: m(x)[0]),
    "naive attention": (lambda d, h: MultiHeadAttention(d, h, fused=False), lambda m, x: m(x, is_causal=True)),
    "fused SDPA": (lambda d, h: MultiHeadAttention(d, h, fused=True), lambda m, x: m(x, is_causal=True)),
}


def _measure(device: torch.device, fn: Callable[[], object], repeats: int) -> tuple[float | None, float | None]:
    """(median seconds, peak MiB on CUDA) of ``fn``, or (None, None) if it runs out of memory."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        seconds = time_fn(fn, device=device, repeats=repeats, warmup=2).median
    except torch.OutOfMemoryError:
        return None, None
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return seconds, peak


def sweep_sequence_length(device: torch.device, profile: str) -> list[dict]:
    """Forward + backward time (and CUDA peak memory) of one layer against sequence length T."""
    size, heads = sizes(PARALLELISM, profile), 8
    rows = []
    for name, (build, call) in SEQUENCE_MODELS.items():
        torch.manual_seed(0)
        layer = build(size.width, heads).to(device)
        for length in size.lengths:
            x = torch.randn(size.batch, length, size.width, device=device)
            seconds, peak = _measure(device, _train_step_fn(layer, x, call), size.repeats)
            rows.append({"method": name, "T": length, "width": size.width, "batch": size.batch,
                         "ms": None if seconds is None else seconds * 1e3, "peak_mib": peak})
        del layer
    return rows


def precision_and_compile(device: torch.device, profile: str) -> list[dict]:
    """One Transformer block, forward + backward at a fixed length, under each precision setting (and compiled)."""
    size = sizes(PARALLELISM, profile)
    (length, width, batch), repeats = size.block, size.block_repeats
    settings = [("fp32", False, False, False)]
    if device.type == "cuda":
        settings += [("tf32", True, False, False), ("bf16 autocast", True, True, False),
                     ("bf16 autocast + torch.compile", True, True, True)]
    rows = []
    for label, use_tf32, bf16, compiled in settings:
        torch.manual_seed(0)
        block = TransformerBlock(width, width // 64 if width >= 64 else 1).to(device)
        runner = torch.compile(block) if compiled else block
        x = torch.randn(batch, length, width, device=device)

        def step(block=block, runner=runner, x=x, bf16=bf16):
            block.zero_grad(set_to_none=True)
            with autocast(device, bf16):
                out = runner(x, is_causal=True)
            out.float().mean().backward()

        with tf32(use_tf32):
            seconds = time_fn(step, device=device, repeats=repeats, warmup=3).median
        # matrix FLOPs of the block: 24 B T d^2 (projections + MLP) + 4 B T^2 d (scores, weighted sum), x3 for fwd+bwd
        flops = 3 * (24 * batch * length * width**2 + 4 * batch * length**2 * width)
        rows.append({"setting": label, "T": length, "width": width, "batch": batch, "ms": seconds * 1e3,
                     "tflops": flops / seconds / 1e12})
    return rows


@benchmark("parallelism", "lesson 04: time and memory vs sequence length; precision and torch.compile")
def bench_parallelism(profile: str | None = None) -> dict:
    """The lesson-04 measurements: time and memory vs sequence length; precision and compilation."""
    device = pick_device()
    profile = profile or pick_profile(device)
    return {**_environment(device, profile), "sweep": sweep_sequence_length(device, profile),
            "precision": precision_and_compile(device, profile)}


SDPA_BACKENDS = ("flash", "cudnn", "efficient", "math")


def _sdpa_backend(name: str | None):
    """A context that restricts fused attention to one kernel family (None: PyTorch's own choice)."""
    if name is None:
        return contextlib.nullcontext()
    if name not in SDPA_BACKENDS:
        raise ValueError(f"attention_backend must be one of {SDPA_BACKENDS} or None, got {name!r}")
    from torch.nn.attention import SDPBackend, sdpa_kernel

    members = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    return sdpa_kernel([members[name]])


KERNEL_CATEGORIES = (  # (category, substrings of GPU kernel or CPU aten operator names), first match wins
    ("attention", ("flash", "fmha", "attention", "cudnn")),
    ("matrix products", ("gemm", "nvjet", "cutlass", "xmma", "splitk", "aten::mm", "aten::addmm", "aten::bmm")),
    ("optimizer (AdamW)", ("adam", "foreach", "multi_tensor")),
    ("cross-entropy loss", ("log_softmax", "nll_loss", "cross_entropy")),
    ("copies and fills", ("memset", "memcpy", "fillfunctor", "aten::copy_", "aten::fill_", "aten::zero_")),
)
OTHER_KERNELS = "element-wise and norms"  # LayerNorm, GELU, residual additions (fused by torch.compile)


def kernel_category(name: str) -> str:
    """Which part of a training step a kernel (GPU) or ``aten::`` operator (CPU) belongs to."""
    lowered = name.lower()
    return next((category for category, keys in KERNEL_CATEGORIES if any(key in lowered for key in keys)),
                OTHER_KERNELS)


def time_breakdown(step: Callable[[], object], device: torch.device, steps: int = 3) -> dict[str, float]:
    """Milliseconds per step spent in each kernel category, from the PyTorch profiler.

    On a GPU this is the time the kernels kept the GPU busy; the rest of a step is idle time
    (launch gaps, the CPU running behind). On a CPU it sums the ``aten::`` operators' own time.
    """
    from torch.profiler import ProfilerActivity, profile

    activity = ProfilerActivity.CUDA if device.type == "cuda" else ProfilerActivity.CPU
    with warnings.catch_warnings():  # one profiling cycle: the "clears events at the end of each cycle" note is moot
        warnings.filterwarnings("ignore", message=".*Profiler clears events")
        with profile(activities=[activity]) as prof:
            for _ in range(steps):
                step()
            synchronize(device)
        events = prof.key_averages() if device.type == "cuda" else prof.events()
    totals: dict[str, float] = {}
    if device.type == "cuda":
        timed = [(event.key, event.self_device_time_total) for event in events]
    else:  # CPU AdamW runs plain aten ops: attribute those called inside Optimizer.step to the optimizer
        timed = [("adam" if _inside_optimizer(event) else event.name, event.self_cpu_time_total)
                 for event in events if event.name.startswith("aten::")]
    for name, microseconds in timed:
        if microseconds > 0:
            category = kernel_category(name)
            totals[category] = totals.get(category, 0.0) + microseconds / 1e3 / steps
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def _inside_optimizer(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("Optimizer.step"):
            return True
        parent = parent.cpu_parent
    return False


def _forward_loss(runner: Callable, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> torch.Tensor:
    with autocast(device, True):
        _, loss = runner(x, y)
    return loss


def _optimizer_step(optimizer: torch.optim.Optimizer) -> None:
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def training_step(runner: Callable, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                  device: torch.device, micro_batches: int = 1) -> Callable[[], None]:
    """One optimizer step of a model called as ``runner(x, y) -> (logits, loss)``, in bf16 autocast on CUDA,
    accumulating gradients over ``micro_batches`` forward/backward passes (the harness every GPT bench shares)."""

    def step():
        for _ in range(micro_batches):
            (_forward_loss(runner, x, y, device) / micro_batches).backward()
        _optimizer_step(optimizer)

    return step


def _harness(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, compile_model: bool,
             compile_mode: str | None = None, micro_batches: int = 1
             ) -> tuple[Callable, torch.optim.Optimizer, Callable[[], None]]:
    """(runner, optimizer, step) for timing ``model``: nanoGPT's optimizer (fused AdamW, decay on >= 2-D weights),
    ``torch.compile`` where asked, and ``training_step``."""
    optimizer = make_optimizer(model, 6e-4, 0.1, device)
    runner = torch.compile(model, mode=compile_mode) if compile_model else model
    return runner, optimizer, training_step(runner, optimizer, x, y, device, micro_batches)


def _repeated(step: Callable[[], None], times: int) -> Callable[[], None]:
    """``step`` run ``times`` times back to back, as a training loop runs it (one timing sample)."""

    def steps():
        for _ in range(times):
            step()

    return steps


@benchmark("gpt", "GPT training-step throughput and model FLOPs utilisation (MFU)")
def bench_gpt(profile: str | None = None, compile_model: bool | None = None, repeats: int | None = None,
              micro_batches: int = 1, tuned: bool = False, bias: bool = False, attention_backend: str | None = None,
              compile_mode: str | None = None, breakdown: bool = False, fused_loss: bool | None = None,
              fused_mlp: bool = False) -> dict:
    """Tokens/s and model FLOPs utilisation of full GPT training steps (forward, backward, AdamW).

    Steps run back to back in groups (``steps_per_timing``), as in a training loop, with the device
    synchronised after each group; the median over ``repeats`` groups is reported per step.
    The model has no biases by default (like nanoGPT's benchmark); ``bias=True`` adds them.
    ``micro_batches`` > 1 accumulates gradients over that many batches per optimizer step (as nanoGPT does),
    so the optimizer's cost is shared; ``tuned`` turns on inductor's coordinate-descent kernel tuning;
    ``attention_backend`` restricts fused attention to one kernel family ("cudnn", "flash", ...) around the timed
    steps (certain in eager mode; with torch.compile on an H200 it changed nothing measurable); ``compile_mode`` is passed
    to ``torch.compile`` (for example "reduce-overhead" for CUDA graphs); ``breakdown`` adds the profiler's
    milliseconds per step by kernel category (``time_breakdown``); ``fused_loss`` fuses the LM head and the
    cross-entropy (``fused_loss.linear_cross_entropy``); None (the default) fuses them where the one-pass Triton
    kernel runs, on CUDA; ``fused_mlp`` computes GELU inside the feed-forward products (``fused_mlp.gelu_mlp``, off by
    default: on an H200 it made the step slower, results/fused_mlp_H200.json).
    """
    device = pick_device()
    fused_loss = one_pass_available(device) if fused_loss is None else fused_loss
    profile = profile or pick_profile(device)
    size = sizes(GPT_BENCH, profile)
    config, batch = GPTConfig(**size.model, bias=bias, fused_loss=fused_loss, fused_mlp=fused_mlp), size.batch
    compile_model = device.type == "cuda" if compile_model is None else compile_model
    repeats = repeats or size.repeats
    steps_per_timing = size.steps_per_timing
    torch.manual_seed(0)
    model = GPT(config).to(device)
    x, y = _random_batch(config.vocab_size, batch, config.block_size, device)
    _, _, step = _harness(model, x, y, device, compile_model, compile_mode, micro_batches)
    steps = _repeated(step, steps_per_timing)
    tuning = compiler_tuning(True) if tuned else contextlib.nullcontext()
    with tf32(True), tuning, _sdpa_backend(attention_backend):
        timing = time_fn(steps, device=device, repeats=repeats, warmup=size.warmup)
        kernels = time_breakdown(step, device) if breakdown else None
    step_seconds = timing.median / steps_per_timing
    tokens_per_s = micro_batches * batch * config.block_size / step_seconds
    achieved = flops_per_token(config, model.num_params()) * tokens_per_s
    name = device_name(device)
    peak = peak_bf16_flops(name) if device.type == "cuda" else None
    return {**_environment(device, profile), "config": vars(config), "batch": batch, "compiled": compile_model,
            "compile_mode": compile_mode, "micro_batches": micro_batches, "tuned": tuned,
            "attention_backend": attention_backend, "bf16": device.type == "cuda", "params": model.num_params(),
            "step_ms": step_seconds * 1e3, "step_ms_min": timing.minimum / steps_per_timing * 1e3,
            "repeats": repeats, "steps_per_timing": steps_per_timing, "tokens_per_s": tokens_per_s,
            "achieved_tflops": achieved / 1e12, "peak_tflops": None if peak is None else peak / 1e12,
            "mfu": None if peak is None else achieved / peak, "breakdown_ms": kernels}


NANOGPT_ENV = "NANOGPT_MODEL_FILE"


def _load_nanogpt(model_file: str):
    """nanoGPT's ``model.py`` (not shipped with the course: pass the path of your own copy)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nanogpt_model", model_file)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{model_file}: expected the path of nanoGPT's model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nanogpt_model(nanogpt: types.ModuleType, shape: dict) -> nn.Module:
    """nanoGPT's GPT at the course's ``shape`` (GPTConfig keywords), without biases or dropout, as its benchmark runs it."""
    return nanogpt.GPT(nanogpt.GPTConfig(block_size=shape["block_size"], vocab_size=shape["vocab_size"],
                                         n_layer=shape["n_layer"], n_head=shape["n_head"], n_embd=shape["d_model"],
                                         dropout=0.0, bias=False))


def _random_batch(vocab_size: int, batch: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token ids and targets (batch, length): a benchmark times the step, not the data."""
    return (torch.randint(vocab_size, (batch, length), device=device),
            torch.randint(vocab_size, (batch, length), device=device))


# The course's variants in the side-by-side run: name (as the results files store it) -> GPTConfig options.
NANOGPT_VARIANTS = {
    "course": {},
    "course, fused loss": {"fused_loss": True},
    "course, fused loss + fused MLP": {"fused_loss": True, "fused_mlp": True},
}


@benchmark("gpt-vs-nanogpt", f"the course's GPT step against nanoGPT's model under one harness (${NANOGPT_ENV})")
def bench_gpt_vs_nanogpt(profile: str | None = None, model_file: str | None = None, rounds: int = 3,
                         variants: tuple[str, ...] = ("course", "course, fused loss"),
                         compile_mode: str | None = None) -> dict:
    """Step time of nanoGPT's model and of the course's GPT, same shape (no biases), same batch, bf16, compiled,
    fused AdamW, timed by the same loop in alternating rounds (so drift in clocks or temperature hits both).

    ``model_file`` (or ``$NANOGPT_MODEL_FILE``) is nanoGPT's ``model.py``. Each round times every model with
    ``time_fn``; the result keeps each model's median over rounds and its speed relative to nanoGPT.
    ``compile_mode`` (e.g. "max-autotune-no-cudagraphs") is passed to ``torch.compile`` for every model alike.
    """
    unknown = [name for name in variants if name not in NANOGPT_VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; expected names from {list(NANOGPT_VARIANTS)}")
    model_file = model_file or os.environ.get(NANOGPT_ENV)
    if not model_file:
        raise FileNotFoundError(f"set {NANOGPT_ENV} to the path of nanoGPT's model.py (not shipped with the course)")
    nanogpt = _load_nanogpt(model_file)
    device = pick_device()
    profile = profile or pick_profile(device)
    size = sizes(GPT_BENCH, profile)
    shape = size.model
    x, y = _random_batch(shape["vocab_size"], size.batch, shape["block_size"], device)
    builders = {"nanoGPT": lambda: _nanogpt_model(nanogpt, shape)}
    for name in variants:
        builders[name] = lambda name=name: GPT(GPTConfig(**shape, bias=False, **NANOGPT_VARIANTS[name]))
    groups = {}
    compile_model = device.type == "cuda"
    for name, build in builders.items():
        torch.manual_seed(0)
        _, _, step = _harness(build().to(device), x, y, device, compile_model, compile_mode)
        groups[name] = _repeated(step, size.steps_per_timing)
    medians: dict[str, list[float]] = {name: [] for name in groups}
    with tf32(True):
        for _ in range(rounds):
            for name, group in groups.items():
                timing = time_fn(group, device=device, repeats=size.repeats, warmup=size.warmup)
                medians[name].append(timing.median / size.steps_per_timing * 1e3)
    step_ms = {name: statistics.median(values) for name, values in medians.items()}
    return {**_environment(device, profile), "shape": shape, "batch": size.batch, "compiled": compile_model,
            "compile_mode": compile_mode, "rounds": rounds, "step_ms": step_ms, "step_ms_by_round": medians,
            "speed_vs_nanogpt": {name: step_ms["nanoGPT"] / ms for name, ms in step_ms.items()},
            "nanogpt_file": os.path.basename(model_file)}


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
    return {**_environment(device, profile), "model": name, "shape": size.model, "batch": size.batch,
            "compiled": compile_model, "compile_mode": compile_mode, "step_ms": timing.median / size.steps_per_timing * 1e3,
            "cpu_ms": cpu_ms, "cpu_ms_per_step": sum(cpu_ms.values()), "kernel_gaps": gaps}


def run_torchrun(processes: list[int], profile: str, max_steps: int, extra: list[str] = (),
              cpu: bool = False) -> list[dict]:
    """Run ``python -m attention_course.train`` under torchrun for each process count; collect its summary.

    On GPUs each process drives one GPU (NCCL); with ``cpu=True`` (or no GPU) the processes use gloo on the CPU.
    Each process trains on its own batch, so N processes see N times the tokens per step.
    """
    results = []
    for count in processes:
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        if cpu:
            env["CUDA_VISIBLE_DEVICES"] = ""
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={count}", "--standalone",
                   "-m", "attention_course.train", "--profile", profile, "--max-steps", str(max_steps), *extra]
        finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        if finished.returncode != 0:
            raise RuntimeError(f"torchrun with {count} processes failed:\n{finished.stderr[-3000:]}")
        summary = json.loads(finished.stdout.strip().splitlines()[-1])
        results.append(summary)
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
    runs = run_torchrun(counts, profile, steps, extra=["--no-compile", "--shape", shape], cpu=not gpus)
    return {**_environment(device, profile), "backend": "nccl" if gpus else "gloo", "max_steps": steps,
            "shape": shape, "compiled": False, "runs": runs}


@benchmark("ddp-gpt2", "DDP scaling as `ddp`, at the GPT-2-small shape of `bench gpt` (all-reduce of 124 M gradients)")
def bench_ddp_gpt2(profile: str | None = None, max_steps: int | None = None) -> dict:
    """``bench_ddp`` at the GPT-2-small shape."""
    return bench_ddp(profile, max_steps, shape="gpt2")


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
