"""Checks for lesson 03: multi-head attention, positional encoding, the Transformer block."""

from __future__ import annotations

import torch

from ..core.attention import multi_head_attention, scaled_dot_product_attention, sinusoidal_positional_encoding
from ._core import call, expect_tensor, fresh_generator, fresh_rng, task
from ._messages import tr


@task("03.sinusoidal_positional_encoding")
def check_positional_encoding(fn) -> int:
    rng = fresh_rng()
    cases = [(rng.randint(5, 40), rng.randint(3, 10) * 2), (rng.randint(2, 20) * 2 + 1, rng.randint(1, 4) * 2),
             (50, 16), (1, 4), (7, 2)]
    for length, d_model in cases:
        case = f"T={length}, d={d_model}"
        expected = sinusoidal_positional_encoding(length, d_model)
        position = torch.arange(length, dtype=torch.float32)[:, None]
        even = torch.arange(d_model) % 2 == 0

        def interleave(angles, even=even):
            return torch.where(even, torch.sin(angles), torch.cos(angles))

        half = position / torch.pow(10000.0, torch.arange(0, d_model, 2) / d_model)
        diagnoses = [
            (torch.stack([expected[:, 1::2], expected[:, 0::2]], dim=-1).flatten(1),
             tr("sin and cos are swapped: sin goes on EVEN dimensions, cos on odd ones")),
            (interleave(position / torch.pow(10000.0, torch.arange(d_model) / d_model)),
             tr("dimensions 2i and 2i+1 share one frequency: the exponent is 2i/d, so use the even index for both")),
            (interleave(position / torch.pow(10000.0, 2 * torch.arange(d_model) / d_model)),
             tr("dimensions 2i and 2i+1 share one frequency: 10000^(2i/d) with i = dimension // 2")),
            (sinusoidal_positional_encoding(length + 1, d_model)[1:], tr("positions start at 0, not 1")),
            (torch.cat([torch.sin(half), torch.cos(half)], dim=1),
             tr("interleave them: sin in the even columns 0, 2, 4, ..., cos in the odd ones (not halves side by side)")),
        ]
        got = call("03.sinusoidal_positional_encoding", case, fn, length, d_model)
        expect_tensor("03.sinusoidal_positional_encoding", case, got, expected,
                      tr("PE[t, 2i] = sin(t / 10000^(2i/d)) and PE[t, 2i+1] = cos(t / 10000^(2i/d))"), diagnoses)
    return len(cases)


@task("03.split_heads")
def check_split_heads(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = [(rng.randint(1, 3), rng.randint(2, 7), rng.randint(2, 4), rng.randint(2, 5)) for _ in range(2)]
    cases += [(2, 3, 3, 4), (1, 5, 1, 6)]  # T equal to the number of heads; one head
    for batch, length, heads, d_head in cases:
        x = torch.randn(batch, length, heads * d_head, generator=g)
        case = tr("x {shape}, {heads} heads", shape=tuple(x.shape), heads=heads)
        expected = x.view(batch, length, heads, d_head).transpose(1, 2)
        got = call("03.split_heads", case, fn, x, heads)
        expect_tensor("03.split_heads", case, got, expected,
                      tr("view as (B, T, heads, d_head), then transpose(1, 2) to (B, heads, T, d_head)"),
                      [(x.reshape(batch, heads, length, d_head), tr("a reshape straight to (B, heads, T, d_head) "
                                                                    "mixes time steps into heads: reshape to (B, T, "
                                                                    "heads, d_head) first, then transpose(1, 2)")),
                       (x.view(batch, length, d_head, heads).permute(0, 3, 1, 2), tr("head h holds the CONSECUTIVE "
                                                                                     "features h*d_head .. "
                                                                                     "(h+1)*d_head - 1: view as (B, "
                                                                                     "T, heads, d_head), not (B, T, "
                                                                                     "d_head, heads)")),
                       (x.view(batch, length, heads, d_head), tr("now transpose(1, 2): the result is (B, heads, T, "
                                                                 "d_head)"))])
    return len(cases)


def _torch_mha(x, w_q, w_k, w_v, w_o, n_heads, mask):
    batch, length, d_model = x.shape
    mha = torch.nn.MultiheadAttention(d_model, n_heads, bias=False, batch_first=True)
    attn_mask = None
    if mask is not None:  # nn.MultiheadAttention: True = NOT allowed, one (T, T) mask per batch element and head
        attn_mask = ~mask.expand(batch, n_heads, length, length).reshape(batch * n_heads, length, length)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w_q.T, w_k.T, w_v.T]))
        mha.out_proj.weight.copy_(w_o.T)
        out, _ = mha(x, x, x, attn_mask=attn_mask, need_weights=False)
    return out


def _mha_diagnoses(x, w_q, w_k, w_v, w_o, n_heads, mask):
    batch, length, d_model = x.shape
    d_head = d_model // n_heads
    q, k, v = ((x @ w).view(batch, length, n_heads, d_head).transpose(1, 2) for w in (w_q, w_k, w_v))
    heads, _ = scaled_dot_product_attention(q, k, v, mask)
    no_transpose = [(x @ w).reshape(batch, n_heads, length, d_head) for w in (w_q, w_k, w_v)]
    wrong_split, _ = scaled_dot_product_attention(*no_transpose, mask)
    over_scaled, _ = scaled_dot_product_attention(q * (d_head / d_model) ** 0.5, k, v, mask)
    split_hint = tr("heads were split by a reshape without the transpose: view (B, T, H, d_head), then transpose(1, "
                    "2)")
    diagnoses = [(wrong_split.reshape(batch, length, d_model) @ w_o, split_hint),
                 (wrong_split.transpose(1, 2).reshape(batch, length, d_model) @ w_o, split_hint),
                 (heads.reshape(batch, length, d_model) @ w_o, tr("heads were merged by a reshape without the "
                                                                  "transpose: heads.transpose(1, 2).reshape(B, T, "
                                                                  "d_model)")),
                 (heads.transpose(1, 2).reshape(batch, length, d_model), tr("you forgot the output projection @ w_o"))]
    if n_heads > 1:
        diagnoses += [(multi_head_attention(x, w_q, w_k, w_v, w_o, 1, mask),
                       tr("this is single-head attention: split q, k and v into n_heads heads")),
                      (over_scaled.transpose(1, 2).reshape(batch, length, d_model) @ w_o,
                       tr("each head scales by sqrt(d_head), the size of ITS vectors, not sqrt(d_model)"))]
    return diagnoses


@task("03.multi_head_attention", forbid=("multi_head_attention",))
def check_multi_head_attention(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = []
    for n_heads, mask_kind in ((rng.choice([2, 3, 4]), None), (rng.choice([2, 4]), "causal"),
                               (rng.choice([2, 3]), "padding"), (1, None), (rng.choice([2, 4]), "one key")):
        batch, length, d_head = rng.randint(1, 3), rng.randint(3, 7), rng.randint(2, 5)
        d_model = n_heads * d_head
        x = torch.randn(batch, length, d_model, generator=g)
        weights = [torch.randn(d_model, d_model, generator=g) / d_model**0.5 for _ in range(4)]
        if mask_kind == "causal":
            mask = torch.ones(length, length, dtype=torch.bool).tril()
        elif mask_kind == "padding":
            lengths = torch.randint(1, length + 1, (batch,), generator=g)
            mask = (torch.arange(length)[None] < lengths[:, None])[:, None, None, :]
        elif mask_kind == "one key":
            mask = torch.zeros(length, length, dtype=torch.bool)
            mask[:, 0] = True
        else:
            mask = None
        shape = None if mask is None else tuple(mask.shape)
        shown = {None: tr("no mask"), "causal": tr("causal mask {shape}", shape=shape),
                 "padding": tr("padding mask {shape}", shape=shape), "one key": tr("one key mask {shape}", shape=shape)}[
            mask_kind if mask is not None else None]
        cases.append((tr("x {shape}, {n_heads} head{s}, {shown}", shape=tuple(x.shape), n_heads=n_heads,
                         s="s" if n_heads > 1 else "", shown=shown), x, weights, n_heads, mask))
    for case, x, weights, n_heads, mask in cases:
        expected = _torch_mha(x, *weights, n_heads, mask)
        got = call("03.multi_head_attention", case, fn, x, *weights, n_heads, mask)
        expect_tensor("03.multi_head_attention", tr("{case}, vs torch.nn.MultiheadAttention", case=case), got, expected,
                      tr("project with x @ w, split heads, attend per head, merge heads, then @ w_o"),
                      _mha_diagnoses(x, *weights, n_heads, mask))
    return len(cases)


@task("03.layer_norm", forbid=("layer_norm",))
def check_layer_norm(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    width = rng.randint(4, 12)
    constant = torch.randn(3, 4, width, generator=g)
    constant[0, 1] = 2.5
    constant[2, 3] = -1.0
    cases = [(tr("3-D"), torch.randn(2, rng.randint(2, 5), width, generator=g) * 3 + 1),
             (tr("2-D"), torch.randn(rng.randint(2, 6), width, generator=g) * 5 - 2),
             (tr("4-D"), torch.randn(2, 2, 3, width, generator=g)),
             (tr("3-D with two constant rows"), constant),
             (tr("3-D with tiny spread, where eps matters"), torch.randn(3, 2, width, generator=g) * 0.01 + 0.5)]
    for name, x in cases:
        gamma, beta = torch.randn(width, generator=g), torch.randn(width, generator=g)
        case = f"{name}, x {tuple(x.shape)}"
        expected = torch.nn.functional.layer_norm(x, (width,), gamma, beta, eps=1e-5)
        mean, var = x.mean(-1, keepdim=True), x.var(-1, keepdim=True, unbiased=False)
        normed = (x - mean) / torch.sqrt(var + 1e-5)
        diagnoses = [((x - mean) / torch.sqrt(x.var(-1, keepdim=True) + 1e-5) * gamma + beta,
                      tr("use the biased variance (unbiased=False), as LayerNorm does")),
                     (normed, tr("scale by gamma and shift by beta at the end: normalised * gamma + beta")),
                     (normed * beta + gamma, tr("gamma scales and beta shifts: normalised * gamma + beta")),
                     ((x - mean) / (torch.sqrt(var) + 1e-5) * gamma + beta, tr("eps goes INSIDE the square root: "
                                                                               "sqrt(var + eps)")),
                     ((x - mean) / (var + 1e-5) * gamma + beta, tr("divide by the standard deviation sqrt(var + "
                                                                   "eps), not by the variance"))]
        if x.shape[0] > 1:
            diagnoses.append(((x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5) * gamma + beta,
                              tr("that normalises over the batch (BatchNorm): LayerNorm uses the last axis")))
        got = call("03.layer_norm", case, fn, x, gamma, beta)
        expect_tensor("03.layer_norm", tr("{case} vs torch.nn.functional.layer_norm", case=case), got, expected,
                      tr("normalise each token over its features (last axis): (x - mean) / sqrt(var + eps) * gamma + "
                         "beta"),
                      diagnoses, nan_hint=tr("a constant row has variance 0: add eps inside the square root, "
                                             "sqrt(var + eps), so you never divide by zero"))
    return len(cases)
