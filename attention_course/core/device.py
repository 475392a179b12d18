"""Device selection, seeding, honest timing, and process-wide switches that restore themselves."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or the ``ATTENTION_COURSE_DEVICE`` environment variable) forces one, e.g. "cpu".
    """
    wanted = prefer or os.environ.get("ATTENTION_COURSE_DEVICE")
    if wanted:
        if wanted.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {wanted!r} was requested but CUDA is not available")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device: torch.device | str | None = None) -> str:
    """A human-readable name of the hardware behind ``device`` (GPU model or CPU)."""
    device = torch.device(device) if device is not None else pick_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    cores = os.cpu_count() or 1
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads of {cores} cores)"


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a seeded CPU generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def synchronize(device: torch.device | str | None) -> None:
    """Wait for queued GPU work: timing asynchronous kernels without this measures only the launch."""
    if device is None:
        return
    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


@dataclass
class Timing:
    """Median and spread of repeated wall-clock measurements, in seconds."""

    median: float
    minimum: float
    maximum: float
    repeats: int

    def __str__(self) -> str:
        return f"{self.median * 1e3:.3f} ms (median of {self.repeats}, min {self.minimum * 1e3:.3f} ms)"


def time_fn(
    fn: Callable[[], object],
    device: torch.device | str | None = None,
    repeats: int = 10,
    warmup: int = 2,
) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then the median of ``repeats`` synchronised calls."""
    samples = time_calls(fn, repeats, warmup, device)
    return Timing(statistics.median(samples), min(samples), max(samples), repeats)


def time_calls(fn: Callable[[], object], repeats: int = 10, warmup: int = 2,
               device: torch.device | str | None = None) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` synchronised calls of ``fn``, after ``warmup`` untimed calls.

    Every sample is kept (``time_fn`` reduces them to a median): tail latency (p95) lives in the slow calls.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append(time.perf_counter() - start)
    return samples


TRITON_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"  # Triton's CPU interpreter, chosen at its import


def triton_runs_on(device: torch.device | str) -> bool:
    """Whether a Triton kernel can take tensors on ``device``: CUDA, or any device under Triton's interpreter
    (``TRITON_INTERPRET=1``, how the kernels' tests run on a CPU). Whether Triton is installed is asked apart."""
    return torch.device(device).type == "cuda" or TRITON_INTERPRETED


def autocast_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype ``nn.Linear`` would multiply ``tensor`` in here: the autocast dtype where autocast is on, else its own."""
    kind = tensor.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else tensor.dtype


@contextlib.contextmanager
def tf32(enabled: bool = True) -> Iterator[None]:
    """TensorFloat-32 matrix products (and cuDNN convolutions) on or off inside the block, then restored.

    The switch is process-wide: set inside a context, one notebook cell cannot change the next cell's numbers.
    """
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


@contextlib.contextmanager
def compiler_tuning(coordinate_descent: bool = True) -> Iterator[None]:
    """Inductor's coordinate-descent kernel tuning on (or off) inside the block, then restored."""
    import torch._inductor.config as inductor_config

    previous = inductor_config.coordinate_descent_tuning
    inductor_config.coordinate_descent_tuning = coordinate_descent
    try:
        yield
    finally:
        inductor_config.coordinate_descent_tuning = previous
