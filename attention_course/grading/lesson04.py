"""Checks for lesson 04: FLOPs, honest timing, fused causal attention, DDP gradient averaging."""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F

from ._core import CheckFailed, call, expect_tensor, fail, task


@task("04.block_flops")
def check_block_flops(fn) -> int:
    """Forward FLOPs of one block for one sequence: 24 T d^2 (projections + MLP) + 4 T^2 d (attention)."""
    cases = [(128, 64), (1024, 768), (1, 16)]
    for length, width in cases:
        expected = 24 * length * width**2 + 4 * length**2 * width
        got = call("04.block_flops", f"T={length}, d={width}", fn, length, width)
        if got != expected:
            if got == 12 * length * width**2 + 2 * length**2 * width:
                hint = "you counted multiply-adds: each is 2 FLOPs"
            elif got == 24 * length * width**2:
                hint = "you left out attention's own products: Q K^T and weights @ V cost 2 T^2 d FLOPs each"
            elif got == 8 * length * width**2 + 4 * length**2 * width:
                hint = "the MLP (d -> 4d -> d) costs 16 T d^2 FLOPs: did you forget it?"
            else:
                hint = "QKV and output projections: 8 T d^2; MLP: 16 T d^2; scores and weighted sum: 4 T^2 d"
            fail("04.block_flops", f"T={length}, d={width}", expected, got, hint)
    return len(cases)


class _FakeClock:
    """A clock, a workload and a synchronise call that record the order in which they are used."""

    def __init__(self, durations):
        self.now, self.log, self.durations, self.calls = 0.0, [], list(durations), 0

    def clock(self):
        self.log.append("clock")
        return self.now

    def work(self):
        self.log.append("work")
        self.pending = self.durations[self.calls % len(self.durations)]
        self.calls += 1

    def sync(self):
        self.log.append("sync")
        self.now += getattr(self, "pending", 0.0)  # asynchronous work "finishes" only when synchronised
        self.pending = 0.0


@task("04.gpu_timer")
def check_gpu_timer(fn) -> int:
    durations = [0.5, 0.5, 0.010, 0.050, 0.020, 0.015, 0.025]  # two slow warm-up calls, then five timed ones (mean != median)
    fake = _FakeClock(durations)
    got = call("04.gpu_timer", "2 warm-up + 5 timed calls", fn, fake.work, fake.sync, fake.clock, 5, 2)
    if fake.calls != 7:
        fail("04.gpu_timer", "2 warm-up + 5 timed calls", "7 calls of work()", f"{fake.calls} calls",
             "call work() `warmup` times untimed, then `repeats` times timed")
    unsynchronised = False
    for event in fake.log:
        if event == "work":
            unsynchronised = True
        elif event == "sync":
            unsynchronised = False
        elif event == "clock" and unsynchronised:
            raise CheckFailed("04.gpu_timer: the clock was read while work was still queued (no sync() after the "
                              "last work()): on a GPU that times only the launch. Call sync() after the warm-up "
                              "and after each timed work(), before reading the clock.")
    expected = statistics.median(durations[2:])
    if not isinstance(got, float) or abs(got - expected) > 1e-9:
        hint = "return the MEDIAN of the timed durations (statistics.median), as a float"
        if isinstance(got, float) and abs(got - statistics.median(durations)) < 1e-9:
            hint = "the warm-up calls were timed too: time only the `repeats` calls after the warm-up"
        elif isinstance(got, float) and abs(got - statistics.mean(durations[2:])) < 1e-9:
            hint = "that is the mean: report the MEDIAN, which one slow outlier cannot drag"
        fail("04.gpu_timer", "2 warm-up + 5 timed calls", expected, got, hint)
    return 1


@task("04.causal_sdpa")
def check_causal_sdpa(fn) -> int:
    g = torch.Generator().manual_seed(404)
    q, k, v = (torch.randn(2, 4, 9, 16, generator=g) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    upper = torch.ones(9, 9, dtype=torch.bool).triu(1)
    got = call("04.causal_sdpa", "(2, 4, 9, 16)", fn, q, k, v)
    expect_tensor("04.causal_sdpa", "batch 2, 4 heads, T=9, d=16", got, expected,
                  "use F.scaled_dot_product_attention(q, k, v, is_causal=True)",
                  [(F.scaled_dot_product_attention(q, k, v), "no causal mask: pass is_causal=True"),
                   (F.scaled_dot_product_attention(q, k, v, attn_mask=upper),
                    "the mask is inverted: a bool attn_mask is True where attending is ALLOWED"),
                   (F.scaled_dot_product_attention(q, k, v, attn_mask=~upper.T),
                    "that mask lets each position see the future and not the past: use the lower triangle")])
    return 1


@task("04.ddp_average")
def check_ddp_average(fn) -> int:
    """Averaging per-replica gradients of mean losses over equal shards = the full-batch gradient."""
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    x, y = torch.randn(8, 5), torch.randn(8, 3)
    full = torch.autograd.grad(F.mse_loss(model(x), y), model.weight)[0]
    shards = [torch.autograd.grad(F.mse_loss(model(xs), ys), model.weight)[0]
              for xs, ys in zip(x.chunk(4), y.chunk(4), strict=True)]
    got = call("04.ddp_average", "4 replicas", fn, shards)
    expect_tensor("04.ddp_average", "4 replicas, each with the gradient of its shard's mean loss", got, full,
                  "all-reduce sums the replicas' gradients; DDP then divides by the number of replicas",
                  [(torch.stack(shards).sum(0), "that is the SUM: divide by the number of replicas"),
                   (shards[0], "that is one replica's gradient: combine all of them")])
    return 1
