"""Generation as a server runs it: a static KV cache, prefill and a compiled decode step, sampled on the device.

Lesson 08 teaches generation with ``GPT.generate`` (the naive loop, and a growing ``KVCache``): clear, but every
token brings tensors of a new shape, so nothing can be captured once and replayed. Serving stacks (PyTorch's
gpt-fast, Hugging Face transformers' static cache) do three things instead, and ``StaticGenerator`` does them:
- a **static cache** (``attention.StaticKVCache``): keys and values preallocated for ``max_batch x max_len`` and
  written in place, attention over the filled prefix through a mask, so no shape changes between tokens;
- **prefill** (the prompt in one forward pass) apart from **decode** (one token through the model), the decode
  step compiled with ``torch.compile(mode="reduce-overhead")``, which captures it in a CUDA graph: one launch
  replays every kernel of the step;
- **sampling on the device** (greedy, temperature, top-k) with no copy to the host per token.

``bench_generation`` (what lesson 08 runs) measures all of it against the naive loop, the growing cache and
transformers' ``GPT2LMHeadModel`` with its static cache. ``attention-course bench generation --json`` runs the same
grid through the maintainers' driver, ``attention_course.tools.bench_generation``, which on a GPU measures each
(model, batch) cell of the full grid in a process of its own and can resume a run cut short.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

from ..core.attention import StaticKVCache
from ..core.device import device_name, pick_device, synchronize
from ..core.gpt import GPT, GPTConfig
from ..core.profiles import pick_profile


def sample_on_device(logits: Tensor, temperature: float = 0.0, top_k: int | None = None) -> Tensor:
    """One token id per row of ``logits`` (B, vocab) as a (B, 1) tensor, without waiting for the device.

    temperature 0 is greedy (argmax). Otherwise the scaled (and top-k filtered) softmax is sampled by the
    exponential race: ``argmax(p / E)`` with E ~ Exp(1) picks token i with probability p_i, in a few kernels
    and no host synchronisation (``torch.multinomial`` with a CPU generator copies the probabilities to the host).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        kth_best = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    probabilities = torch.softmax(logits, dim=-1)
    race = torch.empty_like(probabilities).exponential_(1)
    return (probabilities / race).argmax(-1, keepdim=True)


def kv_cache_bytes(config: GPTConfig, batch: int, length: int, bytes_per_number: int) -> int:
    """Bytes of a KV cache: keys and values (2) x layers x batch x positions x width x bytes per number."""
    return 2 * config.n_layer * batch * length * config.d_model * bytes_per_number


class OneRowLinear(TorchFunctionMode):
    """Inside this mode, a linear layer applied to a single row (a decode step at batch 1) is written as
    multiply-and-sum, ``(x * W).sum(-1)`` accumulated in float32, instead of a matrix product.

    The maths is the same; what changes is what the compiler can do with it. A one-row product is a dot product per
    output: it reads each weight once and is bound by memory. As a library matrix product it is one opaque kernel
    (tiled for many rows, with a separate reduction when it splits the sum); as a multiply-and-sum it is a reduction
    that Inductor generates itself and fuses with what follows (the bias, GELU, the residual add). Inputs with more
    than one row keep the matrix product, where the library kernels win.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if x.numel() == x.shape[-1]:
                y = (x.unsqueeze(-2) * weight).sum(-1, dtype=torch.float32).to(x.dtype)
                return y if bias is None else y + bias
        return func(*args, **kwargs)


@contextlib.contextmanager
def _own_cublas_workspace():
    """Inside the block, cuBLAS allocates a new workspace; dropped again on leaving it (what ``torch.compile``'s own
    CUDA graphs do, ``cudagraph_trees.clear_cublas_manager``).

    PyTorch keeps one cuBLAS workspace per (handle, stream) and a captured matrix product records its raw address. Every
    ``torch.cuda.graph`` without a ``stream`` captures on one process-wide stream, so without this a capture can record
    a workspace that lives in *another* generator's memory pool or in ordinary memory, and that workspace is freed
    behind the graph's back: when any graph captured on that stream is destroyed (``CUDAGraph::reset`` clears the
    stream's workspaces) or when ``torch.compile(mode="reduce-overhead")`` records its graphs (transformers' static
    cache; it clears every workspace). Cleared before the capture, the workspace is allocated inside the capture, in
    this generator's own pool, which lives as long as the graphs that use it.
    """
    clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)  # absent from CPU-only builds
    if clear is not None:
        clear()
    try:
        yield
    finally:
        if clear is not None:
            clear()


def _own_code(method):
    """``method`` (a bound method) rebuilt on a copy of its function's code object, without its decorators (the
    callers run it under ``torch.no_grad``). Dynamo keeps the programs it compiles per code object, at most
    ``torch._dynamo.config.recompile_limit`` (8) of them, and fails past that when compiling with fullgraph=True.
    Every ``@torch.no_grad()`` method shares one code object, the decorator's wrapper: generators compiling through
    it failed on the CPU at the ninth model or batch size in one process. A copy per compiled step keeps each to one."""
    function = inspect.unwrap(method.__func__)
    code = function.__code__.replace()  # an equal but distinct code object
    copy = types.FunctionType(code, function.__globals__, function.__name__, function.__defaults__, function.__closure__)
    return types.MethodType(copy, method.__self__)


@dataclass
class _DecodeState:
    """One batch size's fixed buffers for the decode loop, its decode step (compiled for this batch size when the
    generator compiles) and its captured CUDA graphs by number of steps."""

    token: Tensor
    position: Tensor
    out: Tensor
    step: object
    graphs: dict = field(default_factory=dict)


@dataclass
class _PrefillGraph:
    """One prompt shape's captured prompt pass: its fixed input buffer, its output (the first new token), the graph."""

    tokens: Tensor
    first: Tensor
    graph: torch.cuda.CUDAGraph


class StaticGenerator:
    """Greedy or sampled generation for one ``GPT`` with a static KV cache and a compiled decode step.

    ``max_batch`` and ``max_len`` (prompt plus new tokens; default the model's context) fix the cache's shape.
    ``compile=True`` compiles the decode step with ``torch.compile(fullgraph=True)`` (one compilation per batch
    size, on first use or ``warm_up``) and, on a GPU, captures ``steps_per_graph`` consecutive decode steps in one
    CUDA graph: the token, its position and the output row live in fixed buffers that the graph updates itself, so
    the host launches one graph per ``steps_per_graph`` tokens (and a one-step graph for the remainder) and never
    waits. The prompt's forward pass (prefill) is compiled once for every length and computes the head for the last
    position only; with ``prefill_graphs=True`` (compiled, on a GPU) it is also captured in a CUDA graph per prompt
    shape on that shape's first call (a warm-up pass and a capture, once per shape; each captured shape keeps its
    buffers), so that a warm prompt pass is one launch instead of hundreds: the default when compiled on a GPU
    (prompt 512 at batch 1 on one H100: 1.27 ms to the first token against 3.49 uncaptured). ``decode_linear`` says how a
    decode step with one row computes its linear layers: "sum" (``OneRowLinear``; the default when compiled) or
    "matmul" (the default eager). ``decode_attention`` picks how the one new query attends over the cache
    (``StaticKVCache``): "matmul" (default) or "fused". The model keeps its dtype (cast it to bfloat16 for serving:
    a cast, not a quantisation).
    """

    DECODE_LINEAR = ("sum", "matmul")
    # How Inductor tunes the reductions it writes for a decode step (every one-row linear layer is one): timing a
    # wider set of launch settings (max_autotune_pointwise), then refining them one at a time
    # (coordinate_descent_tuning, as gpt-fast does). Measured on one H100 (results/generation_decode_sweep_H100.json):
    # 0.416 ms of kernels a step against 0.485 without the wider set, for about 15 s more compiling.
    DECODE_COMPILE_OPTIONS = {"coordinate_descent_tuning": True, "max_autotune_pointwise": True}

    def __init__(self, model: GPT, max_batch: int, max_len: int | None = None, temperature: float = 0.0,
                 top_k: int | None = None, compile: bool = False, decode_attention: str = "matmul",
                 steps_per_graph: int = 16, decode_linear: str | None = None, prefill_graphs: bool | None = None):
        if not isinstance(model, GPT):
            raise TypeError(f"StaticGenerator serves the course's GPT, got {type(model).__name__}")
        max_len = max_len or model.config.block_size
        if not 0 < max_len <= model.config.block_size:
            raise ValueError(f"max_len must lie in 1..{model.config.block_size} (the model's context), got {max_len}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be positive, got {max_batch}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if steps_per_graph < 1:
            raise ValueError(f"steps_per_graph must be positive, got {steps_per_graph}")
        decode_linear = decode_linear or ("sum" if compile else "matmul")
        if decode_linear not in self.DECODE_LINEAR:
            raise ValueError(f"decode_linear must be one of {self.DECODE_LINEAR}, got {decode_linear!r}")
        self.model = model.eval()
        weight = model.token_embedding.weight
        self.dtype, self.device = weight.dtype, weight.device
        config = model.config
        self.caches = [StaticKVCache(max_batch, max_len, config.n_head, config.d_model // config.n_head, self.dtype,
                                     self.device, decode_attention) for _ in model.blocks]
        self._shape = (max_batch, max_len)
        self.decode_linear = decode_linear
        self.temperature, self.top_k = temperature, top_k
        self.compiled = compile
        self.steps_per_graph = steps_per_graph
        on_gpu_compiled = compile and self.device.type == "cuda"
        if prefill_graphs and not on_gpu_compiled:
            raise ValueError("prefill_graphs needs compile=True and a model on a CUDA device")
        self.prefill_graphs = on_gpu_compiled if prefill_graphs is None else prefill_graphs
        self._pool = torch.cuda.graph_pool_handle() if on_gpu_compiled else None  # one memory pool for every graph
        self._prefills: dict[tuple[int, int], _PrefillGraph] = {}
        # Inductor fuses the step's kernels; the CUDA graphs are captured here (``_capture``), not by the compiler.
        # dynamic=False: one program per batch size with every shape fixed. Without it, the second batch size that
        # any generator in the process compiles is taken for a varying dimension ("automatic dynamic" shapes) and
        # compiled shape-generic: on one H100, batch 8 after batch 1 in one process made 5,391 tokens/s
        # (results/generation_gpu_lesson_H100_before_static_shapes.json), batch 8 in a process that compiled no
        # other batch size 9,900 (results/generation_batch8_sweep_H100.json). Each batch size gets its own
        # compiled program, on its own copy of the step's code (``_own_code``, made in ``_state``)
        # the prompt's length varies from call to call: one compiled program for every length (no recompiling)
        self._prefill = torch.compile(_own_code(self.prefill), dynamic=True) if compile else self.prefill
        self._states: dict[int, _DecodeState] = {}
        self.closed = False

    @property
    def max_batch(self) -> int:
        return self._shape[0]

    @property
    def max_len(self) -> int:
        return self._shape[1]

    def cache_bytes(self) -> int:
        """Bytes the static caches hold (all layers, keys and values, ``max_batch x max_len``)."""
        return sum(cache.nbytes() for cache in self.caches)

    @torch.no_grad()
    def prefill(self, tokens: Tensor) -> Tensor:
        """Run the prompt (B, T) through the model in one pass, writing positions 0..T-1 of the caches; return
        the first new token (B, 1). Positions past T keep stale values, hidden by the mask until overwritten."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        logits, _ = self.model(tokens, caches=self.caches, positions=positions, last_only=True)
        return sample_on_device(logits[:, -1], self.temperature, self.top_k)

    @torch.no_grad()
    def decode_step(self, token: Tensor, position: Tensor) -> Tensor:
        """One new token (B, 1) at ``position`` (a 1-element tensor) through the model; return the next (B, 1)."""
        with OneRowLinear() if self.decode_linear == "sum" else contextlib.nullcontext():
            logits, _ = self.model(token, caches=self.caches, positions=position)
        return sample_on_device(logits[:, -1], self.temperature, self.top_k)

    def _check(self, tokens: Tensor, max_new_tokens: int) -> None:
        if self.closed:
            raise RuntimeError("this StaticGenerator was closed (close() freed its graphs and caches): build a new one")
        if not isinstance(tokens, Tensor) or tokens.dim() != 2:
            raise ValueError(f"tokens must be a (batch, length) tensor of token ids, got "
                             f"{getattr(tokens, 'shape', type(tokens).__name__)}")
        if tokens.dtype != torch.long:
            raise TypeError(f"tokens must be int64 token ids, got dtype {tokens.dtype}")
        if tokens.device != self.device:
            raise ValueError(f"tokens are on {tokens.device}, the model and its cache on {self.device}: move them")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
        if tokens.shape[0] > self.max_batch:
            raise ValueError(f"batch {tokens.shape[0]} exceeds max_batch {self.max_batch}: build a larger generator")
        if tokens.shape[1] + max_new_tokens > self.max_len:
            raise ValueError(f"prompt ({tokens.shape[1]}) + new tokens ({max_new_tokens}) exceed max_len "
                             f"{self.max_len}")

    def _advance(self, state: _DecodeState, steps: int) -> None:
        """``steps`` decode steps on ``state``'s buffers: each moves the position on, writes its new token into the
        output there and feeds it to the next step (all on the device, so that it can be captured)."""
        for _ in range(steps):
            token = state.step(state.token, state.position)  # the token after the one at ``position``
            state.position.add_(1)
            state.out.index_copy_(1, state.position, token)
            state.token.copy_(token)

    def _state(self, batch: int) -> _DecodeState:
        """The buffers (and, compiled on a GPU, the captured graphs) for ``batch`` rows, made on first use."""
        if batch not in self._states:
            state = _DecodeState(token=torch.zeros(batch, 1, dtype=torch.long, device=self.device),
                                 position=torch.zeros(1, dtype=torch.long, device=self.device),
                                 out=torch.zeros(batch, self.max_len, dtype=torch.long, device=self.device),
                                 step=self._compiled_step() if self.compiled else self.decode_step)
            if self.compiled and self.device.type == "cuda":
                self._capture(state)
            self._states[batch] = state
        return self._states[batch]

    def _compiled_step(self):
        return torch.compile(_own_code(self.decode_step), fullgraph=True, dynamic=False,
                             options=self.DECODE_COMPILE_OPTIONS)

    def _on_side_stream(self, work) -> None:
        """Run ``work()`` once on a side stream, ordered after and before the current one: a CUDA graph captures only
        work already done once (kernel selection, allocations), and that first run must not be on the capture stream."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            work()
        torch.cuda.current_stream(self.device).wait_stream(side)

    @torch.no_grad()
    def _capture(self, state: _DecodeState) -> None:
        # Compile and run the step a few times first, then record a chunk of steps and a single step. The warm-up
        # writes the caches at positions 0..2, which every later prompt overwrites before reading (prefill or decode).
        def warm() -> None:
            state.position.fill_(0)
            self._advance(state, min(3, self.max_len - 1))

        self._on_side_stream(warm)
        for steps in sorted({self.steps_per_graph, 1}, reverse=True):
            state.position.fill_(0)  # recorded, not run: no position moves during a capture
            graph = torch.cuda.CUDAGraph()
            with _own_cublas_workspace(), torch.cuda.graph(graph, pool=self._pool):
                self._advance(state, steps)
            state.graphs[steps] = graph

    @torch.no_grad()
    def _capture_prefill(self, tokens: Tensor) -> _PrefillGraph:
        # As for the decode steps: run the shape once, then record (a failure raises: a broken capture leaves nothing
        # safe to fall back on). Every graph shares one memory pool, safe because each graph's one-token output is
        # copied out (``_prefill_first``) before any other graph replays.
        buffer = tokens.clone()
        with torch.cuda.device(self.device):
            self._on_side_stream(lambda: self._prefill(buffer))
            graph = torch.cuda.CUDAGraph()
            with _own_cublas_workspace(), torch.cuda.graph(graph, pool=self._pool):
                first = self._prefill(buffer)
        return _PrefillGraph(tokens=buffer, first=first, graph=graph)

    def _prefill_first(self, tokens: Tensor) -> Tensor:
        """The prompt's pass (captured per shape when ``prefill_graphs``); the first new token (B, 1), a copy that
        no later replay overwrites."""
        if not self.prefill_graphs:
            return self._prefill(tokens)
        captured = self._prefills.get(tuple(tokens.shape))
        if captured is None:
            captured = self._prefills[tuple(tokens.shape)] = self._capture_prefill(tokens)
        else:
            captured.tokens.copy_(tokens)
        captured.graph.replay()  # a capture records without running: the first call replays too
        return captured.first.clone()

    def _run(self, state: _DecodeState, steps: int) -> None:
        graph = state.graphs.get(steps)
        if graph is None:
            self._advance(state, steps)
        else:
            graph.replay()

    @torch.no_grad()
    def generate(self, tokens: Tensor, max_new_tokens: int) -> Tensor:
        """Continue ``tokens`` (B, T) by ``max_new_tokens``: prefill, then one decode step per token, in chunks of
        ``steps_per_graph``. Returns (B, T + max_new_tokens); the host never waits for the device inside the loop."""
        self._check(tokens, max_new_tokens)
        batch, length = tokens.shape
        state = self._state(batch)
        state.out[:, :length] = tokens
        # cuDNN's attention builds a plan for every new shape: the suspected cause of a stalled first call (lesson 08's
        # H200 run: batch 8's first 512-token prompt took 14.0 s). With it off and the pass captured, batch 8's first
        # call on an H100 took 0.273 s against 0.252 s for the next (results/generation_decode_sweep_H100.json; both
        # changed at once, so which one removed the stall is not known)
        with _no_cudnn_attention():
            first = self._prefill_first(tokens)
        state.out[:, length] = first[:, 0]
        state.token.copy_(first)
        state.position.fill_(length)
        left = max_new_tokens - 1
        while left >= self.steps_per_graph:
            self._run(state, self.steps_per_graph)
            left -= self.steps_per_graph
        for _ in range(left):
            self._run(state, 1)
        return state.out[:, :length + max_new_tokens].clone()

    def close(self) -> None:
        """Free the captured graphs, their memory pool and the buffers now; the generator cannot generate after it.

        ``del generator`` alone frees nothing: each compiled step holds a bound method of the generator, a
        reference cycle that only Python's cycle collector breaks, at a moment nobody chooses (in the middle of another
        generator's life, in any thread). Freeing a CUDA graph has side effects beyond its own memory (PyTorch drops the
        cuBLAS workspaces of its capture stream, which every graph captured on that stream shares): ``close`` makes
        that happen here, between two generators, rather than at random."""
        if self.device.type == "cuda":
            synchronize(self.device)  # nothing of ours still running when its graphs and memory go
        self._states.clear()
        self._prefills.clear()
        self._prefill = None  # breaks the cycle: nothing keeps this generator alive
        self.caches = []
        self._pool = None
        self.closed = True

    def warm_up(self, batch: int) -> float:
        """Compile (and capture) the decode steps for ``batch`` rows and run each graph once on a short dummy
        prompt; return the seconds."""
        started = time.perf_counter()
        length = min(4, self.max_len - 1) or 1
        prompt = torch.zeros(batch, length, dtype=torch.long, device=self.device)
        self.generate(prompt, max(1, min(self.steps_per_graph + 2, self.max_len - length)))
        synchronize(self.device)
        return time.perf_counter() - started


# ---------------------------------------------------------------- measuring


def _timed(fn, device) -> tuple[float, object]:
    synchronize(device)
    started = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - started, result


def _peak_reset(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if torch.device(device).type == "cuda" else None


def measure(name: str, generate, prompt: Tensor, new_tokens: int, repeats: int, device,
            first_call: bool = True) -> tuple[dict, Tensor]:
    """Times of ``generate(prompt, n)``: the first call (``first_call``), the median of ``repeats`` warm calls,
    and time to first token (a call for one token, warm); tokens/s over all new tokens and after the first."""
    batch = prompt.shape[0]
    first = None
    if first_call:
        first, _ = _timed(lambda: generate(prompt, new_tokens), device)
    ttft = float(np.median([_timed(lambda: generate(prompt, 1), device)[0] for _ in range(max(1, repeats))]))
    _peak_reset(device)
    warm, tokens = [], None
    for _ in range(repeats):
        seconds, tokens = _timed(lambda: generate(prompt, new_tokens), device)
        warm.append(seconds)
    warm_s = float(np.median(warm))
    row = {"method": name, "batch": batch, "prompt": prompt.shape[1], "new_tokens": new_tokens,
           "first_s": first, "warm_s": warm_s, "ttft_s": ttft,
           "tokens_per_s_first": batch * new_tokens / first if first else None,
           "tokens_per_s": batch * new_tokens / warm_s,
           "decode_tokens_per_s": batch * (new_tokens - 1) / max(warm_s - ttft, 1e-9),
           "peak_mib": _peak_mib(device)}
    return row, tokens


def prompt_forward_tokens_per_s(model: GPT, prompt: Tensor, repeats: int, device) -> float:
    """Tokens per second of one forward pass over the whole prompt (what prefill and training do: all positions
    at once), the rate a generation loop's tokens/s should be read against."""
    with torch.no_grad():
        model(prompt)
        seconds = float(np.median([_timed(lambda: model(prompt), device)[0] for _ in range(repeats)]))
    return prompt.numel() / seconds


def decode_kernel_profile(generator: StaticGenerator, batch: int, steps: int = 32) -> dict | None:
    """GPU kernel time per decode step (profiled over ``steps`` replays): milliseconds, kernels per step and the
    costliest kernels; None without CUDA or when the profiler records no kernel. The floor compares the measured
    time a token with it."""
    if generator.device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    prompt = torch.zeros(batch, 4, dtype=torch.long, device=generator.device)
    generator.generate(prompt, steps + 1)
    synchronize(generator.device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        generator.generate(prompt, steps + 1)
        synchronize(generator.device)
    kernels = [event for event in prof.events() if event.device_type.name == "CUDA"]
    kernel_us = sum(event.device_time for event in kernels)
    if not kernel_us:
        return None
    by_name: dict[str, float] = {}
    for event in kernels:
        by_name[event.name] = by_name.get(event.name, 0.0) + event.device_time
    top = sorted(by_name.items(), key=lambda item: -item[1])[:12]
    # steps + 1 tokens: one prefill (a 4-token forward) and ``steps`` decode steps; count the prefill as a step
    return {"ms_per_step": kernel_us / 1000 / (steps + 1), "kernels_per_step": len(kernels) / (steps + 1),
            "top_kernels_ms_per_step": {name[:90]: us / 1000 / (steps + 1) for name, us in top}}


def hf_model(config: GPTConfig, device, dtype):
    """transformers' ``GPT2LMHeadModel`` of the same shape, randomly initialised (offline; only time matters)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    hf_config = GPT2Config(vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.d_model,
                           n_layer=config.n_layer, n_head=config.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                           attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)  # no end token: every run is full length
    torch.manual_seed(0)
    return GPT2LMHeadModel(hf_config).to(device=device, dtype=dtype).eval()


def hf_generate(model, prompt: Tensor, new_tokens: int) -> Tensor:
    """Greedy generation with transformers' static cache (compiled automatically on CUDA by recent versions)."""
    return model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens,
                          do_sample=False, cache_implementation="static", pad_token_id=0)


def same_tokens_fp32(config: GPTConfig, device, batch: int = 2, prompt: int = 32, new_tokens: int = 32,
                     compile: bool = False, label: str = "") -> dict:
    """Greedy float32 tokens of the naive loop against the static generator's (same random model)."""
    torch.manual_seed(0)
    model = GPT(config).to(device).float().eval()
    tokens = torch.randint(0, config.vocab_size, (batch, prompt), device=device)
    naive = model.generate(tokens, new_tokens, temperature=0)
    generator = StaticGenerator(model, batch, prompt + new_tokens, compile=compile)
    static = generator.generate(tokens, new_tokens)
    generator.close()
    agree = (naive[:, prompt:] == static[:, prompt:]).float().mean().item()
    return {"model": label, "params": sum(p.numel() for p in model.parameters()), "batch": batch, "prompt": prompt,
            "new_tokens": new_tokens, "compiled": compile, "decode_linear": generator.decode_linear,
            "same_tokens": bool(torch.equal(naive, static)), "fraction_equal": agree}


# ---------------------------------------------------------------- the benchmark

GPT2_SMALL = dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, d_model=768)
# lesson 05's character GPT (the gpu profile's shape) and its cpu-profile shape; vocab of tiny Shakespeare
LESSON05 = dict(vocab_size=65, block_size=256, n_layer=6, n_head=6, d_model=384)
LESSON05_CPU = dict(vocab_size=65, block_size=256, n_layer=4, n_head=4, d_model=128)

# batch-1 variants of the compiled static generator, measured beside the default (name -> StaticGenerator keywords):
# the fused attention kernel for the one new query, and the linear layers as library matrix products
DECODE_VARIANTS = {"fused decode attention": dict(decode_attention="fused"),
                   "matmul linear layers": dict(decode_linear="matmul")}


# models: name -> (GPTConfig keywords, prompts, new tokens); batches; repeats of warm calls; hf: batches for the
# transformers anchor (its first prompt only); compile: the decode step (CUDA only: the CPU runs it eager)
GENERATION = {
    "smoke": dict(models={"tiny": (dict(vocab_size=65, block_size=64, n_layer=2, n_head=2, d_model=64), [8], 8)},
                  batches=[1, 2], repeats=1, hf=[1], compile=False, variants=list(DECODE_VARIANTS)),
    # cpu: 32 new tokens, one warm call each: the whole benchmark used about 130 s of CPU time at 64 new tokens and
    # two warm calls (measured on a loaded 2-core machine, so only the CPU time, not the wall time, is telling)
    "cpu": dict(models={"lesson 05 (cpu shape)": (LESSON05_CPU, [128], 32)}, batches=[1, 8], repeats=1, hf=[1],
                compile=False),
    "gpu": dict(models={"GPT-2 small": (GPT2_SMALL, [512, 128], 256), "lesson 05": (LESSON05, [128], 128)},
                batches={"GPT-2 small": [1, 8, 32], "lesson 05": [1, 32]}, repeats=2, hf=[1, 8], compile=True,
                # the fused-attention variant is left out on the GPU: the first full-grid run on an H200 (torch
                # 2.11, 2026-12-06) died of a segmentation fault 199 s in, within GPT-2 small's batch-1 rows (which
                # row was not logged); that variant is the one batch-1 piece the lesson grid, which ran clean, lacks
                # besides the 128-token prompt. The smoke profile still runs it
                variants=["matmul linear layers"]),
}
# lesson 08's cut of the gpu grid: the rows the floors judge (GPT-2 small, prompt 512, batch 1 and 8, transformers at
# both), so that the whole lesson fits one ten-minute run; ``attention-course bench generation`` runs the full grid
LESSON_GRID = {"gpu": dict(GENERATION["gpu"], models={"GPT-2 small": (GPT2_SMALL, [512], 256)},
                           batches=[1, 8], variants=["matmul linear layers"])}


def _model_rows(label: str, config: GPTConfig, prompts: list[int], new_tokens: int, batches: list[int], repeats: int,
                hf_batches: list[int], compile: bool, device, dtype, progress: bool = False,
                variants: list[str] = (), after_batch=None) -> tuple[list[dict], dict]:
    torch.manual_seed(0)
    model = GPT(config).to(device=device, dtype=dtype).eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    info = {"config": asdict(config), "params": sum(p.numel() for p in model.parameters()),
            "weight_bytes": weight_bytes, "compile_s": {}, "prompt_forward_tokens_per_s": {}}
    rows = []
    bytes_per = torch.finfo(dtype).bits // 8
    max_len = max(prompts) + new_tokens
    hf = hf_model(config, device, dtype) if hf_batches else None
    for batch in batches:
        generator = StaticGenerator(model, batch, max_len, compile=compile)
        info["compile_s"][batch] = generator.warm_up(batch)
        info["decode"] = {"steps_per_graph": generator.steps_per_graph, "decode_linear": generator.decode_linear,
                          "decode_attention": generator.caches[0].decode_attention,
                          "prefill_graphs": generator.prefill_graphs,
                          "compile_options": generator.DECODE_COMPILE_OPTIONS if compile else None}
        for prompt_len in prompts:
            prompt = torch.randint(0, config.vocab_size, (batch, prompt_len), device=device,
                                   generator=torch.Generator(device).manual_seed(batch * 1000 + prompt_len))
            info["prompt_forward_tokens_per_s"][f"{batch}x{prompt_len}"] = prompt_forward_tokens_per_s(
                model, prompt, repeats, device)
            # at the end the cache holds prompt + new - 1 positions: the last new token is never read back
            formula = kv_cache_bytes(config, batch, prompt_len + new_tokens - 1, bytes_per)
            with _no_cudnn_attention():  # new shapes every token: no per-shape set-up stalls for the eager loops
                naive_row, naive_tokens = measure("naive loop", lambda p, n: model.generate(p, n, temperature=0),
                                                  prompt, new_tokens, max(1, repeats - 1), device)
                grow_row, grow_tokens = measure("growing cache, eager",
                                                lambda p, n: model.generate(p, n, temperature=0, use_cache=True),
                                                prompt, new_tokens, max(1, repeats - 1), device)
            caches = model.new_caches()
            with torch.no_grad():
                model(prompt, caches=caches)
                for _ in range(new_tokens - 1):
                    model(prompt[:, -1:], caches=caches)
            grow_row["kv_bytes_measured"] = sum(c.keys.numel() * c.keys.element_size() * 2 for c in caches)
            method = "static cache, compiled" if compile else "static cache, eager"
            static_row, static_tokens = measure(method, generator.generate, prompt, new_tokens, repeats, device)
            static_row["kv_bytes_allocated"] = generator.cache_bytes()  # max_batch x max_len, preallocated
            static_row["kv_bytes_allocated_formula"] = kv_cache_bytes(config, batch, max_len, bytes_per)
            for row, tokens in ((naive_row, naive_tokens), (grow_row, grow_tokens), (static_row, static_tokens)):
                row["tokens_equal_to_naive"] = float((tokens == naive_tokens).float().mean())
            these = [naive_row, grow_row, static_row]
            if hf is not None and batch in hf_batches and prompt_len == prompts[0]:
                hf_row, _ = measure("transformers GPT2LMHeadModel, static cache",
                                    lambda p, n: hf_generate(hf, p, n), prompt, new_tokens, repeats, device)
                hf_row["tokens_equal_to_naive"] = None  # another model's random weights: other tokens
                these.append(hf_row)
            for row in these:
                row.update(model=label, kv_bytes_formula=formula)
                if progress:  # a run cut short still shows its rows
                    print(f"{label} batch {batch} prompt {prompt_len} {row['method']}: {row['tokens_per_s']:,.0f} "
                          "tokens/s", file=sys.stderr, flush=True)
            rows += these
        if compile:  # every batch: where a larger batch's step spends its time (batch 1's is the floor's)
            info[f"decode_kernel_profile_batch{batch}"] = decode_kernel_profile(generator, batch)
        if variants and batch == 1:  # the same step with another attention or linear-layer kernel
            rows += _variant_rows(label, model, info, prompts[0], new_tokens, repeats, compile, device, progress,
                                  variants)
        generator.close()  # its graphs freed here, before the next generator captures (``del`` alone frees nothing)
        if after_batch is not None:
            after_batch(rows, info)
    return rows, info


def _variant_rows(label: str, model: GPT, info: dict, prompt_len: int, new_tokens: int, repeats: int,
                  compile: bool, device, progress: bool, variants: list[str]) -> list[dict]:
    """Batch 1 with each of ``variants`` (``DECODE_VARIANTS``): the static generator's row and, compiled, its kernel
    profile (``info["decode_kernel_profile_batch1_<variant>"]``)."""
    rows = []
    method = "static cache, compiled" if compile else "static cache, eager"
    prompt = torch.randint(0, model.config.vocab_size, (1, prompt_len), device=device,
                           generator=torch.Generator(device).manual_seed(1000 + prompt_len))
    naive = model.generate(prompt, new_tokens, temperature=0)
    for variant in variants:
        generator = StaticGenerator(model, 1, prompt_len + new_tokens, compile=compile, **DECODE_VARIANTS[variant])
        generator.warm_up(1)
        row, tokens = measure(f"{method}, {variant}", generator.generate, prompt, new_tokens, repeats, device)
        bytes_per = torch.finfo(generator.dtype).bits // 8
        row.update(model=label, tokens_equal_to_naive=float((tokens == naive).float().mean()),
                   kv_bytes_formula=kv_cache_bytes(model.config, 1, prompt_len + new_tokens - 1, bytes_per),
                   kv_bytes_allocated=generator.cache_bytes(),
                   kv_bytes_allocated_formula=kv_cache_bytes(model.config, 1, prompt_len + new_tokens, bytes_per))
        if compile:
            info[f"decode_kernel_profile_batch1_{variant.replace(' ', '_')}"] = decode_kernel_profile(generator, 1)
        if progress:
            print(f"{label} batch 1 prompt {prompt_len} {row['method']}: {row['tokens_per_s']:,.0f} tokens/s",
                  file=sys.stderr, flush=True)
        rows.append(row)
        generator.close()
    return rows


def floors(rows: list[dict], info: dict, gpu: bool) -> dict:
    """Issue 24's floors, judged on GPT-2 small at prompt 512 (None where the run has no such row). The 2,000
    tokens/s floor counts every new token over the whole call, the prompt's forward pass included (the stricter
    reading); the rate after the first token is reported beside it."""
    def find(method_start, batch, prompt=512):
        return next((r for r in rows if r["model"] == "GPT-2 small" and r["method"].startswith(method_start)
                     and not any(r["method"].endswith(variant) for variant in DECODE_VARIANTS)
                     and r["batch"] == batch and r["prompt"] == prompt), None)

    static1, static8 = find("static", 1), find("static", 8)
    if not gpu or static1 is None:
        return {}
    naive8, hf1, hf8 = find("naive", 8), find("transformers", 1), find("transformers", 8)
    kernel_ms = (info["GPT-2 small"].get("decode_kernel_profile_batch1") or {}).get("ms_per_step")
    ms_per_token = 1000 / static1["decode_tokens_per_s"]
    result = {"batch 1 warm tokens/s >= 2000": static1["tokens_per_s"] >= 2000,
              "batch 1 warm tokens/s": static1["tokens_per_s"],
              "batch 1 tokens/s after the first token": static1["decode_tokens_per_s"],
              "batch 1 decode ms per token": ms_per_token, "batch 1 kernel ms per decode step (profiled)": kernel_ms,
              "first call within 2x of warm (batch 1)": static1["first_s"] <= 2 * static1["warm_s"],
              "static / naive at batch 8": static8["tokens_per_s"] / naive8["tokens_per_s"] if naive8 else None}
    if kernel_ms is not None and kernel_ms > 0.5:
        result["within 1.3x of the kernels' time (batch 1)"] = ms_per_token <= 1.3 * kernel_ms
    result["static >= 5x naive at batch 8"] = bool(naive8) and result["static / naive at batch 8"] >= 5
    for batch, hf in ((1, hf1), (8, hf8)):
        static = static1 if batch == 1 else static8
        result[f"static / transformers at batch {batch}"] = static["tokens_per_s"] / hf["tokens_per_s"] if hf else None
        result[f"at least as fast as transformers at batch {batch}"] = bool(hf) and static["tokens_per_s"] >= \
            hf["tokens_per_s"]
    return result


@contextlib.contextmanager
def _no_cudnn_attention():
    """cuDNN's attention off inside the block (its per-shape set-up stalls loops whose shapes change every token)."""
    before = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(False)
    try:
        yield
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)


def _all_models(s: dict, compile: bool, device, dtype, progress: bool,
                after_each=None) -> tuple[list[dict], dict]:
    """Every model's rows and facts; ``after_each(rows, info)`` runs after each batch of each model (to keep a
    partial result)."""
    rows, info = [], {}

    def so_far(label: str):
        return lambda model_rows, model_info: after_each(rows + model_rows, {**info, label: model_info})

    anchored = s.get("hf_model", next(iter(s["models"])))  # transformers runs beside the grid's first model only
    for label, (shape, prompts, new_tokens) in s["models"].items():
        model_rows, info[label] = _model_rows(label, GPTConfig(**shape), prompts, new_tokens, _batches(s, label),
                                              s["repeats"], s["hf"] if label == anchored else [],
                                              compile, device, dtype, progress, s.get("variants", []),
                                              so_far(label) if after_each is not None else None)
        rows += model_rows
    return rows, info


def cudnn_attention_stall(config: GPTConfig, device, dtype, new_tokens: int = 32) -> dict:
    """The naive loop's first and second call for ``new_tokens`` tokens at batch 1, with cuDNN attention on and
    off (each setting on a prompt length not seen before): the first call pays any per-shape set-up."""
    torch.manual_seed(0)
    model = GPT(config).to(device=device, dtype=dtype).eval()
    before, out = torch.backends.cuda.cudnn_sdp_enabled(), {}
    try:
        for offset, enabled in enumerate((True, False)):
            torch.backends.cuda.enable_cudnn_sdp(enabled)
            prompt = torch.randint(0, config.vocab_size, (1, 301 + 97 * offset), device=device)
            run = lambda p=prompt: model.generate(p, new_tokens, temperature=0)  # noqa: E731
            first, _ = _timed(run, device)
            again, _ = _timed(run, device)
            out["on" if enabled else "off"] = {"prompt": prompt.shape[1], "new_tokens": new_tokens, "first_s": first,
                                                "second_s": again}
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)
    return out


# ---------------------------------------------------------------- the grid's cells


def _batches(s: dict, label: str) -> list[int]:
    return list(s["batches"][label] if isinstance(s["batches"], dict) else s["batches"])


def _grid(profile: str, lesson: bool) -> dict:
    if profile not in GENERATION:
        raise ValueError(f"profile must be one of {sorted(GENERATION)}, got {profile!r}")
    return LESSON_GRID.get(profile, GENERATION[profile]) if lesson else GENERATION[profile]


def _select(s: dict, only: str | None = None, batches: list[int] | None = None) -> dict:
    """The grid ``s`` cut to the model ``only`` and the batch sizes ``batches`` (None: all of them). transformers'
    anchor stays with the grid's first model, whatever the cut."""
    models = s["models"]
    if only is not None and only not in models:
        raise ValueError(f"no model {only!r} in this grid; expected one of {', '.join(map(repr, models))}")
    labels = [only] if only is not None else list(models)
    per_model = {label: [b for b in _batches(s, label) if batches is None or b in batches] for label in labels}
    per_model = {label: chosen for label, chosen in per_model.items() if chosen}
    if not per_model:
        grid = "; ".join(f"{label}: {', '.join(map(str, _batches(s, label)))}" for label in labels)
        raise ValueError(f"batch {', '.join(map(str, batches or []))} is not in this grid (batch sizes {grid})")
    return dict(s, models={label: models[label] for label in per_model}, batches=per_model,
                hf_model=s.get("hf_model", next(iter(models))))


# ---------------------------------------------------------------- one run, in this process


@dataclass(frozen=True)
class _Plan:
    """One run of the benchmark: the grid cut to the cells asked for, where it runs, and how."""

    grid: dict
    device: torch.device
    profile: str
    dtype: torch.dtype
    compile: bool  # the decode step compiled and captured (CUDA only: the CPU runs it eager)
    lesson: bool
    selection: dict | None  # the cut asked for (a model, batch sizes), None for the whole grid


def _plan(profile: str | None, lesson: bool, only: str | None, batches: list[int] | None) -> _Plan:
    """The run's plan; a model or batch size the grid lacks is refused here, before anything is measured."""
    device = pick_device()
    profile = profile or pick_profile(device)
    s = _select(_grid(profile, lesson), only, batches)
    gpu = device.type == "cuda"
    selection = {"model": only, "batches": sorted(batches) if batches else None} \
        if only is not None or batches is not None else None
    return _Plan(s, device, profile, torch.bfloat16 if gpu else torch.float32, s["compile"] and gpu, lesson, selection)


def _heading(plan: _Plan, isolated: bool) -> dict:
    """What the result starts with: the machine, the versions, the grid and the selection (checked on resuming)."""
    import transformers

    heading = {"device": plan.device.type, "device_name": device_name(plan.device), "torch": torch.__version__,
               "transformers": transformers.__version__, "profile": plan.profile,
               "grid": "lesson" if plan.lesson else "full", "dtype": str(plan.dtype).removeprefix("torch."),
               "weights": "random (only time matters)", "isolated": isolated}
    if plan.selection is not None:
        heading["selection"] = plan.selection
    return heading


def _probe(plan: _Plan) -> dict | None:
    """``cudnn_attention_stall`` on the grid's first model, on a GPU and outside lesson 08's cut (None elsewhere)."""
    if plan.device.type != "cuda" or plan.lesson:
        return None
    return cudnn_attention_stall(GPTConfig(**next(iter(plan.grid["models"].values()))[0]), plan.device, plan.dtype)


def _keeper(heading: dict, started: float):
    """``keep(rows, info, failures=None)``: save the result so far as a partial one (a run cut short keeps it)."""
    def keep(rows: list[dict], info: dict, failures: list[dict] | None = None) -> None:
        extra = {} if failures is None else {"failures": failures}
        _save(dict(heading, models=info, rows=rows, **extra, partial=True, seconds=time.perf_counter() - started))

    return keep


def _finish(heading: dict, info: dict, rows: list[dict], equal: dict | None, probe: dict | None, started: float,
            failures: list[dict] | None = None) -> dict:
    """The whole result (floors judged on a GPU), saved with ``_save``; ``failures`` only from an isolated run."""
    extra = {} if failures is None else {"failures": failures}
    result = {**heading, "models": info, "rows": rows,
              "greedy_fp32_same_tokens": equal, "floors": floors(rows, info, heading["device"] == "cuda"),
              "cudnn_attention_probe": probe, **extra,
              "note": "cuDNN attention is switched off for the eager loops (naive, growing cache), whose shapes change "
                      "every token, and for the static cache's prompt pass: its per-shape set-up would stall each new "
                      "length (cudnn_attention_probe); transformers keeps PyTorch's default",
              "seconds": time.perf_counter() - started}
    _save(result)
    return result


def _run_here(plan: _Plan, progress: bool) -> dict:
    """``plan`` measured in this process: every model's rows, then the float32 token check."""
    heading = _heading(plan, isolated=False)
    started = time.perf_counter()
    probe = _probe(plan)
    rows, info = _all_models(plan.grid, plan.compile, plan.device, plan.dtype, progress, _keeper(heading, started))
    last_name, (last_shape, _, _) = list(plan.grid["models"].items())[-1]  # the smallest: one more compilation, in float32
    equal = same_tokens_fp32(GPTConfig(**last_shape), plan.device, compile=plan.compile, label=last_name)
    return _finish(heading, info, rows, equal, probe, started)


def bench_generation(profile: str | None = None, progress: bool = False, lesson: bool = False,
                     only: str | None = None, batches: list[int] | None = None) -> dict:
    """Every method of ``GENERATION[profile]`` timed in this process, with issue 24's floors judged on a GPU: what
    lesson 08 runs (``lesson``: its cut of the grid, ``LESSON_GRID``, where the profile has one). ``progress`` prints
    each row to stderr as it is measured; ``only`` (a model's name) and ``batches`` measure part of the grid.

    With ``ATTENTION_COURSE_RESULTS_DIR`` set, the result so far is kept there after each batch and the whole result
    at the end (``_save``). The command line, ``attention-course bench generation``, runs the maintainers' driver
    (``attention_course.tools.bench_generation``): the same measurement, but on a GPU each (model, batch) cell of the
    full grid in a process of its own, so that a crash costs one cell, and resumable.
    """
    return _run_here(_plan(profile, lesson, only, batches), progress)


def _result_path(result: dict) -> Path | None:
    """Where ``_save`` writes ``result`` (None without ``ATTENTION_COURSE_RESULTS_DIR``)."""
    folder = os.environ.get("ATTENTION_COURSE_RESULTS_DIR")
    if not folder:
        return None
    tag = result["device_name"].replace("NVIDIA ", "").split()[0] if result["device"] == "cuda" else "cpu"
    grid = "_lesson" if result.get("grid") == "lesson" else ""
    cut = result.get("selection")
    if cut:  # part of the grid: a file of its own, that never replaces the whole grid's
        grid += "_only-" + "-".join(filter(None, [re.sub(r"[^A-Za-z0-9]+", "-", cut["model"] or "").strip("-"),
                                                  "b" + "-".join(map(str, cut["batches"])) if cut["batches"] else ""]))
    partial = "_partial" if result.get("partial") else ""
    return Path(folder) / f"generation_{result['profile']}{grid}_{tag}{partial}.json"


def _save(result: dict) -> None:
    """With ``ATTENTION_COURSE_RESULTS_DIR`` set (the maintainers' GPU runs), also write the result there as JSON,
    so that a lesson executed on a GPU leaves the benchmark's file beside its outputs without a second run."""
    path = _result_path(result)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    if not result.get("partial"):  # the whole result supersedes what a cut-short run would have kept
        path.with_name(path.stem + "_partial.json").unlink(missing_ok=True)
