"""Checks for lesson 02: scaled dot-product self-attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._core import CheckFailed, call, expect_tensor, fail, task


def _qkv(*batch, tq=4, tk=5, d=8, dv=3, seed=202):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, tq, d, generator=g), torch.randn(*batch, tk, d, generator=g),
            torch.randn(*batch, tk, dv, generator=g))


@task("02.attention_scores")
def check_scores(fn) -> int:
    q, k, _ = _qkv(2)
    got = call("02.attention_scores", "batch 2, Tq=4, Tk=5, d=8", fn, q, k)
    raw = q @ k.transpose(-2, -1)
    expect_tensor("02.attention_scores", "batch 2, Tq=4, Tk=5, d=8", got, raw / math.sqrt(8),
                  "scores = q @ k.transpose(-2, -1) / sqrt(d), with d = q.shape[-1]",
                  [(raw, "you forgot to divide by sqrt(d)"), (raw / 8, "divide by sqrt(d), not by d")])
    return 1


@task("02.softmax")
def check_softmax(fn) -> int:
    scores = torch.tensor([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]])
    got = call("02.softmax", "2 rows incl. large values", fn, scores)
    expect_tensor("02.softmax", "2 rows including scores of 1000", got, torch.softmax(scores, -1),
                  "exp(x - max) / sum(exp(x - max)) along the LAST axis; subtracting the max avoids overflow",
                  [(torch.softmax(scores, 0), "you normalised over the wrong axis: use dim=-1 (over keys)")])
    scores = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(3))
    got = call("02.softmax", "4-D scores", fn, scores)
    expect_tensor("02.softmax", "4-D scores (2, 3, 4, 5)", got, torch.softmax(scores, -1),
                  "normalise along the last axis, keeping every other axis",
                  [(torch.softmax(scores, -2), "you normalised over the wrong axis: use dim=-1 (over keys)")])
    return 2


@task("02.causal_mask")
def check_causal_mask(fn) -> int:
    for size in (4, 7, 1):  # larger first: a 1x1 mask cannot tell mistakes apart
        expected = torch.ones(size, size, dtype=torch.bool).tril()
        got = call("02.causal_mask", f"T={size}", fn, size)
        expect_tensor("02.causal_mask", f"T={size}", got, expected,
                      "True on and below the diagonal: position t may attend to positions 0..t",
                      [(expected.T, "that is the transpose: queries are rows, keys are columns"),
                       (~expected, "the mask is inverted: True must mean 'may attend'"),
                       (torch.ones(size, size, dtype=torch.bool).tril(-1),
                        "off by one: a position may attend to ITSELF (include the diagonal)"),
                       (torch.ones(size, size, dtype=torch.bool).tril(1), "off by one: t may not see t + 1")])
    return 3


@task("02.padding_mask")
def check_padding_mask(fn) -> int:
    lengths, max_len = torch.tensor([3, 1, 5, 0]), 5
    expected = torch.arange(max_len)[None] < lengths[:, None]
    got = call("02.padding_mask", "lengths [3, 1, 5, 0], max_len 5", fn, lengths, max_len)
    expect_tensor("02.padding_mask", "lengths [3, 1, 5, 0], max_len 5", got, expected,
                  "row b is True at positions 0..lengths[b]-1 (the real tokens), False on the padding",
                  [(~expected, "inverted: True must mark real tokens, False padding"),
                   (torch.arange(max_len)[None] <= lengths[:, None], "off by one: position lengths[b] is padding")])
    return 1


def _reference(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, -1)


def _wrong_weights(q, k, mask):
    raw = q @ k.transpose(-2, -1)
    scaled = raw / math.sqrt(q.shape[-1])
    wrongs = [(torch.softmax(raw if mask is None else raw.masked_fill(~mask, float("-inf")), -1),
               "the weights are too peaked: divide the scores by sqrt(d) before the softmax"),
              (torch.softmax(scaled if mask is None else scaled.masked_fill(~mask, float("-inf")), -2),
               "softmax over the wrong axis: each query's weights over the KEYS (dim=-1) must sum to 1")]
    if mask is not None:
        wrongs += [(torch.softmax(scaled, -1) * mask, "the mask was applied after the softmax, so rows no "
                    "longer sum to 1: fill masked scores with -inf BEFORE the softmax"),
                   (torch.softmax(scaled.masked_fill(mask, float("-inf")), -1),
                    "the mask is inverted: True means 'may attend', so fill where the mask is False")]
    return wrongs


@task("02.scaled_dot_product_attention")
def check_sdpa(fn) -> int:
    g = torch.Generator().manual_seed(7)
    causal = torch.ones(4, 5, dtype=torch.bool).tril(1)
    padding = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, None, :]
    cases = [("no mask, Tq=4, Tk=5, d=8", _qkv(), None),
             ("batch 2 x 3 heads, causal-style mask (4, 5)", _qkv(2, 3), causal),
             ("batch 2 x 3 heads, padding mask (2, 1, 1, 5)", _qkv(2, 3, seed=9), padding),
             ("random mask, every row keeps one key", _qkv(2, seed=11),
              (torch.rand(2, 4, 5, generator=g) > 0.5) | torch.eye(4, 5, dtype=torch.bool))]
    for case, (q, k, v), mask in cases:
        result = call("02.scaled_dot_product_attention", case, fn, q, k, v, mask)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise CheckFailed(f"02.scaled_dot_product_attention: case '{case}': return a tuple (output, weights), "
                              f"got {type(result).__name__}")
        output, weights = result
        expected_weights = _reference(q, k, v, mask)
        expect_tensor("02.scaled_dot_product_attention", case + " (weights)", weights, expected_weights,
                      "weights = softmax(q @ k^T / sqrt(d), masked with -inf where mask is False) over the keys",
                      _wrong_weights(q, k, mask))
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        expect_tensor("02.scaled_dot_product_attention", case + " (output vs torch's SDPA)", output, expected,
                      "output = weights @ v")
    try:
        call("02.scaled_dot_product_attention", "mask=None default", fn, *_qkv())
    except CheckFailed:
        fail("02.scaled_dot_product_attention", "called without a mask", "(output, weights)", "an error",
             "give mask a default of None and skip masking when it is None")
    return len(cases) + 1
