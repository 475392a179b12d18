"""What serving a model costs: latency percentiles, throughput, peak memory, size on disk, cost per million.

Lesson 08 measures every model variant with these functions and puts the numbers side by side in one
cost table; lesson 10 re-uses ``latency_percentiles``, ``cost_per_million`` and ``cost_table``.

Conventions: timings are in seconds, latencies in the table in milliseconds, prices in US dollars per
hour of the machine (an assumption the reader sets, never a fact), costs in dollars per million predictions.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from ..core.device import synchronize, time_calls

# Hourly prices of a whole machine, in US dollars. ASSUMPTIONS for illustration, not quotes: set your own.
DEFAULT_HOURLY_PRICES = {
    "cpu": 0.10,  # assumption: a small cloud VM with 2 vCPUs, or the amortised cost of an on-premises box
    "gpu": 4.00,  # assumption: one data-centre GPU (H100/H200 class) rented by the hour
}

PERCENTILES = (50, 95)


def latency_percentiles(timings: Iterable[float], percentiles: Sequence[float] = PERCENTILES) -> dict[str, float]:
    """Percentiles of per-request latencies, keyed ``"p50"``, ``"p95"``, ... in the unit of ``timings``.

    Uses linear interpolation between the two closest ranks (NumPy's default): for sorted timings
    x_0 <= ... <= x_{n-1}, percentile q sits at rank r = q/100 * (n - 1) and is
    x_floor(r) + (r - floor(r)) * (x_ceil(r) - x_floor(r)). p50 is the median; p95 is the latency that
    19 requests in 20 beat, the figure a service promises.

    >>> latency_percentiles([5.0, 1.0, 2.0, 4.0, 3.0], (50, 90))  # ranks 2 and 3.6: 3 and 4 + 0.6 * (5 - 4)
    {'p50': 3.0, 'p90': 4.6}
    """
    values = np.asarray(list(timings), dtype=float)
    if values.size == 0:
        raise ValueError("need at least one timing")
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise ValueError("timings must be finite and non-negative")
    for q in percentiles:
        if not 0 <= q <= 100:
            raise ValueError(f"percentiles must lie in 0..100, got {q}")
    return {f"p{q:g}": float(np.percentile(values, q)) for q in percentiles}


def cost_per_million(predictions_per_s: float, hourly_price: float) -> float:
    """Dollars per million predictions on a machine that costs ``hourly_price`` dollars an hour.

    A machine doing ``predictions_per_s`` predictions each second does 3600 times that in the hour it is
    paid for, so one million predictions cost ``hourly_price * 1e6 / (3600 * predictions_per_s)``.
    Assumes the machine is kept busy (a half-idle machine costs twice as much per prediction).

    >>> round(cost_per_million(1000.0, 3.6), 6)
    1.0
    """
    if predictions_per_s <= 0:
        raise ValueError(f"predictions_per_s must be positive, got {predictions_per_s}")
    if hourly_price < 0:
        raise ValueError(f"hourly_price must be non-negative, got {hourly_price}")
    return hourly_price * 1e6 / (3600.0 * predictions_per_s)


# ---------------------------------------------------------------- measuring


def load_note() -> str:
    """Where timing-based verdicts come from: this run, at this machine's load (1-minute load average vs cores)."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # no load average here (Windows has no os.getloadavg)
        return f"from this run ({cores} cores, load unknown): another run or load can rank close variants otherwise"
    busy = " (busier than its cores: timings are slower and noisier)" if load > cores else ""
    return (f"from this run at a load average of {load:.1f} on {cores} cores{busy}: another run or load can rank "
            f"close variants otherwise")


@contextlib.contextmanager
def cpu_threads(count: int):
    """Run the block with ``count`` CPU threads for PyTorch's operators, then restore the previous number.

    Timings on a shared or busy machine are steadier with fewer threads than cores: a thread that waits for
    a descheduled sibling at every operator's barrier slows everything down.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def throughput(fn: Callable[[], object], batch_size: int, repeats: int = 10, warmup: int = 2, device=None) -> float:
    """Predictions per second of ``fn``, a call that predicts ``batch_size`` items (median call time)."""
    seconds = float(np.median(time_calls(fn, repeats, warmup, device)))
    return batch_size / seconds


@torch.inference_mode()
def interleaved_throughput(models: dict[str, Callable], batches: Sequence[dict], rounds: int = 3,
                           device=None) -> dict[str, float]:
    """Items per second of each model over the same ``batches``, timed in turns, median over ``rounds``.

    Taking turns (A, B, C, A, B, C, ...) exposes every model to the same background load, which matters
    on a shared machine; each model runs once untimed first (compilation, caches).
    """
    items = sum(len(next(iter(batch.values()))) for batch in batches)
    for model in models.values():
        model(**batches[0])
    samples: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            synchronize(device)
            start = time.perf_counter()
            for batch in batches:
                model(**batch)
            synchronize(device)
            samples[name].append(time.perf_counter() - start)
    return {name: items / float(np.median(times)) for name, times in samples.items()}


def _rss_bytes() -> int:
    """This process's resident memory: from /proc on Linux, else through psutil."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss


def peak_memory_mib(fn: Callable[[], object], device=None, interval_s: float = 0.0005) -> float:
    """Peak memory one call of ``fn`` needs beyond what was held before it, in MiB.

    On CUDA: the allocator's high-water mark during the call minus what was allocated before it
    (activations and workspaces; add the weights' bytes for the total). On the CPU: the process's
    resident memory sampled by a background thread (every ``interval_s``), peak minus the level before
    the call; a coarse but honest figure that also sees memory that ONNX Runtime or oneDNN allocate.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return max(0.0, (torch.cuda.max_memory_allocated(device) - before) / 2**20)
    before = _rss_bytes()
    peak = [before]
    running = threading.Event()
    running.set()

    def sample():
        while running.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        running.clear()
        sampler.join()
    peak[0] = max(peak[0], _rss_bytes())
    return max(0.0, (peak[0] - before) / 2**20)


def parameter_count(model: torch.nn.Module) -> int:
    """Number of parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def size_on_disk_mib(model_or_path) -> float:
    """Size of a saved model in MiB: a file or folder's bytes, or a module's ``state_dict`` saved by torch.save."""
    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        if os.path.isdir(path):
            total = sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)
        else:
            total = os.path.getsize(path)
        return total / 2**20
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.pt")
        torch.save(model_or_path.state_dict(), path)
        return os.path.getsize(path) / 2**20


# ---------------------------------------------------------------- the cost table


def cost_table(measurements: Iterable[dict], hourly_prices: dict[str, float] | None = None):
    """One row per (variant, hardware) with cost per million predictions added; a pandas DataFrame.

    Each measurement is a dict with at least ``variant``, ``hardware`` (a key of ``hourly_prices``, e.g.
    "cpu" or "gpu") and ``throughput_per_s`` (predictions per second at the serving batch size); other
    keys (accuracy, params, size_mib, peak_mib, p50_ms, p95_ms, ...) are kept as columns.
    Adds ``hourly_price`` and ``cost_per_million`` (dollars), sorted cheapest first.
    ``hourly_prices`` defaults to ``DEFAULT_HOURLY_PRICES``: assumptions, not facts.
    """
    import pandas as pd

    prices = DEFAULT_HOURLY_PRICES if hourly_prices is None else hourly_prices
    rows = []
    for measurement in measurements:
        for key in ("variant", "hardware", "throughput_per_s"):
            if key not in measurement:
                raise ValueError(f"measurement {measurement!r} lacks {key!r}")
        hardware = measurement["hardware"]
        if hardware not in prices:
            raise ValueError(f"no hourly price for hardware {hardware!r}; prices given for {sorted(prices)}")
        price = prices[hardware]
        rows.append({**measurement, "hourly_price": price,
                     "cost_per_million": cost_per_million(measurement["throughput_per_s"], price)})
    return pd.DataFrame(rows).sort_values("cost_per_million", kind="stable").reset_index(drop=True)


def pareto_front(table, maximize: str = "accuracy", minimize: str = "cost_per_million") -> list[bool]:
    """For each row, whether no other row is at least as good on both columns and strictly better on one.

    ``table``: a DataFrame or a list of dicts. The front holds the variants worth considering; every
    other variant is beaten on both accuracy and ``minimize`` (cost, p95 latency, ...) by some other one.
    """
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    front = []
    for row in rows:
        dominated = any(
            other[maximize] >= row[maximize] and other[minimize] <= row[minimize]
            and (other[maximize] > row[maximize] or other[minimize] < row[minimize])
            for other in rows
        )
        front.append(not dominated)
    return front


def cheapest_meeting(table, min_accuracy: float, max_p95_ms: float, accuracy: str = "accuracy",
                     latency: str = "p95_ms", cost: str = "cost_per_million") -> dict | None:
    """The cheapest row whose accuracy is at least ``min_accuracy`` and p95 latency at most ``max_p95_ms``.

    Returns the row as a dict, or None when no variant meets both targets (then relax a target or buy
    different hardware). Ties in cost go to the more accurate variant.
    """
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    meeting = [row for row in rows if row[accuracy] >= min_accuracy and row[latency] <= max_p95_ms]
    if not meeting:
        return None
    return min(meeting, key=lambda row: (row[cost], -row[accuracy]))


# ---------------------------------------------------------------- generation: naive loop against the KV cache


def generation_speed(model, prompt_source: torch.Tensor, contexts: Sequence[int], new_tokens: int,
                     batch_sizes: Sequence[int] = (1,), repeats: int = 3, device=None) -> list[dict]:
    """Tokens per second of greedy generation without and with the key/value cache, by final context length.

    For each context c, prompts of ``c - new_tokens`` tokens (consecutive windows of ``prompt_source``)
    are continued by ``new_tokens`` tokens; ``same_tokens`` says whether both loops chose the same ones.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    rows = []
    for batch in batch_sizes:
        for context in contexts:
            if not new_tokens < context <= model.config.block_size:
                raise ValueError(f"context {context} must exceed new_tokens={new_tokens} and fit in block_size")
            length = context - new_tokens
            prompt = torch.stack([prompt_source[i * length : (i + 1) * length] for i in range(batch)]).to(device)
            outputs, speeds = {}, {}
            for use_cache in (False, True):
                def run(use_cache=use_cache, prompt=prompt, outputs=outputs):
                    outputs[use_cache] = model.generate(prompt, new_tokens, temperature=0, use_cache=use_cache)

                seconds = float(np.median(time_calls(run, repeats, warmup=1, device=device)))
                speeds[use_cache] = batch * new_tokens / seconds
            rows.append({"batch": batch, "context": context, "new_tokens": new_tokens,
                         "naive_tokens_per_s": speeds[False], "cached_tokens_per_s": speeds[True],
                         "speedup": speeds[True] / speeds[False], "same_tokens": torch.equal(outputs[False], outputs[True])})
    return rows


# ---------------------------------------------------------------- one variant, measured


def batches(inputs: dict[str, torch.Tensor], batch_size: int, count: int, device) -> list[dict[str, torch.Tensor]]:
    """``count`` batches of consecutive rows, trimmed to their longest real sentence, on ``device``."""
    total = len(inputs["input_ids"])
    out = []
    for i in range(count):
        start = (i * batch_size) % max(1, total - batch_size + 1)
        part = {key: value[start : start + batch_size] for key, value in inputs.items()}
        length = int(part["attention_mask"].sum(1).max())
        out.append({key: value[:, :length].to(device) for key, value in part.items()})
    return out


def measure_variant(variant: str, model: torch.nn.Module, inputs: dict[str, torch.Tensor], labels: torch.Tensor,
                    device, hardware: str, requests: int = 50, throughput_batch: int = 64, throughput_batches: int = 5,
                    size_mib: float | None = None, params: int | None = None, autocast_bf16: bool = False) -> dict:
    """Accuracy, size, peak memory, latency percentiles at batch 1 and throughput at ``throughput_batch``.

    ``inputs``/``labels``: the test split, tokenised. Latency: ``requests`` single sentences sent one at a
    time (each with its own length, as requests arrive). Throughput: the median over ``throughput_batches``
    batches of test sentences. Peak memory: the weights (their size on disk) plus what one batch needs.
    Every request and every batch runs once untimed first: the first call at a new input length loads and picks
    kernels (on an H200, tens of milliseconds for each new length of a 16-bit model), a one-off cost that a
    server pays at start-up, not per request.
    """
    from ..core.training import accuracy, autocast

    device = torch.device(device)
    model.eval()
    size = size_on_disk_mib(model) if size_mib is None else size_mib  # before inference mode: torchao's int8
    with torch.inference_mode(), autocast(device, autocast_bf16):  # tensors cannot be saved from inside it
        test_accuracy = accuracy(model, inputs, labels, batch_size=throughput_batch)
        singles = batches(inputs, 1, requests, device)
        full = batches(inputs, throughput_batch, throughput_batches, device)
        for batch in singles + full:  # warm-up: every input length once
            model(**batch)
        cycle = iter(range(10**9))
        latencies = time_calls(lambda: model(**singles[next(cycle) % len(singles)]), repeats=requests, warmup=0,
                               device=device)
        cycle_b = iter(range(10**9))
        seconds = time_calls(lambda: model(**full[next(cycle_b) % len(full)]), repeats=throughput_batches,
                             warmup=0, device=device)
        activations = peak_memory_mib(lambda: model(**full[0]), device)
    percentiles = latency_percentiles([s * 1e3 for s in latencies])
    return {"variant": variant, "hardware": hardware, "accuracy": test_accuracy,
            "params": parameter_count(model) if params is None else params, "size_mib": size,
            "peak_mib": size + activations, "p50_ms": percentiles["p50"], "p95_ms": percentiles["p95"],
            "throughput_per_s": throughput_batch / float(np.median(seconds)), "throughput_batch": throughput_batch}
