"""The GPT training step timed (``attention-course bench gpt``): tokens/s and model FLOPs utilisation against the card's
peak, where the step's kernel time goes, and the same step against nanoGPT's model under one harness
(``bench gpt-vs-nanogpt``). ``training_step`` is the harness every GPT benchmark shares.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import types
import warnings
from collections.abc import Callable

import torch
from torch import nn

from ..core.benchmarks import benchmark, environment
from ..core.device import compiler_tuning, device_name, pick_device, synchronize, tf32, time_fn
from ..core.fused_loss import one_pass_available
from ..core.gpt import GPT, GPTConfig, flops_per_token
from ..core.profiles import GPT_BENCH, pick_profile, sizes
from ..core.training import autocast, make_optimizer

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
    return {**environment(device, profile), "config": vars(config), "batch": batch, "compiled": compile_model,
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
    return {**environment(device, profile), "shape": shape, "batch": size.batch, "compiled": compile_model,
            "compile_mode": compile_mode, "rounds": rounds, "step_ms": step_ms, "step_ms_by_round": medians,
            "speed_vs_nanogpt": {name: step_ms["nanoGPT"] / ms for name, ms in step_ms.items()},
            "nanogpt_file": os.path.basename(model_file)}
