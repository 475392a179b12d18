"""Checks for lesson 04: FLOPs, honest timing, fused causal attention, DDP gradient averaging."""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F

from ._core import CheckFailed, call, expect_number, expect_tensor, fail, fresh_generator, fresh_rng, task
from ._messages import tr


@task("04.block_flops")
def check_block_flops(fn) -> int:
    """Forward FLOPs of one block for one sequence: 24 T d^2 (projections + MLP) + 4 T^2 d (attention)."""
    rng = fresh_rng()
    cases = []
    while len(cases) < 3:  # T a multiple of d can make two mistakes give the same count: skip those
        length, width = rng.randint(2, 300), rng.randint(2, 100) * 8
        if length % width and width % length:
            cases.append((length, width))
    cases += [(1024, 768), (1, 16), (7, 7)]
    for length, width in cases:
        got = call("04.block_flops", f"T={length}, d={width}", fn, length, width)
        expect_number("04.block_flops", f"T={length}, d={width}", got, 24 * length * width**2 + 4 * length**2 * width,
                      tr("QKV and output projections: 8 T d^2; MLP: 16 T d^2; scores and weighted sum: 4 T^2 d"),
                      [(12 * length * width**2 + 2 * length**2 * width, tr("you counted multiply-adds: each is 2 "
                                                                           "FLOPs")),
                       (24 * length * width**2, tr("you left out attention's own products: Q K^T and weights @ V "
                                                   "cost 2 T^2 d FLOPs each")),
                       (8 * length * width**2 + 4 * length**2 * width, tr("the MLP (d -> 4d -> d) costs 16 T d^2 "
                                                                          "FLOPs: did you forget it?")),
                       (24 * length * width**2 + 2 * length**2 * width, tr("attention has TWO products of 2 T^2 d "
                                                                           "FLOPs each: Q K^T and weights @ V")),
                       (16 * length * width**2 + 4 * length**2 * width, tr("the MLP's two layers are d x 4d and 4d x "
                                                                           "d: 2 x (2 T d 4d) = 16 T d^2, plus 8 T "
                                                                           "d^2 for the four projections"))], integer=True)
    return len(cases)


class _FakeClock:
    """A clock, a workload and a synchronise call that record the order in which they are used."""

    def __init__(self, durations):
        self.now, self.log, self.durations, self.calls, self.pending = 0.0, [], list(durations), 0, 0.0

    def clock(self):
        self.log.append("clock")
        return self.now

    def work(self):
        self.log.append("work")
        self.pending += self.durations[self.calls % len(self.durations)]
        self.calls += 1

    def sync(self):
        self.log.append("sync")
        self.now += self.pending  # asynchronous work "finishes" only when synchronised
        self.pending = 0.0


def _check_timer_case(fn, case, g, repeats, warmup, pass_counts=True) -> None:
    task_id = "04.time_fn"
    warm = [0.5 + 0.1 * i for i in range(warmup)]  # slow first calls
    timed = (torch.rand(repeats, generator=g) * 0.04 + 0.01).tolist()
    timed[int(torch.randint(repeats, (1,), generator=g))] = 0.3  # one slow outlier: the mean is not the median
    fake = _FakeClock(warm + timed)
    args = (repeats, warmup) if pass_counts else ()
    got = call(task_id, case, fn, fake.work, fake.sync, fake.clock, *args)
    if fake.calls != repeats + warmup:
        fail(task_id, case, tr("{repeats} calls of work()", repeats=repeats + warmup), tr("{calls} calls", calls=fake.calls),
             tr("call work() `warmup` times untimed, then `repeats` times timed"))
    queued = False
    for event in fake.log:
        if event == "work":
            queued = True
        elif event == "sync":
            queued = False
        elif event == "clock" and queued:
            raise CheckFailed(tr("{task_id}: case '{case}': the clock was read while work was still queued (no "
                                 "sync() after a work()): on a GPU that times only the launch. Call sync() after the "
                                 "warm-up and after each timed work(), before reading the clock.",
                                 task_id=task_id, case=case))
    ordered = sorted(timed)
    wrongs = [(statistics.mean(timed), tr("that is the mean: report the MEDIAN, which one slow outlier cannot drag")),
              (min(timed), tr("that is the fastest call: report the MEDIAN")),
              (sum(timed), tr("that is the total: report the MEDIAN of the timed durations"))]
    if warmup:
        wrongs.append((statistics.median(warm + timed),
                       tr("the warm-up calls were timed too: time only the `repeats` calls after the warm-up")))
    if repeats % 2 == 0:
        wrongs += [(ordered[repeats // 2], tr("for an even count the median is the MEAN of the two middle values "
                                              "(statistics.median does it)")),
                   (ordered[repeats // 2 - 1], tr("for an even count the median is the MEAN of the two middle values "
                                                  "(statistics.median does it; torch.median returns the lower one)"))]
    expect_number(task_id, case, got, statistics.median(timed),
                  tr("return the MEDIAN of the timed durations (statistics.median), as a float"),
                  [(w, text) for w, text in wrongs if abs(w - statistics.median(timed)) > 1e-9], tol=1e-9,
                  python_float=True)


@task("04.time_fn")
def check_time_fn(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = [(rng.randint(2, 5) * 2 + 1, rng.randint(1, 3)), (rng.randint(2, 5) * 2, rng.randint(1, 3)), (4, 0), (1, 2)]
    for repeats, warmup in cases:
        _check_timer_case(fn, tr("{warmup} warm-up + {repeats} timed calls", warmup=warmup, repeats=repeats), g, repeats, warmup)
    try:
        _check_timer_case(fn, tr("called with the defaults (5 timed, 2 warm-up)"), g, 5, 2, pass_counts=False)
    except CheckFailed as failure:
        if isinstance(getattr(failure, "learner_error", None), TypeError):
            fail("04.time_fn", tr("called as time_fn(work, sync, clock)"), tr("a median"), tr("an error"),
                 tr("keep the defaults of the signature: repeats=5, warmup=2"))
        raise
    return len(cases) + 1


@task("04.causal_sdpa", require=("scaled_dot_product_attention",))
def check_causal_sdpa(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = [(rng.randint(1, 3), rng.randint(1, 4), rng.randint(3, 12), rng.choice([8, 16, 32])) for _ in range(2)]
    cases += [(2, 4, 9, 16), (1, 2, 1, 8)]
    for batch, heads, length, d in cases:
        q, k, v = (torch.randn(batch, heads, length, d, generator=g) for _ in range(3))
        case = tr("batch {batch}, {heads} heads, T={length}, d={d}", batch=batch, heads=heads, length=length, d=d)
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        upper = torch.ones(length, length, dtype=torch.bool).triu(1)
        got = call("04.causal_sdpa", case, fn, q, k, v)
        expect_tensor("04.causal_sdpa", case, got, expected,
                      tr("use F.scaled_dot_product_attention(q, k, v, is_causal=True)"),
                      [(F.scaled_dot_product_attention(q, k, v), tr("no causal mask: pass is_causal=True")),
                       (F.scaled_dot_product_attention(q, k, v, attn_mask=upper),
                        tr("the mask is inverted: a bool attn_mask is True where attending is ALLOWED")),
                       (F.scaled_dot_product_attention(q, k, v, attn_mask=~upper.T),
                        tr("that mask lets each position see the future and not the past: use the lower triangle"))])
    return len(cases)


@task("04.ddp_average")
def check_ddp_average(fn) -> int:
    """Averaging per-replica gradients of mean losses over equal shards = the full-batch gradient."""
    g, rng = fresh_generator(), fresh_rng()
    cases = 0
    for replicas in (rng.randint(3, 6), 2, 1):
        d_in, d_out, per_replica = rng.randint(2, 6), rng.randint(1, 4), rng.randint(1, 3)
        weight = torch.randn(d_out, d_in, generator=g, requires_grad=True)
        x, y = torch.randn(replicas * per_replica, d_in, generator=g), torch.randn(replicas * per_replica, d_out, generator=g)
        full = torch.autograd.grad(F.mse_loss(x @ weight.T, y), weight)[0]
        shards = [torch.autograd.grad(F.mse_loss(xs @ weight.T, ys), weight)[0]
                  for xs, ys in zip(x.chunk(replicas), y.chunk(replicas), strict=True)]
        case = tr("{replicas} replica{s}, gradients {shape}",
                  replicas=replicas, s="s" if replicas > 1 else "", shape=tuple(full.shape))
        got = call("04.ddp_average", case, fn, shards)
        expect_tensor("04.ddp_average", case + tr(", each the gradient of its shard's mean loss"), got, full,
                      tr("all-reduce sums the replicas' gradients; DDP then divides by the number of replicas"),
                      [(torch.stack(shards).sum(0), tr("that is the SUM: divide by the number of replicas")),
                       (shards[0], tr("that is one replica's gradient: combine all of them")),
                       (shards[-1], tr("that is one replica's gradient: combine all of them")),
                       (torch.stack(shards).mean(1), tr("average over the replicas (dim=0 of the stacked gradients)"))])
        cases += 1
    return cases
