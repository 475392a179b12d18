"""Checks for lesson 06: attention rollout, attention distance, finding heads."""

from __future__ import annotations

import torch

from ..inside.viz import attention_rollout, mean_attention_distance
from ._core import as_number, call, expect_tensor, expect_tuple, fail, fresh_generator, fresh_rng, task
from ._messages import tr


def _random_attention(g, *shape):
    return torch.softmax(torch.randn(*shape, generator=g) * 2, dim=-1)


def _rollout(attention, combine=lambda layer: layer.mean(0), left=True, residual=True):
    size = attention.shape[-1]
    rollout = torch.eye(size)
    for layer in attention:
        mixed = 0.5 * combine(layer) + 0.5 * torch.eye(size) if residual else combine(layer)
        mixed = mixed / mixed.sum(-1, keepdim=True)
        rollout = mixed @ rollout if left else rollout @ mixed
    return rollout


@task("06.attention_rollout")
def check_rollout(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    shapes = [(rng.randint(2, 4), rng.randint(2, 4), rng.randint(3, 8)) for _ in range(2)] + [(1, 3, 5), (3, 1, 4)]
    for layers, heads, length in shapes:
        attention = _random_attention(g, layers, heads, length, length)
        case = tr("{layers} layer{s} x {heads} head{s2}, T={length}", layers=layers, s="s" if layers > 1 else "",
                  heads=heads, s2="s" if heads > 1 else "", length=length)
        got = call("06.attention_rollout", case, fn, attention)
        expect_tensor("06.attention_rollout", case, got, attention_rollout(attention),
                      tr("per layer: A = 0.5 * mean over heads + 0.5 * I, rows normalised; rollout = A_L @ ... @ A_1"),
                      [(_rollout(attention, left=False), tr("multiply in the other order: each new layer goes on the "
                                                            "LEFT (A_l @ rollout)")),
                       (_rollout(attention, residual=False), tr("add the identity for the residual connection: 0.5 * "
                                                                "A + 0.5 * I, then renormalise")),
                       (_rollout(attention, combine=lambda layer: layer.sum(0)), tr("average over the heads (mean), "
                                                                                    "don't sum them")),
                       (_rollout(attention, combine=lambda layer: layer.amax(0)), tr("average over the heads (mean), "
                                                                                     "don't take the maximum")),
                       (_rollout(attention[-1:]), tr("multiply ALL the layers, not only the last"))])
    return len(shapes)


@task("06.mean_attention_distance")
def check_distance(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = []
    for heads, length in ((rng.randint(2, 5), rng.randint(4, 9)), (1, rng.randint(3, 7))):
        cases.append((tr("{heads} head{s}, T={length}", heads=heads, s="s" if heads > 1 else "", length=length),
                      _random_attention(g, heads, length, length)))
    previous = torch.zeros(1, 5, 5)
    previous[0, 0, 0] = 1
    previous[0, torch.arange(1, 5), torch.arange(4)] = 1
    cases.append((tr("a head that always looks one token back, T=5"), previous))
    length = rng.randint(3, 8)
    cases.append((tr("a uniform head (constant rows) and a self head, T={length}", length=length),
                   torch.stack([torch.full((length, length), 1 / length), torch.eye(length)])))
    for case, weights in cases:
        length = weights.shape[-1]
        positions = torch.arange(length, dtype=weights.dtype)
        offsets = positions[:, None] - positions[None, :]
        got = call("06.mean_attention_distance", case, fn, weights)
        expect_tensor("06.mean_attention_distance", case, got, mean_attention_distance(weights),
                      tr("for each head: sum_j w[i, j] * |i - j|, averaged over the queries i"),
                      [((weights * offsets).sum(-1).mean(-1), tr("use the absolute distance |i - j|, not the signed "
                                                                 "one")),
                       ((weights * offsets.abs()).mean(-1).mean(-1), tr("weight the distances and SUM over the keys "
                                                                        "(the weights already sum to 1); then "
                                                                        "average over the queries")),
                       ((weights * offsets.abs()).sum(-1).sum(-1), tr("average over the queries (mean), don't sum")),
                       ((weights * offsets**2).sum(-1).mean(-1), tr("use |i - j|, not its square"))])
    return len(cases)


def _plant(g, layers, heads, length, strength):
    attention = torch.softmax(torch.randn(layers, heads, length, length, generator=g), dim=-1)
    previous = torch.zeros(length, length)
    previous[0, 0] = 1
    previous[torch.arange(1, length), torch.arange(length - 1)] = 1
    cells = torch.randperm(layers * heads, generator=g)[:3].tolist() + [None] * 3
    target, ahead, itself = (None if c is None else divmod(c, heads) for c in cells[:3])
    attention[target] = strength * previous + (1 - strength) * attention[target]
    if ahead is not None:  # decoys: a head that looks one token AHEAD, one that looks at itself
        attention[ahead] = 0.95 * previous.T + 0.05 * attention[ahead]
    if itself is not None:
        attention[itself] = 0.95 * torch.eye(length) + 0.05 * attention[itself]
    return attention, target, ahead, itself


@task("06.previous_token_head")
def check_previous_head(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    task_id = "06.previous_token_head"
    shapes = [(rng.randint(2, 4), rng.randint(3, 6), rng.randint(5, 10)), (3, 4, 8), (1, 3, 6), (4, 1, 5)]
    for layers, heads, length in shapes:
        attention, target, ahead, itself = _plant(g, layers, heads, length, rng.uniform(0.7, 0.9))
        case = tr("{layers} layer{s} x {heads} head{s2}, T={length}", layers=layers, s="s" if layers > 1 else "",
                  heads=heads, s2="s" if heads > 1 else "", length=length)
        got = call(task_id, case, fn, attention)
        if isinstance(got, (int, torch.Tensor)) and not isinstance(got, bool):
            fail(task_id, case, target, got, tr("return a tuple (layer, head) of two numbers: for a flat index into "
                                                "the (layers, heads) grid, divmod(index, n_heads) gives them"))
        layer, head = expect_tuple(task_id, case, got, ("layer", "head"))
        layer = as_number(task_id, case + " (layer)", layer, target[0], integer=True)
        head = as_number(task_id, case + " (head)", head, target[1], integer=True)
        if (layer, head) == target:
            continue
        if (layer, head) == ahead:
            hint = tr("that head attends to the NEXT token: look at w[i, i-1], just below the diagonal")
        elif (layer, head) == itself:
            hint = tr("that head attends to ITSELF (the diagonal): look at w[i, i-1], just below it")
        elif (head, layer) == target:
            hint = tr("layer and head are swapped: return (layer, head)")
        else:
            hint = (tr("for each (layer, head) average w[i, i-1] over i = 1..T-1 (torch.diagonal(w, offset=-1, "
                       "dim1=-2, dim2=-1)); take the argmax"))
        fail(task_id, case, target, (layer, head), hint)
    return len(shapes)


@task("06.special_token_share")
def check_special_share(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = []
    for heads, length in ((rng.randint(2, 5), rng.randint(5, 10)), (rng.randint(1, 3), rng.randint(6, 9))):
        special = torch.zeros(length, dtype=torch.bool)
        special[[0, -1]] = True
        if len(cases) == 1:
            special[rng.randint(2, length - 3)] = True  # a sentence pair: [CLS] a [SEP] b [SEP]
        cases.append((heads, special))
    only = torch.zeros(rng.randint(4, 7), dtype=torch.bool)
    only[0] = True
    cases.append((2, only))
    for heads, special in cases:
        length = len(special)
        weights = _random_attention(g, heads, length, length)
        case = tr("{heads} head{s}, T={length}, special at {positions}", heads=heads, s="s" if heads > 1 else "",
                  length=length, positions=special.nonzero().flatten().tolist())
        expected = weights[..., special].sum(-1).mean(-1)
        got = call("06.special_token_share", case, fn, weights, special)
        expect_tensor("06.special_token_share", case, got, expected,
                      tr("for each head: the weight on special KEYS (columns), summed per query, averaged over "
                         "queries"),
                      [(weights[..., special, :].sum(-2).mean(-1), tr("select special tokens among the keys (last "
                                                                      "axis), not among the queries")),
                       (1 - expected, tr("that is the share of the ORDINARY tokens: sum the weights on the special "
                                         "ones")),
                       (weights[..., special].sum(-1).sum(-1), tr("average over the queries (mean), don't sum")),
                       (weights[..., special].mean(-1).mean(-1), tr("SUM the weights on the special keys per query "
                                                                    "(a share), then average over the queries"))])
    return len(cases)
