"""Checks for lesson 02: scaled dot-product self-attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._core import call, expect_tensor, expect_tuple, fail, fresh_generator, fresh_rng, task
from ._messages import tr


def _qkv(g, batch, tq, tk, d, dv):
    return (torch.randn(*batch, tq, d, generator=g), torch.randn(*batch, tk, d, generator=g),
            torch.randn(*batch, tk, dv, generator=g))


def _batch_shapes(rng):
    """Leading axes: none (2-D), one (3-D) and two (4-D)."""
    return [(), (rng.randint(1, 3),), (rng.randint(1, 3), rng.randint(2, 4))]


@task("02.attention_scores")
def check_scores(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = 0
    for batch in _batch_shapes(rng) + [(2,)]:
        tq, tk = rng.randint(2, 7), rng.randint(2, 7)
        d = rng.choice([3, 5, 8, 16]) if cases < 3 else 9
        tk = tk if tk != d else tk + 1
        q, k, _ = _qkv(g, batch, tq, tk, d, 2)
        case = f"q {tuple(q.shape)}, k {tuple(k.shape)}"
        raw = q @ k.transpose(-2, -1)
        got = call("02.attention_scores", case, fn, q, k)
        expect_tensor("02.attention_scores", case, got, raw / math.sqrt(d),
                      tr("scores = q @ k.transpose(-2, -1) / sqrt(d), with d = q.shape[-1]"),
                      [(raw, tr("you forgot to divide by sqrt(d)")), (raw / d, tr("divide by sqrt(d), not by d")),
                       (raw / math.sqrt(tk), tr("d is the feature size q.shape[-1], not the number of keys")),
                       (raw / math.sqrt(tq), tr("d is the feature size q.shape[-1], not the number of queries")),
                       (raw.transpose(-2, -1) / math.sqrt(d), tr("q and k are swapped: rows are queries, so q @ k^T")),
                       (raw * math.sqrt(d), tr("divide by sqrt(d); you multiplied"))])
        cases += 1
    return cases


def _softmax_cases(g, rng):
    rows = rng.randint(2, 5)
    yield tr("random 2-D scores"), torch.randn(rows, rng.randint(3, 7), generator=g) * 3
    yield tr("rows at 1000 and at -1000"), torch.stack([torch.tensor([1000.0, 1001.0, 999.0, 1000.5]),
                                                     torch.tensor([-1000.0, -999.0, -1001.0, -1000.5])])
    yield tr("4-D scores"), torch.randn(2, rng.randint(2, 4), rng.randint(2, 5), rng.randint(3, 6), generator=g)
    yield tr("3-D scores"), torch.randn(rng.randint(1, 3), 4, 4, generator=g)
    yield tr("a constant row and a one-hot-like row"), torch.tensor([[2.0, 2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 50.0, 0.0, 0.0]])
    masked = torch.randn(3, 6, generator=g)
    masked[torch.rand(3, 6, generator=g) < 0.5] = float("-inf")
    masked[:, rng.randrange(6)] = 1.0  # every row keeps a key
    yield tr("masked scores (-inf) as attention makes them"), masked
    yield tr("one row vector"), torch.randn(rng.randint(2, 8), generator=g)


@task("02.softmax", forbid=("softmax",))
def check_softmax(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = 0
    for case, scores in _softmax_cases(g, rng):
        case = f"{case} {tuple(scores.shape)}"
        expected = torch.softmax(scores, -1)
        got = call("02.softmax", case, fn, scores)
        finite = scores.masked_fill(torch.isinf(scores), -1e9)
        shifted = (scores - scores.amax(-1, keepdim=True)).exp()
        diagnoses = [(torch.softmax(scores, 0), tr("you normalised over the wrong axis: use dim=-1 (over keys)")),
                     (torch.softmax(finite.flatten(), 0).view(scores.shape), tr("you normalised over ALL the values: "
                                                                                "each row (last axis) must sum to 1 "
                                                                                "on its own")),
                     (shifted / shifted.sum(), tr("divide each row by ITS sum: .sum(dim=-1, keepdim=True)"))]
        if scores.dim() > 1:
            diagnoses.append((torch.softmax(scores, -2), tr("you normalised over the wrong axis: use dim=-1 (over "
                                                            "keys)")))
        expect_tensor("02.softmax", case, got, expected,
                      tr("exp(x - max) / sum(exp(x - max)) along the LAST axis; subtracting the max avoids overflow"),
                      diagnoses, nan_hint=tr("exp of a large score overflows to inf (and inf / inf is NaN); exp of a "
                                             "very negative one underflows to 0 (0 / 0): subtract each ROW's max, "
                                             "amax(dim=-1, keepdim=True)"))
        cases += 1
    return cases


@task("02.causal_mask")
def check_causal_mask(fn) -> int:
    rng = fresh_rng()
    sizes = [rng.randint(3, 6) * 2, rng.randint(2, 6) * 2 + 1, 2, 1]  # even, odd; a 1x1 mask tells no mistake apart
    for size in sizes:
        expected = torch.ones(size, size, dtype=torch.bool).tril()
        got = call("02.causal_mask", f"T={size}", fn, size)
        expect_tensor("02.causal_mask", f"T={size}", got, expected,
                      tr("True on and below the diagonal: position t may attend to positions 0..t"),
                      [(expected.T, tr("that is the transpose: queries are rows, keys are columns")),
                       (~expected, tr("the mask is inverted: True must mean 'may attend'")),
                       (torch.ones(size, size, dtype=torch.bool).tril(-1),
                        tr("off by one: a position may attend to ITSELF (include the diagonal)")),
                       (torch.ones(size, size, dtype=torch.bool).tril(1), tr("off by one: t may not see t + 1"))])
    return len(sizes)


@task("02.padding_mask")
def check_padding_mask(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = []
    for _ in range(2):
        max_len = rng.randint(3, 9)
        lengths = torch.randint(1, max_len + 1, (rng.randint(2, 5),), generator=g)
        lengths[0] = max_len - 1
        cases.append((lengths, max_len))
    cases.append((torch.tensor([3, 1, 5, 0]), 5))  # a full row and an empty one
    cases.append((torch.tensor([2]), 2))
    cases.append((torch.tensor([2, 1, 3]), 6))  # every sequence shorter than max_len: the mask is (3, 6), not (3, 3)
    for lengths, max_len in cases:
        case = tr("lengths {lengths}, max_len {max_len}", lengths=lengths.tolist(), max_len=max_len)
        expected = torch.arange(max_len)[None] < lengths[:, None]
        got = call("02.padding_mask", case, fn, lengths, max_len)
        expect_tensor("02.padding_mask", case, got, expected,
                      tr("row b is True at positions 0..lengths[b]-1 (the real tokens), False on the padding"),
                      [(~expected, tr("inverted: True must mark real tokens, False padding")),
                       (torch.arange(max_len)[None] <= lengths[:, None], tr("off by one: position lengths[b] is "
                                                                            "padding")),
                       (torch.arange(max_len)[None] < lengths[:, None] - 1, tr("off by one: positions "
                                                                               "0..lengths[b]-1 are all real tokens")),
                       (expected.T, tr("rows are sequences: compare torch.arange(max_len)[None, :] with lengths[:, "
                                       "None]"))])
    return len(cases)


def _masked(scores, mask):
    return scores if mask is None else scores.masked_fill(~mask, float("-inf"))


def _wrong_weights(q, k, mask):
    raw = q @ k.transpose(-2, -1)
    scaled = raw / math.sqrt(q.shape[-1])
    wrongs = [(torch.softmax(_masked(raw, mask), -1),
               tr("the weights are too peaked: divide the scores by sqrt(d) before the softmax")),
              (torch.softmax(_masked(scaled, mask), -2),
               tr("softmax over the wrong axis: each query's weights over the KEYS (dim=-1) must sum to 1"))]
    if mask is not None:
        wrongs += [(torch.softmax(scaled, -1) * mask, tr("the mask was applied after the softmax, so rows no longer "
                                                         "sum to 1: fill masked scores with -inf BEFORE the softmax")),
                   (torch.softmax(scaled.masked_fill(mask, float("-inf")), -1),
                    tr("the mask is inverted: True means 'may attend', so fill where the mask is False")),
                   (torch.softmax(scaled.masked_fill(~mask, 0.0), -1),
                    tr("masked scores were set to 0, which still gets weight: fill them with float('-inf')")),
                   (torch.softmax(scaled, -1), tr("the mask was ignored: fill scores where mask is False with -inf"))]
    return wrongs


def _sdpa_cases(g, rng):
    tq, tk, t = rng.randint(2, 6), rng.randint(3, 7), rng.randint(3, 7)
    d, dv = rng.choice([4, 8, 16]), max(tk, t) + rng.randint(1, 3)  # dv differs from every Tk: a swap shows
    yield tr("no mask, 2-D q"), _qkv(g, (), tq, tk, d, dv), None
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    yield tr("batch 2 x 3 heads, causal mask ({t}, {t})", t=t), _qkv(g, (2, 3), t, t, d, dv), causal
    lengths = torch.tensor([tk, rng.randint(1, tk - 1)])
    padding = (torch.arange(tk)[None] < lengths[:, None])[:, None, None, :]
    yield tr("batch 2 x 2 heads, padding mask {shape}", shape=tuple(padding.shape)), _qkv(g, (2, 2), tq, tk, d, dv), padding
    one_key = torch.zeros(2, tq, tk, dtype=torch.bool)
    one_key[..., rng.randrange(tk)] = True
    yield tr("3-D, a mask that leaves each query ONE key"), _qkv(g, (2,), tq, tk, d, dv), one_key
    random_mask = torch.rand(3, tq, tk, generator=g) > 0.5
    random_mask[:, torch.arange(tq), torch.randint(tk, (tq,), generator=g)] = True
    yield tr("3-D, a random mask (every row keeps a key)"), _qkv(g, (3,), tq, tk, d, dv), random_mask


@task("02.scaled_dot_product_attention", forbid=("scaled_dot_product_attention",))
def check_sdpa(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    task_id, cases = "02.scaled_dot_product_attention", 0
    for case, (q, k, v), mask in _sdpa_cases(g, rng):
        case = f"{case}, q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        result = call(task_id, case, fn, q, k, v, mask)
        output, weights = expect_tuple(task_id, case, result, ("output", "weights"))
        if (isinstance(weights, torch.Tensor) and isinstance(output, torch.Tensor) and v.shape[-1] != k.shape[-2]
                and weights.shape[-1:] == v.shape[-1:] and output.shape[-1:] == k.shape[-2:-1]):
            fail(task_id, case, tr("(output, weights)"), tr("(weights, output)"), tr("return (output, weights) in that order"))
        expected_weights = torch.softmax(_masked(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), mask), -1)
        expect_tensor(task_id, case + " (weights)", weights, expected_weights,
                      tr("weights = softmax(q @ k^T / sqrt(d), masked with -inf where mask is False) over the keys"),
                      _wrong_weights(q, k, mask), nan_hint=tr("a row of the softmax overflowed or every key was "
                                                              "masked: subtract the row max in the softmax and mask "
                                                              "with -inf only where mask is False"))
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        expect_tensor(task_id, case + tr(" (output vs torch's SDPA)"), output, expected, tr("output = weights @ v"),
                      [(v.transpose(-2, -1) @ expected_weights.transpose(-2, -1),
                        tr("output = weights @ v, with weights (..., Tq, Tk) on the left"))])
        cases += 1
    q, k, v = _qkv(g, (2,), 3, 4, 8, 5)
    try:
        result = call(task_id, tr("called without a mask"), fn, q, k, v)
    except AssertionError as failure:
        if not isinstance(getattr(failure, "learner_error", None), TypeError):
            raise
        fail(task_id, tr("called without a mask"), tr("(output, weights)"), tr("an error"),
             tr("give mask a default of None and skip masking when it is None"))
    output, _ = expect_tuple(task_id, tr("called without a mask"), result, ("output", "weights"))
    expect_tensor(task_id, tr("called without a mask"), output, F.scaled_dot_product_attention(q, k, v),
                  tr("without a mask every key is attended to"))
    return cases + 1
