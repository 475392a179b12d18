"""Checks for lesson 06: attention rollout, attention distance, finding heads."""

from __future__ import annotations

import torch

from ..viz import attention_rollout, mean_attention_distance
from ._core import call, expect_tensor, fail, task


def _random_attention(layers=3, heads=4, length=6, seed=606):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(layers, heads, length, length, generator=g) * 2, dim=-1)


@task("06.attention_rollout")
def check_rollout(fn) -> int:
    attention = _random_attention()
    expected = attention_rollout(attention)
    wrong_order = torch.eye(6)
    for layer in attention:
        mixed = 0.5 * layer.mean(0) + 0.5 * torch.eye(6)
        wrong_order = wrong_order @ (mixed / mixed.sum(-1, keepdim=True))
    no_residual = torch.eye(6)
    for layer in attention:
        no_residual = layer.mean(0) @ no_residual
    got = call("06.attention_rollout", "3 layers x 4 heads, T=6", fn, attention)
    expect_tensor("06.attention_rollout", "3 layers x 4 heads, T=6", got, expected,
                  "per layer: A = 0.5 * mean over heads + 0.5 * I, rows normalised; rollout = A_L @ ... @ A_1",
                  [(wrong_order, "multiply in the other order: each new layer goes on the LEFT (A_l @ rollout)"),
                   (no_residual, "add the identity for the residual connection: 0.5 * A + 0.5 * I, then renormalise")])
    return 1


@task("06.mean_attention_distance")
def check_distance(fn) -> int:
    weights = _random_attention(1, 4, 7)[0]
    expected = mean_attention_distance(weights)
    positions = torch.arange(7.0)
    signed = (weights * (positions[:, None] - positions[None, :])).sum(-1).mean(-1)
    got = call("06.mean_attention_distance", "4 heads, T=7", fn, weights)
    expect_tensor("06.mean_attention_distance", "4 heads, T=7", got, expected,
                  "for each head: sum_j w[i, j] * |i - j|, averaged over the queries i",
                  [(signed, "use the absolute distance |i - j|, not the signed one")])
    previous = torch.zeros(1, 5, 5)
    previous[0, 0, 0] = 1
    previous[0, torch.arange(1, 5), torch.arange(4)] = 1
    got = call("06.mean_attention_distance", "a previous-token head", fn, previous)
    expect_tensor("06.mean_attention_distance", "a head that always looks one token back (T=5)", got,
                  torch.tensor([0.8]), "4 of the 5 queries look 1 position back, the first looks at itself: 0.8")
    return 2


@task("06.previous_token_head")
def check_previous_head(fn) -> int:
    attention = _random_attention(3, 4, 8, seed=607)
    target = torch.zeros(8, 8)
    target[0, 0] = 1
    target[torch.arange(1, 8), torch.arange(7)] = 1
    attention[2, 1] = 0.9 * target + 0.1 * attention[2, 1]
    attention[1, 3] = 0.6 * target.T + 0.4 * attention[1, 3]  # a decoy: looks one token AHEAD
    got = call("06.previous_token_head", "3 layers x 4 heads, T=8", fn, attention)
    if tuple(int(v) for v in got) != (2, 1):
        hint = ("that head attends to the NEXT token: look at w[i, i-1] (just below the diagonal)"
                if tuple(int(v) for v in got) == (1, 3) else
                "for each (layer, head) average w[i, i-1] over i = 1..T-1 (torch.diagonal(w, offset=-1)); take the argmax")
        fail("06.previous_token_head", "3 layers x 4 heads, T=8", (2, 1), got, hint)
    return 1


@task("06.special_token_share")
def check_special_share(fn) -> int:
    weights = _random_attention(1, 3, 6, seed=608)[0]
    special = torch.tensor([True, False, False, False, False, True])
    expected = weights[..., special].sum(-1).mean(-1)
    got = call("06.special_token_share", "3 heads, T=6, [CLS] and [SEP] special", fn, weights, special)
    expect_tensor("06.special_token_share", "3 heads, T=6", got, expected,
                  "for each head: the weight on special KEYS (columns), summed per query, averaged over queries",
                  [(weights[..., special, :].sum(-2).mean(-1), "select special tokens among the keys "
                    "(last axis), not among the queries")])
    return 1
