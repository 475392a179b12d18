"""Beyond data parallel (lesson 04b): what each GPU holds and sends, and the course's GPT trained with DDP,
ZeRO-1, FSDP2 (ZeRO-2/3) and tensor parallelism on PyTorch's own engine.

The calculator (``memory_per_gpu``, ``communication_per_step``) counts bytes from a ``GPTConfig``; the trainer
(``train_steps``) runs the same global batches under each strategy. Under torchrun:

    torchrun --nproc_per_node=2 -m attention_course.parallel.sharding --strategies ddp,zero1,zero2,zero3,tp --steps 20

Strategies (one name each, in the calculator, the trainer and the lesson):

- ``single``: one process, the reference.
- ``ddp``: ``DistributedDataParallel``: every GPU holds the whole model, gradients are all-reduced.
- ``zero1``: DDP with ``ZeroRedundancyOptimizer``: the optimizer state is split across GPUs (ZeRO stage 1).
- ``zero2``: FSDP2 ``fully_shard(reshard_after_forward=False)``: parameters, gradients and optimizer state
  are sharded at rest; the gathered parameters stay from the forward pass to the backward pass (ZeRO-2-like).
- ``zero3``: FSDP2 ``fully_shard`` (its default ``reshard_after_forward=True``): each block's parameters are
  gathered just before use and dropped after (ZeRO stage 3), gathered again in the backward pass.
- ``tp``: tensor parallelism with DTensor's ``parallelize_module``: Megatron's column split of the q/k/v and
  first feed-forward products, row split of the attention output and second feed-forward products; every GPU
  sees the whole batch; embeddings and LayerNorms are replicated.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, fields

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..core.benchmarks import benchmark, environment
from ..core.device import synchronize
from ..core.gpt import GPT, GPTConfig
from ..core.profiles import SHARDING, pick_profile, sizes
from ..core.training import autocast, make_optimizer
from .scaling import torchrun

STRATEGIES = ("single", "ddp", "zero1", "zero2", "zero3", "tp")
DISTRIBUTED = STRATEGIES[1:]
DESCRIBE = {
    "single": "one process (the reference)",
    "ddp": "DDP: whole model on every GPU, gradients all-reduced",
    "zero1": "DDP + ZeroRedundancyOptimizer: optimizer state sharded (ZeRO-1)",
    "zero2": "FSDP2, reshard_after_forward=False: sharded at rest, gathered weights kept until backward (ZeRO-2)",
    "zero3": "FSDP2, reshard_after_forward=True: weights gathered per block, dropped after use (ZeRO-3)",
    "tp": "tensor parallel: attention and MLP products split by columns and rows (Megatron)",
}

# Model shapes the lesson and the bench name (GPTConfig keywords besides the vocabulary).
SHAPES = {
    "tiny": dict(block_size=32, n_layer=2, n_head=4, d_model=32),
    "gpt2": dict(block_size=1024, n_layer=12, n_head=12, d_model=768),   # GPT-2 small, 124 M
    "gpt2-large": dict(block_size=1024, n_layer=36, n_head=20, d_model=1280),  # 774 M
    "gpt-3.8b": dict(block_size=1024, n_layer=32, n_head=24, d_model=3072),  # 3.78 B: past DDP on one 80 GB GPU
}
GPT2_VOCAB = 50304  # GPT-2's 50,257 tokens padded to a multiple of 64, as nanoGPT does


def _check(strategy: str, world: int, batch: int = 1) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1 sequence, got {batch}")
    if world < 1 or (strategy == "single" and world != 1):
        raise ValueError(f"world size must be >= 1 (1 for 'single'), got {world} for {strategy!r}")


# ------------------------------------------------------------------ counting parameters

def block_params(config: GPTConfig) -> int:
    """Parameters of one Transformer block: 12 d^2 in four matrices, plus LayerNorms and biases."""
    d = config.d_model
    # with biases: two LayerNorms (2d each) and the products' biases (3d + d + 4d + d); without: two LayerNorm gains
    biases = 13 * d if config.bias else 2 * d
    return 12 * d * d + biases


def embedding_params(config: GPTConfig) -> int:
    """What lies outside the blocks: token embedding (tied to the head), position embedding, final LayerNorm."""
    d = config.d_model
    return config.vocab_size * d + config.block_size * d + (2 * d if config.bias else d)


def param_count(config: GPTConfig) -> int:
    """All parameters of ``GPT(config)``, the tied head counted once (``GPT.num_params(non_embedding=False)``)."""
    return config.n_layer * block_params(config) + embedding_params(config)


def tensor_parallel_params(config: GPTConfig, world: int) -> int:
    """Parameters each GPU holds under tensor parallelism of degree ``world``: the four matrices of every block and
    the biases of the column-split products (q/k/v, first feed-forward) are divided; the rest is replicated."""
    d = config.d_model
    split = 12 * d * d + (7 * d if config.bias else 0)  # qkv 3d + fc1 4d biases are split with their columns
    replicated = block_params(config) - split
    if d % world or config.n_head % world:
        raise ValueError(f"tensor parallel degree {world} must divide n_head={config.n_head} and d_model={d}")
    return config.n_layer * (split // world + replicated) + embedding_params(config)


# ------------------------------------------------------------------ memory per GPU

@dataclass(frozen=True)
class Precision:
    """Bytes per number: fp32 weights, gradients and AdamW's two moments; activations in bf16 under autocast.

    ``norm`` is what a LayerNorm input costs: LayerNorm runs in fp32 under autocast and the residual stream is fp32.
    """

    param: int = 4
    grad: int = 4
    optimizer: int = 8
    activation: int = 2
    norm: int = 4


FP32 = Precision(activation=4)
BF16_AUTOCAST = Precision()


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one GPU holds at the peak of a training step, by kind."""

    strategy: str
    world: int
    params: float
    grads: float
    optimizer: float
    activations: float
    buffers: float  # communication buckets and gathered (unsharded) copies of sharded weights and gradients

    @property
    def states(self) -> float:
        """Parameters, gradients and optimizer state: what sharding divides."""
        return self.params + self.grads + self.optimizer

    @property
    def total(self) -> float:
        return self.states + self.activations + self.buffers

    def gib(self) -> dict[str, float]:
        """Every part and the total in GiB (2^30 bytes)."""
        parts = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("strategy", "world")}
        return {**{name: value / 2**30 for name, value in parts.items()}, "total": self.total / 2**30}


def activation_bytes(config: GPTConfig, batch: int, precision: Precision = BF16_AUTOCAST, tp: int = 1) -> float:
    """Bytes saved for the backward pass by one forward of ``batch`` sequences of ``block_size`` tokens.

    Per token and block, with fused attention (no T x T scores stored) and no dropout, following Korthikanti et al.
    (2022, "Reducing activation recomputation"): two LayerNorm inputs (``norm`` bytes each), the inputs of the q/k/v
    and first feed-forward products (1 + 1 numbers of width d), and, split across a tensor-parallel group of ``tp``,
    q, k, v (3), the attention output (1), the GELU input and output (4 + 4): 12 d numbers. After the blocks: the
    final LayerNorm input, the head's input, the logits (kept with the loss) and the fp32 log-probabilities the
    cross-entropy saves. Under autocast, ``weight_copy_bytes`` too. Left out: a few numbers per token (LayerNorm
    statistics, attention's log-sum-exp), under 2 % of the total for the course's shapes (``measured_activation_bytes``).
    """
    tokens, d = batch * config.block_size, config.d_model
    per_block = d * (2 * precision.norm + 2 * precision.activation + 12 * precision.activation / tp)
    head = d * (precision.norm + precision.activation) + config.vocab_size * (precision.activation + 4)
    return tokens * (config.n_layer * per_block + head) + weight_copy_bytes(config, precision, tp)


def weight_copy_bytes(config: GPTConfig, precision: Precision = BF16_AUTOCAST, tp: int = 1) -> float:
    """Autocast's 16-bit copies of the weight matrices, which the backward pass keeps (0 when nothing is cast).

    Every matrix product casts its fp32 weight once per forward pass and saves the copy: the blocks' four matrices
    (split across a tensor-parallel group) and the tied head. Under FSDP2 these copies are of the gathered weights,
    so they do not shrink with sharding (a ``MixedPrecisionPolicy`` that gathers 16-bit weights avoids them).
    """
    if precision.activation >= precision.param:
        return 0.0
    return (12 * config.d_model**2 * config.n_layer / tp + config.vocab_size * config.d_model) * precision.activation


def _storage(tensor: Tensor):
    """The storage behind ``tensor``; for a DTensor, that of this process's own shard."""
    return getattr(tensor, "_local_tensor", tensor).untyped_storage()


@contextlib.contextmanager
def recording_saved_bytes(model: nn.Module):
    """Inside the block, every tensor the autograd graph saves for the backward pass is recorded: the yielded dict
    maps each storage to its bytes (a storage counted once however many views of it are saved), the parameters
    themselves left out (under tensor parallelism: this process's shards)."""
    parameters = {_storage(p).data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = _storage(tensor)
        if storage.data_ptr() not in parameters:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield saved


def measured_activation_bytes(model: GPT, x: Tensor, y: Tensor, bf16: bool = False) -> int:
    """Bytes the autograd graph saves for the backward pass of one forward of ``model`` on ``(x, y)``, plus the
    returned logits (``recording_saved_bytes``). A check of ``activation_bytes`` that runs on a CPU."""
    # bf16 autocast on any device (the course's ``autocast`` turns it on for CUDA only), so a CPU can check it
    cast = torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with recording_saved_bytes(model) as saved, cast:
        logits, loss = model(x, y)
    saved.setdefault(_storage(logits).data_ptr(), _storage(logits).nbytes())
    del loss
    return sum(saved.values())


def memory_per_gpu(config: GPTConfig, batch: int, strategy: str, world: int = 1,
                   precision: Precision = BF16_AUTOCAST) -> MemoryEstimate:
    """Bytes per GPU for training ``GPT(config)`` with AdamW under ``strategy`` on ``world`` GPUs.

    ``batch`` is the number of sequences each GPU runs forward per step (data parallel: its own share; tensor
    parallel: the whole group's batch, which every GPU sees). FSDP2 wraps each block and, at the root, the
    embeddings, tied head and final LayerNorm: under ``zero3`` the root's weights and two blocks' (the one running
    and the one prefetched) are gathered at a time, plus one unit's unsharded gradients; under ``zero2`` every
    gathered weight stays from forward to backward. DDP's gradient buckets are a second copy of the gradients.
    """
    _check(strategy, world, batch)
    n, root, block = param_count(config), embedding_params(config), block_params(config)
    p = precision
    activations = activation_bytes(config, batch, p, tp=world if strategy == "tp" else 1)
    if strategy == "tp":
        local = tensor_parallel_params(config, world)
        return MemoryEstimate(strategy, world, local * p.param, local * p.grad, local * p.optimizer, activations, 0.0)
    if strategy in ("single", "ddp", "zero1"):
        optimizer = n * p.optimizer / (world if strategy == "zero1" else 1)
        buckets = 0.0 if strategy == "single" else n * p.grad
        return MemoryEstimate(strategy, world, n * p.param, n * p.grad, optimizer, activations, buckets)
    if strategy == "zero2":
        gathered = n * p.param + max(block, root) * p.grad
    else:  # zero3
        gathered = (root + 2 * block) * p.param + max(block, root) * p.grad
    gathered = gathered if world > 1 else 0.0  # one rank's shard is the whole tensor: nothing is gathered
    return MemoryEstimate(strategy, world, n * p.param / world, n * p.grad / world, n * p.optimizer / world,
                          activations, gathered)


# ------------------------------------------------------------------ communication per step

@dataclass(frozen=True)
class Collective:
    """One kind of collective in a step: how many bytes it covers and how many each GPU sends (ring algorithm)."""

    name: str
    what: str
    payload: float  # bytes of the tensor(s) the collective reduces or gathers, summed over the step
    sent_per_gpu: float


def _ring(name: str, what: str, payload: float, world: int) -> Collective:
    # A ring all-reduce is a reduce-scatter then an all-gather: each GPU sends (world-1)/world of the payload
    # in each half. A lone GPU sends nothing.
    share = (world - 1) / world
    return Collective(name, what, payload, payload * share * (2 if name == "all-reduce" else 1))


def communication_per_step(config: GPTConfig, batch: int, strategy: str, world: int,
                           precision: Precision = BF16_AUTOCAST) -> list[Collective]:
    """The collectives of one training step under ``strategy`` on ``world`` GPUs, with the bytes each GPU sends.

    Data parallel strategies move weights or gradients (fp32 here: FSDP2 without a mixed-precision policy gathers
    fp32 weights and reduces fp32 gradients); tensor parallelism moves activations: two all-reduces per block in
    the forward pass (after the attention output and the second feed-forward products) and two in the backward
    pass (the gradients entering the column-split products), each of ``batch x block_size x d_model`` numbers.
    """
    _check(strategy, world, batch)
    n, p = param_count(config), precision
    grads, weights = n * p.grad, n * p.param
    if strategy == "single":
        return []
    if strategy == "ddp":
        return [_ring("all-reduce", "gradients", grads, world)]
    if strategy == "zero1":
        return [_ring("all-reduce", "gradients", grads, world),
                _ring("all-gather", "updated weights (each rank updated its share)", weights, world)]
    if strategy == "zero2":
        return [_ring("all-gather", "weights, once before the forward pass", weights, world),
                _ring("reduce-scatter", "gradients", grads, world)]
    if strategy == "zero3":
        return [_ring("all-gather", "weights, block by block, forward and again backward", 2 * weights, world),
                _ring("reduce-scatter", "gradients", grads, world)]
    activation = batch * config.block_size * config.d_model * p.activation
    return [_ring("all-reduce", "activations: 2 per block forward, 2 backward", 4 * config.n_layer * activation, world)]


def sent_per_gpu(config: GPTConfig, batch: int, strategy: str, world: int, precision: Precision = BF16_AUTOCAST) -> float:
    """Total bytes each GPU sends in one step (the sum over ``communication_per_step``)."""
    return sum(c.sent_per_gpu for c in communication_per_step(config, batch, strategy, world, precision))


# ------------------------------------------------------------------ training under each strategy

def _world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def _mesh(device: torch.device):
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh(device.type, (_world()[1],))


def _interleave_qkv(linear: nn.Linear, parts: int) -> None:
    """Reorder the fused q/k/v product's output rows from [q; k; v] to [q_0; k_0; v_0; q_1; ...] so that a
    column split into ``parts`` gives each rank its own heads' q, k and v (the block's ``chunk(3)`` then works on
    the local output). The maths is unchanged: the rows only move, and AdamW treats every number alike."""
    d = linear.out_features // 3
    order = torch.arange(3 * d, device=linear.weight.device).view(3, parts, d // parts).transpose(0, 1).reshape(-1)
    with torch.no_grad():
        linear.weight.copy_(linear.weight[order])
        if linear.bias is not None:
            linear.bias.copy_(linear.bias[order])


def prepare(model: GPT, strategy: str, device: torch.device, lr: float, weight_decay: float = 0.1
            ) -> tuple[nn.Module, torch.optim.Optimizer]:
    """(what to call, its optimizer) for ``model`` under ``strategy`` in the current process group."""
    rank, world = _world()
    _check(strategy, world)
    model.to(device)
    if strategy == "single":
        return model, make_optimizer(model, lr, weight_decay, device)
    if strategy in ("ddp", "zero1"):
        runner = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if strategy == "ddp":
            return runner, make_optimizer(model, lr, weight_decay, device)
        from torch.distributed.optim import ZeroRedundancyOptimizer

        groups = make_optimizer(model, lr, weight_decay, device).param_groups  # the course's decay split
        first, *rest = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in groups]
        optimizer = ZeroRedundancyOptimizer(first["params"], optimizer_class=torch.optim.AdamW, lr=lr,
                                            betas=groups[0]["betas"], weight_decay=first["weight_decay"])
        for group in rest:
            optimizer.add_param_group(group)
        return runner, optimizer
    mesh = _mesh(device)
    if strategy in ("zero2", "zero3"):
        from torch.distributed.fsdp import fully_shard

        reshard = strategy == "zero3"
        for block in model.blocks:
            fully_shard(block, mesh=mesh, reshard_after_forward=reshard)
        fully_shard(model, mesh=mesh, reshard_after_forward=reshard)
        return model, _plain_optimizer(model, lr, weight_decay, device, foreach=True)
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    if model.config.n_head % world:
        raise ValueError(f"tensor parallel over {world} GPUs needs n_head divisible by {world}, got {model.config.n_head}")
    plan = {"attn.qkv": ColwiseParallel(), "attn.out": RowwiseParallel(), "ff.0": ColwiseParallel(), "ff.2": RowwiseParallel()}
    for block in model.blocks:
        _interleave_qkv(block.attn.qkv, world)
        parallelize_module(block, mesh, plan)
        block.attn.n_heads //= world  # each rank runs its own heads on its local slice
    # split (DTensor) and replicated (plain) weights cannot share one foreach or fused call: one tensor at a time
    return model, _plain_optimizer(model, lr, weight_decay, device, foreach=False)


def _plain_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device, foreach: bool):
    """``make_optimizer``'s AdamW (same groups and settings) without its fused CUDA kernel, which sharded (DTensor)
    weights are not promised to support; ``foreach=False`` updates one tensor at a time."""
    optimizer = make_optimizer(model, lr, weight_decay, device)
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = False, foreach
    return optimizer


def _local_bytes(tensors) -> int:
    total = 0
    for tensor in tensors:
        if tensor is None or not isinstance(tensor, Tensor):
            continue
        local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
        total += local.numel() * local.element_size()
    return total


def held_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes of parameters, gradients and optimizer state this process holds (its shards under FSDP2 / TP)."""
    inner = getattr(optimizer, "optim", optimizer)  # ZeroRedundancyOptimizer keeps this rank's optimizer inside
    state = [value for per_param in inner.state.values() for value in per_param.values()
             if isinstance(value, Tensor) and value.dim() > 0]  # AdamW's moments, not its step counters
    return {"params": _local_bytes(model.parameters()), "grads": _local_bytes(p.grad for p in model.parameters()),
            "optimizer": _local_bytes(state)}


def global_batch(data: Tensor, block_size: int, batch: int, step: int, seed: int) -> tuple[Tensor, Tensor]:
    """The step's ``batch`` windows of ``data`` and their targets: the same on every process for a given step."""
    generator = torch.Generator().manual_seed(seed * 100_003 + step)
    starts = torch.randint(len(data) - block_size, (batch,), generator=generator)
    windows = data[starts[:, None] + torch.arange(block_size + 1)]
    return windows[:, :-1], windows[:, 1:]



def train_steps(config: GPTConfig, data: Tensor, strategy: str, steps: int, batch: int, device: torch.device,
                lr: float = 1e-3, seed: int = 0, bf16: bool = False, warmup: int = 2, trace: bool = False) -> dict:
    """Train a fresh ``GPT(config)`` (seeded alike on every process) for ``steps`` steps under ``strategy``.

    Every step draws one global batch of ``batch`` sequences (``global_batch``): data-parallel strategies split it
    into equal shares, one per process; tensor parallelism gives all of it to every process. Returns the global mean
    loss of each step, the median step time after ``warmup`` steps, the bytes each process held after the last
    backward pass, and on CUDA the peak memory per GPU (``torch.cuda.max_memory_allocated``). With ``trace`` on
    CUDA, one more step runs under the profiler and ``overlap`` tells how much of its communication ran while
    computation did (``communication_overlap``).
    """
    rank, world = _world()
    data_parallel = strategy not in ("single", "tp")
    if data_parallel and batch % world:
        raise ValueError(f"the global batch {batch} must split evenly over {world} processes")
    torch.manual_seed(seed)  # seeds every device: each process draws the same initial weights
    with torch.device(device):  # built where it trains: a large model's initialisation stays off the CPU
        model = GPT(config)
    runner, optimizer = prepare(model, strategy, device, lr)
    if device.type == "cuda":  # the peak of training, not of the whole model existing before FSDP2 shards it
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    share = batch // world if data_parallel else batch

    measured: dict[str, int | None] = {"saved_bytes": None}

    def forward_backward(step: int) -> Tensor:
        x, y = global_batch(data, config.block_size, batch, step, seed)
        if data_parallel:
            x, y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        x, y = x.to(device), y.to(device)
        synchronize(device)
        # the first step records what autograd saves, where the saved weights are the parameters themselves
        # (FSDP2 saves gathered copies of its shards, which would count as activations)
        record = step == 0 and strategy in ("single", "ddp", "tp")
        with recording_saved_bytes(model) if record else contextlib.nullcontext() as saved, autocast(device, bf16):
            logits, loss = runner(x, y)
        if record:
            saved.setdefault(_storage(logits).data_ptr(), _storage(logits).nbytes())
            measured["saved_bytes"] = sum(saved.values())
        loss.backward()
        return loss

    losses, times, held = [], [], {}
    for step in range(steps):
        started = time.perf_counter()
        loss = forward_backward(step)
        if step == steps - 1:
            held = held_bytes(model, optimizer)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        times.append(time.perf_counter() - started)
        loss = loss.detach().float()
        if data_parallel:  # equal shares: the mean of the processes' means is the global batch's mean
            dist.all_reduce(loss)
            loss /= world
        losses.append(loss.item())
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    overlap = None
    if trace and device.type == "cuda":
        compute, communication = _traced_kernels(lambda: (forward_backward(steps), optimizer.step()), device)
        overlap = communication_overlap(compute, communication)
    timed = times[warmup:] or times
    return {"strategy": strategy, "world": world, "losses": losses, "step_ms": 1e3 * statistics.median(timed),
            "tokens_per_s": batch * config.block_size / statistics.median(timed), "held_bytes": held,
            "peak_bytes": peak, "overlap": overlap, "saved_bytes": measured["saved_bytes"]}


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(start, end) intervals merged where they touch or overlap, in order."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def communication_overlap(compute: list[tuple[float, float]], communication: list[tuple[float, float]]) -> dict:
    """How much of the time some communication kernel runs is also time some computation kernel runs.

    Intervals are (start, end) in microseconds from a device profile. Returns ``communication_ms`` (the union of the
    communication intervals), ``hidden_ms`` (its part under computation) and ``hidden_share`` (their ratio; None
    without communication): the share of the traffic that costs no extra step time.
    """
    if any(end < start for start, end in [*compute, *communication]):
        raise ValueError("every interval must end at or after its start")
    busy, sending = _union(compute), _union(communication)
    total = sum(end - start for start, end in sending)
    hidden = sum(max(0.0, min(end, b_end) - max(start, b_start)) for start, end in sending for b_start, b_end in busy)
    return {"communication_ms": total / 1e3, "hidden_ms": hidden / 1e3, "hidden_share": hidden / total if total else None}


def _traced_kernels(step, device: torch.device) -> tuple[list, list]:
    """(computation, communication) kernel intervals of one call of ``step`` on a CUDA device; NCCL's kernels
    (names containing "nccl") are the communication."""
    import tempfile

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        synchronize(device)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as handle:
            events = [e for e in json.load(handle)["traceEvents"] if e.get("cat") == "kernel"]
    compute = [(e["ts"], e["ts"] + e["dur"]) for e in events if "nccl" not in e["name"].lower()]
    communication = [(e["ts"], e["ts"] + e["dur"]) for e in events if "nccl" in e["name"].lower()]
    return compute, communication


def _gather(result: dict) -> dict:
    """Rank 0's result with every rank's held bytes and peak memory (``per_rank``)."""
    rank, world = _world()
    if world == 1:
        return {**result, "per_rank": [{"held_bytes": result["held_bytes"], "peak_bytes": result["peak_bytes"]}]}
    gathered: list = [None] * world
    dist.all_gather_object(gathered, {"held_bytes": result["held_bytes"], "peak_bytes": result["peak_bytes"]})
    return {**result, "per_rank": gathered}


# ------------------------------------------------------------------ torchrun entry point and launcher

def model_config(shape: str, vocab_size: int | None = None) -> GPTConfig:
    """``GPTConfig`` of a named shape (``SHAPES``); no biases, as the course's GPT benchmarks use."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {sorted(SHAPES)}, got {shape!r}")
    return GPTConfig(vocab_size=vocab_size or GPT2_VOCAB, bias=False, **SHAPES[shape])


def _join(backend: str | None = None) -> torch.device:
    if "WORLD_SIZE" not in os.environ:
        from ..core.device import pick_device

        return pick_device()
    if torch.cuda.is_available() and backend != "gloo":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
        return device
    dist.init_process_group("gloo")
    return torch.device("cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_course.parallel.sharding", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", default="ddp,zero1,zero2,zero3,tp",
                        help=f"comma-separated, from {', '.join(STRATEGIES)}")
    parser.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8, help="sequences per step, all processes together")
    parser.add_argument("--per-gpu", action="store_true",
                        help="--batch is per process: data-parallel strategies run world x batch, tensor parallel batch")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", choices=["shakespeare", "random"], default="shakespeare",
                        help="Shakespeare's characters, or random tokens of the shape's GPT-2 vocabulary")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (on CUDA)")
    parser.add_argument("--gloo", action="store_true", help="CPU processes with gloo even where GPUs are visible")
    parser.add_argument("--trace", action="store_true",
                        help="on CUDA, profile one extra step: how much communication overlaps computation")
    args = parser.parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for strategy in strategies:
        if strategy not in STRATEGIES:
            parser.error(f"unknown strategy {strategy!r}: choose from {', '.join(STRATEGIES)}")
    device = _join("gloo" if args.gloo else None)
    rank, world = _world()
    data, vocab = _training_data(args.data, args.shape)
    config = model_config(args.shape, vocab)
    for strategy in strategies:
        batch = args.batch * (world if args.per_gpu and strategy not in ("single", "tp") else 1)
        try:
            result = train_steps(config, data, strategy, args.steps, batch, device, args.lr, args.seed, args.bf16,
                                 trace=args.trace)
        except torch.OutOfMemoryError:
            result = {"strategy": strategy, "world": world, "out_of_memory": True, "held_bytes": {}, "peak_bytes": None}
        gc.collect()  # after the except block: the traceback no longer holds the failed model
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the next strategy starts from a fresh model
        result = _gather(result)
        if rank == 0:
            print(json.dumps({**result, "shape": args.shape, "batch": batch, "params": param_count(config), "vocab_size": config.vocab_size,
                              "device": device.type, "device_name": _device_name(device)}), flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def _device_name(device: torch.device) -> str:
    from ..core.device import device_name

    return device_name(device)


def _training_data(kind: str, shape: str) -> tuple[Tensor, int]:
    """(token ids, vocabulary size): Shakespeare's characters, or a seeded stream of GPT-2-sized token ids."""
    if kind == "shakespeare":
        from ..core.data import shakespeare_char_splits

        tokenizer, train_ids, _ = shakespeare_char_splits()
        return train_ids, (tokenizer.vocab_size if shape == "tiny" else GPT2_VOCAB)
    return torch.randint(GPT2_VOCAB, (1_000_000,), generator=torch.Generator().manual_seed(0)), GPT2_VOCAB


def run_torchrun(processes: int, strategies: list[str], shape: str = "tiny", steps: int = 20, batch: int = 8,
                 extra: list[str] = (), gloo: bool = False, timeout: float = 1800) -> list[dict]:
    """Run ``python -m attention_course.parallel.sharding`` under torchrun with ``processes`` processes; one dict per
    strategy (rank 0's). With ``gloo`` the processes run on the CPU."""
    args = ["--strategies", ",".join(strategies), "--shape", shape, "--steps", str(steps), "--batch", str(batch),
            *(["--gloo"] if gloo else []), *extra]
    printed = torchrun("attention_course.parallel.sharding", processes, args, cpu=gloo, timeout=timeout)
    return [json.loads(line) for line in printed.splitlines() if line.startswith("{")]


def _interconnect() -> str | None:
    """``nvidia-smi topo -m``: how the GPUs are linked (NVLink, PCIe), or None where there is no such tool."""
    try:
        done = subprocess.run(["nvidia-smi", "topo", "-m"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def with_calculation(run: dict, precision: Precision) -> dict:
    """A torchrun result with the calculator's bytes per GPU and bytes sent per GPU for the same model and batch."""
    config = model_config(run["shape"], run["vocab_size"])
    per_gpu = run["batch"] // run["world"] if run["strategy"] not in ("single", "tp") else run["batch"]
    estimate = memory_per_gpu(config, per_gpu, run["strategy"], run["world"], precision)
    return {**run, "calculated_gib": estimate.gib(),
            "sent_per_gpu_mb": sent_per_gpu(config, per_gpu, run["strategy"], run["world"], precision) / 1e6}


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.2f} MiB"


def _hidden(overlap: dict | None) -> str:
    if not overlap or overlap["hidden_share"] is None:
        return ""
    return f", {100 * overlap['hidden_share']:.0f}% of {overlap['communication_ms']:.1f} ms of NCCL under computation"


def format_sharding(result: dict) -> str:
    """``bench_sharding``'s result as text: one line per shape, process count and strategy."""
    lines = [f"{result['device_name']} | torch {result['torch']} | profile {result['profile']} | backend {result['backend']}"]
    for run in result["runs"]:
        head = f"{run['shape']:>9} {run['world']} x {run['strategy']:<6}"
        if run.get("out_of_memory"):
            lines.append(f"{head} out of memory (calculated {run['calculated_gib']['total']:.1f} GiB per GPU)")
            continue
        peak = max((rank["peak_bytes"] or 0) for rank in run["per_rank"])
        measured = f"peak {_size(peak)}" if peak else "peak not measured (CPU)"
        lines.append(f"{head} {run['tokens_per_s']:>10,.0f} tokens/s {run['step_ms']:8.1f} ms/step  {measured}, "
                     f"calculated {_size(run['calculated_gib']['total'] * 2**30)}; sends {run['sent_per_gpu_mb']:.2f} MB/step"
                     + _hidden(run.get("overlap")))
    return "\n".join(lines)


@benchmark("sharding", "lesson 04b: DDP, ZeRO-1, FSDP2 (ZeRO-2/3) and tensor parallel: throughput and peak memory per "
           "GPU on 1/2/4 GPUs (NCCL), or a tiny model on 1 and 2 CPU processes (gloo)", format_sharding)
def bench_sharding(profile: str | None = None) -> dict:
    """Each strategy through torchrun on 1, 2 and 4 of the visible GPUs (NCCL, bf16 autocast, each GPU running the
    profile's sequences per step), for the GPT-2-small shape and a 3.8 B one that DDP cannot fit on one 80 GB GPU;
    without GPUs, the tiny shape on 1 and 2 gloo processes. One process runs the single-process reference; each
    result carries the calculator's bytes per GPU beside the measured peak (``torch.cuda.max_memory_allocated``) and,
    on GPUs, the share of one profiled step's NCCL time that ran under computation (``communication_overlap``)."""
    from ..core.device import pick_device

    device = pick_device()
    profile = profile or pick_profile(device)
    size = sizes(SHARDING, profile)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    counts = [n for n in size.processes if n <= gpus] if gpus else [n for n in size.processes if n <= 2]
    precision = BF16_AUTOCAST if gpus else FP32
    runs = []
    for shape in size.shapes:
        for count in counts:
            strategies = ["single"] if count == 1 else list(DISTRIBUTED)
            extra = ["--per-gpu", "--data", "random" if shape != "tiny" else "shakespeare",
                     *(["--bf16", "--trace"] if gpus else [])]
            for run in run_torchrun(count, strategies, shape, size.steps, size.batch[shape], extra, gloo=not gpus):
                runs.append(with_calculation(run, precision))
    return {**environment(device, profile), "backend": "nccl" if gpus else "gloo", "steps": size.steps,
            "batch_per_gpu": size.batch, "precision": "bf16 autocast" if gpus else "fp32",
            "interconnect": _interconnect() if gpus else None, "runs": runs}


def max_loss_difference(reference: list[float], other: list[float]) -> float:
    """The largest absolute difference between two loss curves of the same length."""
    if len(reference) != len(other) or not reference:
        raise ValueError(f"need two loss curves of the same non-zero length, got {len(reference)} and {len(other)}")
    return max(abs(a - b) for a, b in zip(reference, other, strict=True))


if __name__ == "__main__":
    sys.exit(main())
