"""Lesson 04's sweeps: one layer's time and memory against sequence length (LSTM, naive attention, fused SDPA), and one
Transformer block under each precision setting and torch.compile (``attention-course bench parallelism``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..core.attention import MultiHeadAttention, TransformerBlock
from ..core.benchmarks import benchmark, environment
from ..core.device import pick_device, tf32, time_fn
from ..core.profiles import PARALLELISM, pick_profile, sizes
from ..core.training import autocast


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
    return {**environment(device, profile), "sweep": sweep_sequence_length(device, profile),
            "precision": precision_and_compile(device, profile)}

