"""Checks for lesson 03: multi-head attention, positional encoding, the Transformer block."""

from __future__ import annotations

import torch

from ..attention import multi_head_attention, scaled_dot_product_attention, sinusoidal_positional_encoding
from ._core import call, expect_tensor, task


@task("03.sinusoidal_positional_encoding")
def check_positional_encoding(fn) -> int:
    for length, d_model in ((6, 8), (50, 16), (3, 4)):
        case = f"T={length}, d={d_model}"
        expected = sinusoidal_positional_encoding(length, d_model)
        swapped = torch.stack([expected[:, 1::2], expected[:, 0::2]], dim=-1).flatten(1)
        position = torch.arange(length, dtype=torch.float32)[:, None]
        per_dim = position / torch.pow(10000.0, torch.arange(d_model) / d_model)  # exponent i/d instead of 2i/d
        wrong_exponent = torch.where(torch.arange(d_model) % 2 == 0, torch.sin(per_dim), torch.cos(per_dim))
        got = call("03.sinusoidal_positional_encoding", case, fn, length, d_model)
        expect_tensor("03.sinusoidal_positional_encoding", case, got, expected,
                      "PE[t, 2i] = sin(t / 10000^(2i/d)) and PE[t, 2i+1] = cos(t / 10000^(2i/d))",
                      [(swapped, "sin and cos are swapped: sin goes on EVEN dimensions, cos on odd ones"),
                       (wrong_exponent, "dimensions 2i and 2i+1 share one frequency: the exponent is 2i/d, "
                        "so use the even index for both")])
    return 3


def _x_and_weights(batch=2, length=5, d_model=12, seed=303):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, d_model, generator=g)
    weights = [torch.randn(d_model, d_model, generator=g) / d_model**0.5 for _ in range(4)]
    return x, weights


@task("03.split_heads")
def check_split_heads(fn) -> int:
    x, _ = _x_and_weights()
    expected = x.view(2, 5, 3, 4).transpose(1, 2)
    got = call("03.split_heads", "x (2, 5, 12), 3 heads", fn, x, 3)
    expect_tensor("03.split_heads", "x (2, 5, 12), 3 heads", got, expected,
                  "view as (B, T, heads, d_head), then transpose(1, 2) to (B, heads, T, d_head)",
                  [(x.reshape(2, 3, 5, 4), "a reshape straight to (B, heads, T, d_head) mixes time steps "
                    "into heads: reshape to (B, T, heads, d_head) first, then transpose(1, 2)")])
    return 1


def _torch_mha(x, w_q, w_k, w_v, w_o, n_heads, mask):
    d_model = x.shape[-1]
    mha = torch.nn.MultiheadAttention(d_model, n_heads, bias=False, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w_q.T, w_k.T, w_v.T]))
        mha.out_proj.weight.copy_(w_o.T)
        out, _ = mha(x, x, x, attn_mask=None if mask is None else ~mask, need_weights=False)
    return out


def _no_transpose_mha(x, w_q, w_k, w_v, w_o, n_heads, mask):
    batch, length, d_model = x.shape
    q, k, v = ((x @ w).reshape(batch, n_heads, length, d_model // n_heads) for w in (w_q, w_k, w_v))
    heads, _ = scaled_dot_product_attention(q, k, v, mask)
    return heads.reshape(batch, length, d_model) @ w_o


@task("03.multi_head_attention")
def check_multi_head_attention(fn) -> int:
    x, weights = _x_and_weights()
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    cases = [("3 heads, no mask", 3, None), ("3 heads, causal mask (5, 5)", 3, causal),
             ("4 heads, causal mask", 4, causal), ("1 head", 1, None)]
    for case, n_heads, mask in cases:
        got = call("03.multi_head_attention", case, fn, x, *weights, n_heads, mask)
        expected = _torch_mha(x, *weights, n_heads, mask)
        single_head = multi_head_attention(x, *weights, 1, mask)
        diagnoses = [(_no_transpose_mha(x, *weights, n_heads, mask),
                      "heads were split by a reshape without the transpose: view (B, T, H, d_head), then transpose(1, 2)")]
        if n_heads > 1:
            diagnoses.append((single_head, "this is single-head attention: split q, k and v into n_heads heads"))
        expect_tensor("03.multi_head_attention", f"x (2, 5, 12), {case}, vs torch.nn.MultiheadAttention", got,
                      expected, "project with x @ w, split heads, attend per head, merge heads, then @ w_o", diagnoses)
    return len(cases)


@task("03.layer_norm")
def check_layer_norm(fn) -> int:
    g = torch.Generator().manual_seed(304)
    x = torch.randn(2, 3, 8, generator=g) * 3 + 1
    gamma, beta = torch.randn(8, generator=g), torch.randn(8, generator=g)
    expected = torch.nn.functional.layer_norm(x, (8,), gamma, beta, eps=1e-5)
    mean = x.mean(-1, keepdim=True)
    unbiased = (x - mean) / torch.sqrt(x.var(-1, keepdim=True, unbiased=True) + 1e-5) * gamma + beta
    over_batch = (x - x.mean(0, keepdim=True)) / torch.sqrt(x.var(0, keepdim=True, unbiased=False) + 1e-5) * gamma + beta
    got = call("03.layer_norm", "x (2, 3, 8)", fn, x, gamma, beta)
    expect_tensor("03.layer_norm", "x (2, 3, 8) vs torch.nn.functional.layer_norm", got, expected,
                  "normalise each token over its features (last axis): (x - mean) / sqrt(var + eps) * gamma + beta",
                  [(unbiased, "use the biased variance (unbiased=False), as LayerNorm does"),
                   (over_batch, "that normalises over the batch (BatchNorm): LayerNorm uses the last axis")])
    return 1
