"""Checks for lesson 08: the KV-cache step, the distillation loss, latency percentiles, cost, choosing a variant."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._core import call, expect_number, expect_tensor, expect_tuple, fail, fresh_generator, fresh_rng, task
from ._messages import tr

# ---------------------------------------------------------------- 08.kv_cache_step


def _attend(q, k, v, mask=None, scale=True):
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1.0)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, -1) @ v


def _cat_or_none(a, b, dim):
    try:
        return torch.cat([a, b], dim)
    except RuntimeError:  # the shapes only fit along time
        return None


def _offset_causal(n_new, n_total):
    return torch.ones(n_new, n_total, dtype=torch.bool).tril(n_total - n_new)


@task("08.kv_cache_step")
def check_kv_cache_step(fn) -> int:
    task_id = "08.kv_cache_step"
    g, rng = fresh_generator(), fresh_rng()
    shapes = [(rng.randint(2, 3), rng.randint(2, 4), rng.randint(3, 9), 2),  # a chunk after a cache: the telling case
              (rng.randint(1, 3), rng.randint(1, 4), rng.randint(1, 12), 1),  # one new token (a decoding step)
              (2, 3, 0, rng.randint(3, 6)),  # an empty cache: the prompt (prefill)
              (1, 2, rng.randint(4, 10), 1)]
    for batch, heads, past, new in shapes:
        d = rng.choice([4, 8])
        q, k, v = (torch.randn(batch, heads, new, d, generator=g) for _ in range(3))
        cache_k, cache_v = (torch.randn(batch, heads, past, d, generator=g) for _ in range(2))
        case = tr("{past} cached positions, {new} new, q (B={batch}, H={heads}, {new}, d={d})",
                  past=past, new=new, batch=batch, heads=heads, d=d)
        got = expect_tuple(task_id, case, call(task_id, case, fn, q, k, v, cache_k, cache_v),
                           ("output", "cache_k", "cache_v"))
        all_k, all_v = torch.cat([cache_k, k], -2), torch.cat([cache_v, v], -2)
        wrong_axes = [(_cat_or_none(cache_k, k, 1), tr("concatenate along time (dim -2), not along the heads")),
                      (_cat_or_none(cache_k, k, 0), tr("concatenate along time (dim -2), not along the batch"))]
        expect_tensor(task_id, case + ": cache_k", got[1], all_k,
                      tr("append the new keys after the cached ones along time: torch.cat([cache_k, k], dim=-2)"),
                      [(torch.cat([k, cache_k], -2), tr("the new keys go AFTER the cached ones (time order)")),
                       *[(w, text) for w, text in wrong_axes if w is not None],
                       (k, tr("keep the cached keys: return them with the new ones appended"))])
        expect_tensor(task_id, case + ": cache_v", got[2], all_v,
                      tr("append the new values after the cached ones: torch.cat([cache_v, v], dim=-2)"),
                      [(all_k, tr("cache_v holds the values, not the keys"))])
        total = past + new
        expected = _attend(q, all_k, all_v, _offset_causal(new, total))
        diagnoses = [(_attend(q, k, v, torch.ones(new, new, dtype=torch.bool).tril()),
                      tr("the new queries must attend over the cached keys too, not only the new ones")),
                     (_attend(q, all_k, all_v, _offset_causal(new, total), scale=False),
                      tr("scale the scores by 1/sqrt(d)"))]
        if new > 1:
            diagnoses += [(_attend(q, all_k, all_v), tr("a new query must not see the new tokens after it: mask key "
                                                        "j for query i unless j <= past + i")),
                          (_attend(q, all_k, all_v, torch.ones(new, total, dtype=torch.bool).tril()),
                           tr("the causal mask must be shifted by the cache length: query i sits at position past + "
                              "i (SDPA's is_causal=True aligns it top-left, which is wrong once keys outnumber "
                              "queries)"))]
        expect_tensor(task_id, case + ": output", got[0], expected,
                      tr("softmax(q K^T / sqrt(d)) V over all keys, with query i allowed keys 0..past+i"), diagnoses,
                      atol=1e-5)
    return len(shapes)


# ---------------------------------------------------------------- 08.distillation_loss


def _kl(p_log, q_log):  # KL(p || q) summed over classes, mean over the batch
    return (p_log.exp() * (p_log - q_log)).sum(-1).mean()


def _distill_variants(s, t, y, temp, alpha):
    ce = F.cross_entropy(s, y)
    log_s, log_t = F.log_softmax(s / temp, -1), F.log_softmax(t / temp, -1)
    kl = _kl(log_t, log_s)
    right = alpha * temp**2 * kl + (1 - alpha) * ce
    wrongs = [
        (alpha * kl + (1 - alpha) * ce, tr("multiply the KL term by T**2: softening shrinks its gradients by 1/T^2")),
        (alpha * temp * kl + (1 - alpha) * ce, tr("the KL term is scaled by T squared, not T")),
        (alpha * temp**2 * _kl(F.log_softmax(t, -1), log_s) + (1 - alpha) * ce,
         tr("soften the teacher too: divide the teacher's logits by T before its softmax")),
        (alpha * temp**2 * _kl(log_t, F.log_softmax(s, -1)) + (1 - alpha) * ce,
         tr("soften the student too: divide the student's logits by T inside the KL term")),
        (alpha * temp**2 * _kl(log_s, log_t) + (1 - alpha) * ce,
         tr("the KL runs from the teacher to the student: KL(teacher || student) = sum p_t (log p_t - log p_s)")),
        (alpha * temp**2 * kl / s.shape[-1] + (1 - alpha) * ce,
         tr("average the KL over the batch only (sum over classes): F.kl_div(..., reduction='batchmean')")),
        (alpha * temp**2 * kl + (1 - alpha) * F.cross_entropy(s / temp, y),
         tr("the cross-entropy with the labels uses the student's raw logits, not the softened ones")),
        ((1 - alpha) * temp**2 * kl + alpha * ce, tr("alpha weighs the KL (soft) term; 1 - alpha the cross-entropy")),
    ]
    return right, wrongs


@task("08.distillation_loss")
def check_distillation_loss(fn) -> int:
    task_id = "08.distillation_loss"
    g, rng = fresh_generator(), fresh_rng()
    cases = [(rng.randint(3, 9), rng.randint(3, 5), round(rng.uniform(2.5, 5.0), 2), round(rng.uniform(0.3, 0.8), 2)),
             (rng.randint(2, 6), 2, 2.0, 0.5), (5, 3, 1.0, round(rng.uniform(0.2, 0.9), 2)),
             (rng.randint(4, 8), rng.randint(2, 6), 4.0, 1.0)]
    for batch, classes, temp, alpha in cases:
        student = (2 * torch.randn(batch, classes, generator=g)).requires_grad_()
        teacher = 3 * torch.randn(batch, classes, generator=g)
        labels = torch.randint(classes, (batch,), generator=g)
        case = tr("batch {batch}, {classes} classes, T={temp}, alpha={alpha}",
                  batch=batch, classes=classes, temp=temp, alpha=alpha)
        with torch.no_grad():
            right, wrongs = _distill_variants(student, teacher, labels, temp, alpha)
        got = call(task_id, case, fn, student, teacher, labels, temp, alpha)
        if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.requires_grad:
            fail(task_id, case, tr("a loss tensor connected to the student's logits"), got,
                 tr("keep the loss a tensor computed from student_logits (no .item(), no NumPy, no torch.no_grad): "
                    "the student trains through it"))
        if not isinstance(got, torch.Tensor):
            fail(task_id, case, tr("a one-element loss tensor"), got,
                 tr("return the loss as a tensor (torch operations on the logits), so the student can train through "
                    "it"))
        expect_number(task_id, case, got.detach(), float(right),
                      tr("alpha * T**2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * cross_entropy(s, labels)"),
                      [(float(w), text) for w, text in wrongs if abs(float(w) - float(right)) > 1e-5], tol=1e-4)
        _gradient_reaches_student(task_id, case, fn, student, teacher, labels, temp, alpha)
    return len(cases)


def _gradient_reaches_student(task_id, case, fn, student, teacher, labels, temp, alpha) -> None:
    """The loss must train the student: its gradient with respect to the student's logits is the right one."""
    leaf = student.detach().clone().requires_grad_()
    got = call(task_id, case, lambda: fn(leaf, teacher.clone(), labels.clone(), temp, alpha))
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        return
    try:
        got.reshape(()).backward()
    except RuntimeError:
        fail(task_id, case, tr("a loss whose gradient reaches the student's logits"), tr("a loss with no gradient"),
             tr("compute the loss from student_logits with torch operations (no .item(), no .detach())"))
    reference = student.detach().clone().requires_grad_()
    right, _ = _distill_variants(reference, teacher, labels, temp, alpha)
    right.backward()
    if leaf.grad is None or not torch.allclose(leaf.grad, reference.grad, atol=1e-4, rtol=1e-3):
        fail(task_id, case, tr("the loss's gradient with respect to the student's logits"), tr("another gradient (or "
                                                                                           "none)"),
             tr("the student learns through this loss: build it from student_logits itself, not from a detached "
                "copy, a .item() or a number"))


# ---------------------------------------------------------------- 08.latency_percentile


def _percentile(values, q):
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


@task("08.latency_percentile")
def check_latency_percentile(fn) -> int:
    task_id = "08.latency_percentile"
    rng = fresh_rng()
    cases = [(rng.randint(9, 40), 95), (rng.randint(6, 30), 50), (rng.randint(11, 60), 99),
             (rng.randint(5, 20), round(rng.uniform(60, 90), 1)), (1, 95), (2, 50)]
    for n, q in cases:
        timings = [round(rng.lognormvariate(math.log(0.02), 0.4), 5) for _ in range(n)]
        if n > 3:
            timings[rng.randrange(n)] = round(rng.uniform(0.2, 0.5), 5)  # a slow request: the tail
        case = tr("{n} timings (unsorted), q={q}", n=n, q=q)
        expected = _percentile(timings, q)
        ordered = sorted(timings)
        nearest_rank, rank_n = ordered[max(0, math.ceil(q / 100 * n) - 1)], _percentile_rank_n(ordered, q)
        # near the top (q/100 * n > n - 1) the two mistakes give the same value: name both, not the wrong one
        both = abs(nearest_rank - rank_n) <= 1e-12
        wrongs = [(sum(timings) / n, tr("that is the mean: the percentile is a value of the sorted timings "
                                        "(interpolated)")),
                  (nearest_rank, tr("that is what a rank of q/100 * n gives, and also the nearest-rank percentile: "
                                    "the rank is q/100 * (n - 1) (0-based), with linear interpolation") if both else tr("that is the "
                                                                                                  "nearest-rank "
                                                                                                  "percentile: use "
                                                                                                  "linear "
                                                                                                  "interpolation at "
                                                                                                  "rank q/100 * (n - "
                                                                                                  "1)")),
                  (rank_n, tr("the rank is q/100 * (n - 1) (0-based), not q/100 * n")),
                  (timings[min(n - 1, round(q / 100 * (n - 1)))], tr("sort the timings first"))]
        expect_number(task_id, case, call(task_id, case, fn, list(timings), q), expected,
                      tr("sort, take rank r = q/100 * (n - 1), interpolate between the values at floor(r) and ceil(r)"),
                      [(w, text) for w, text in wrongs if abs(w - expected) > 1e-6], tol=1e-6)  # float32 is fine
    return len(cases)


def _percentile_rank_n(ordered, q):
    rank = min(q / 100 * len(ordered), len(ordered) - 1)
    low, high = math.floor(rank), min(math.ceil(rank), len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


# ---------------------------------------------------------------- 08.cost_per_million


@task("08.cost_per_million")
def check_cost_per_million(fn) -> int:
    task_id = "08.cost_per_million"
    rng = fresh_rng()
    cases = [(round(rng.uniform(5, 5000), 1), round(rng.uniform(0.05, 6.0), 2)), (100.0, 3.6),
             (round(rng.uniform(1000, 90000), 0), round(rng.uniform(1.0, 12.0), 2)), (1.0, 0.10)]
    for rate, price in cases:
        case = tr("{rate} predictions/s at ${price}/hour", rate=rate, price=price)
        expected = price * 1e6 / (3600 * rate)
        wrongs = [(price * 1e6 / rate, tr("the price is per HOUR: divide by the 3600 * rate predictions made in an "
                                          "hour")),
                  (price * 1e6 / (60 * rate), tr("an hour has 3600 seconds, not 60")),
                  (price / (3600 * rate), tr("that is the cost of ONE prediction: multiply by a million")),
                  (3600 * rate / price / 1e6, tr("invert it: dollars per million predictions = price / predictions")),
                  (price * 1e6 * 3600 / rate, tr("divide by 3600 (predictions per hour = 3600 x per second), don't "
                                                 "multiply"))]
        expect_number(task_id, case, call(task_id, case, fn, rate, price), expected,
                      tr("hourly_price / (3600 * predictions_per_s) dollars per prediction, times 1e6"),
                      [(w, text) for w, text in wrongs if abs(w - expected) > 1e-9 * max(1, expected)], tol=1e-6)
    return len(cases)


# ---------------------------------------------------------------- 08.cheapest_variant


def _cheapest(rows, min_accuracy, max_p95):
    meeting = [r for r in rows if r["accuracy"] >= min_accuracy and r["p95_ms"] <= max_p95]
    return min(meeting, key=lambda r: r["cost_per_million"])["variant"] if meeting else None


def _most_accurate(rows, min_accuracy, max_p95):
    meeting = [r for r in rows if r["accuracy"] >= min_accuracy and r["p95_ms"] <= max_p95]
    return max(meeting, key=lambda r: r["accuracy"])["variant"] if meeting else None


def _variant_rows(rng, n):
    costs = rng.sample(range(1, 400), n)
    return [{"variant": f"model-{chr(65 + i)}", "accuracy": round(rng.uniform(0.70, 0.90), 3),
             "p95_ms": round(rng.uniform(2, 120), 1), "cost_per_million": costs[i] / 100} for i in range(n)]


@task("08.cheapest_variant")
def check_cheapest_variant(fn) -> int:
    task_id = "08.cheapest_variant"
    rng = fresh_rng()
    checked = 0
    scenarios = []
    while len(scenarios) < 4:  # random tables where each plausible mistake picks another variant
        rows = _variant_rows(rng, rng.randint(5, 8))
        min_acc = round(round(rng.uniform(0.74, 0.84), 3) + 0.0005, 4)  # off the rows' grid: none sits on a target
        max_p95 = round(round(rng.uniform(20, 90), 1) + 0.05, 2)
        right = _cheapest(rows, min_acc, max_p95)
        ignore_latency = _cheapest(rows, min_acc, float("inf"))
        ignore_accuracy = _cheapest(rows, 0, max_p95)
        best = _most_accurate(rows, min_acc, max_p95)
        if right is not None and len({right, ignore_latency, ignore_accuracy, best}) == 4:
            scenarios.append((rows, min_acc, max_p95))
    # the boundaries count as meeting a target; and a table where nothing qualifies
    rows = _variant_rows(rng, 4)
    rows[2].update(accuracy=0.8, p95_ms=50.0, cost_per_million=0.005)  # below every drawn cost (>= 0.01): no tie
    scenarios.append((rows, 0.8, 50.0))
    scenarios.append((_variant_rows(rng, 4), 0.95, 1.0))
    for rows, min_acc, max_p95 in scenarios:
        case = tr("{n_rows} variants, accuracy >= {min_acc}, p95 <= {max_p95} ms",
                  n_rows=len(rows), min_acc=min_acc, max_p95=max_p95)
        expected = _cheapest(rows, min_acc, max_p95)
        got = call(task_id, case, fn, [dict(r) for r in rows], min_acc, max_p95)
        if isinstance(got, dict) and "variant" in got:
            fail(task_id, case, expected, got, tr("return the variant's name (row['variant']), not the whole row"))
        if got == expected:
            checked += 1
            continue
        if expected is None:
            fail(task_id, case, None, got, tr("when no variant meets both targets, return None"))
        strict = [r for r in rows if r["accuracy"] > min_acc and r["p95_ms"] < max_p95]
        hints = [(min(strict, key=lambda r: r["cost_per_million"])["variant"] if strict else None,
                  tr("a variant exactly at a target meets it: use >= and <=")),
                 (_cheapest(rows, min_acc, float("inf")), tr("also require p95_ms <= max_p95_ms (the latency target)")),
                 (_cheapest(rows, 0, max_p95), tr("also require accuracy >= min_accuracy")),
                 (_most_accurate(rows, min_acc, max_p95), tr("among the variants meeting both targets, pick the "
                                                             "lowest cost_per_million, not the highest accuracy")),
                 (min(rows, key=lambda r: r["cost_per_million"])["variant"], tr("only variants meeting both targets "
                                                                                "may be chosen"))]
        for wrong, hint in hints:
            if wrong != expected and got == wrong:
                fail(task_id, case, expected, got, hint)
        fail(task_id, case, expected, got, tr("filter the rows meeting both targets, then take the cheapest's name"))
    return checked



# ---------------------------------------------------------------- 08.static_cache_update


def _fresh_cache(rng, g, max_batch: int, heads: int, max_len: int, d: int):
    from ..core.attention import StaticKVCache

    cache = StaticKVCache(max_batch, max_len, heads, d)
    cache.keys.copy_(torch.randn(cache.keys.shape, generator=g))  # stale values from an earlier request
    cache.values.copy_(torch.randn(cache.values.shape, generator=g))
    return cache


def _expected_write(buffer, new, start):
    out = buffer.clone()
    out[: new.shape[0], :, start : start + new.shape[2]] = new
    return out[: new.shape[0]]


@task("08.static_cache_update")
def check_static_cache_update(fn) -> int:
    """The learner's ``fn(cache, k, v, start) -> (keys, values, visible)`` on random caches, then inside a GPT: its
    greedy tokens must be exactly the naive loop's."""
    task_id = "08.static_cache_update"
    g, rng = fresh_generator(), fresh_rng()
    cases = [(3, 2, 12, 2, rng.randint(2, 6), 4),  # a chunk after a filled prefix, in a cache larger than the batch
             (2, 2, 10, 1, rng.randint(1, 8), 8),  # one decoding step
             (2, 1, 8, rng.randint(3, 6), 0, 4)]  # the prompt (prefill), at position 0
    for max_batch, batch, max_len, new, start, d in cases:
        heads = rng.randint(1, 3)
        cache = _fresh_cache(rng, g, max_batch, heads, max_len, d)
        before_k, before_v = cache.keys.clone(), cache.values.clone()
        buffers = (cache.keys, cache.values)
        k, v = (torch.randn(batch, heads, new, d, generator=g) for _ in range(2))
        case = tr("cache of {max_batch} x {max_len} positions, batch {batch}, {new} new at position {start}",
                  max_batch=max_batch, max_len=max_len, batch=batch, new=new, start=start)
        got = expect_tuple(task_id, case, call(task_id, case, fn, cache, k, v, start), ("keys", "values", "visible"))
        if cache.keys is not buffers[0] or cache.values is not buffers[1]:
            fail(task_id, case, tr("the same cache.keys and cache.values tensors, written in place"), tr("new tensors"),
                 tr("write into the preallocated buffers (cache.keys[:B, :, start:start + T_new] = k); never replace "
                    "them: a captured CUDA graph keeps reading the old memory"))
        expected_k = _expected_write(before_k, k, start)
        expect_tensor(task_id, case + ": keys", got[0], expected_k,
                      tr("return cache.keys[:B] after writing k at positions start .. start + T_new - 1"),
                      [(torch.cat([before_k[:batch], k], -2), tr("a static cache never grows: write into positions "
                                                                 "start .. start + T_new - 1 instead of concatenating")),
                       (_expected_write(before_k, k, 0), tr("write at the given start position, not at 0")),
                       (before_k[:batch], tr("write the new keys into the buffer before returning it"))], atol=0)
        expect_tensor(task_id, case + ": values", got[1], _expected_write(before_v, v, start),
                      tr("return cache.values[:B] after writing v at the same positions"),
                      [(expected_k, tr("values go into cache.values, keys into cache.keys"))], atol=0)
        if not torch.equal(cache.keys[:batch], expected_k):
            fail(task_id, case, tr("cache.keys itself written"), tr("cache.keys unchanged"),
                 tr("write into cache.keys in place (slice assignment or index_copy_), not into a copy"))
        positions = torch.arange(max_len)
        expected_mask = positions[None, :] <= (start + torch.arange(new))[:, None]
        expect_tensor(task_id, case + ": visible", got[2], expected_mask,
                      tr("visible[i, j] is True when key j <= start + i: the filled prefix, causally"),
                      [(torch.ones(new, max_len, dtype=torch.bool), tr("hide the positions after each query: they "
                                                                       "hold stale keys of an earlier request, or "
                                                                       "none yet")),
                       (positions[None, :] < (start + torch.arange(new))[:, None], tr("a query sees its own key too: "
                                                                                      "use <=, not <")),
                       (torch.ones(new, max_len, dtype=torch.bool).tril(), tr("query i sits at position start + i: "
                                                                              "shift the causal mask by start"))])
    _check_tokens(task_id, fn, g)
    return len(cases) + 1


def _check_tokens(task_id: str, fn, g) -> None:
    """Greedy tokens of a small GPT whose static caches use the learner's update, against the naive loop's."""
    from ..core.attention import StaticKVCache
    from ..core.gpt import GPT, GPTConfig
    from ..deploy.generation import StaticGenerator

    class LearnerCache(StaticKVCache):
        def update(self, positions, k, v):
            keys, values, self._visible = call(task_id, case, fn, self, k, v, int(positions[0]))
            return keys, values

        def visible(self, positions):
            return torch.as_tensor(self._visible, dtype=torch.bool)

    case = tr("a 2-layer GPT generating 24 tokens greedily after a 6-token prompt, batch 2")
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
    model = GPT(GPTConfig(vocab_size=50, block_size=64, n_layer=2, n_head=2, d_model=32)).eval()
    with torch.no_grad():  # larger weights than GPT-2's init, so that attention (and a wrong mask) moves the tokens
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0.0, 0.3, generator=g)
    prompt = torch.randint(0, 50, (2, 6), generator=g)
    naive = model.generate(prompt, 24, temperature=0)
    generator = StaticGenerator(model, max_batch=3, max_len=40)
    generator.caches = [LearnerCache(3, 40, 2, 16) for _ in model.blocks]
    for cache in generator.caches:  # stale values of an earlier request must stay hidden
        cache.keys.normal_(generator=g)
        cache.values.normal_(generator=g)
    got = generator.generate(prompt, 24)
    if not torch.equal(got, naive):
        fail(task_id, case, naive[:, 6:].tolist(), got[:, 6:].tolist(),
             tr("the cases above passed, yet generation drifts: check that every position start .. start + T_new - 1 "
                "is written and visible, and nothing after it"))
