"""Plausible wrong answers fail, each with the hint that names its mistake."""

import copy
import math
import statistics

import pytest
import torch
import torch.nn.functional as F
from test_grading import (
    CORRECT,
    distance,
    layer_norm,
    positional_encoding,
    rollout,
    run_rnn,
    sample_next,
    sdpa,
    softmax,
    time_fn,
    warmup_cosine,
)

from attention_course.grading import check


def sdpa_with(weights_from):
    def answer(q, k, v, mask=None):
        raw = q @ k.transpose(-2, -1)
        w = weights_from(raw, q.shape[-1], mask)
        return w @ v, w
    return answer


def masked(s, mask):
    return s if mask is None else s.masked_fill(~mask, float("-inf"))


def mha_custom(split, merge, scale=None, project=True, heads=None):
    def answer(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
        b, t, d = x.shape
        h = heads or n_heads
        q, k, v = (split(x @ w, b, t, d, h) for w in (w_q, w_k, w_v))
        s = q @ k.transpose(-2, -1) / math.sqrt(scale or d // h)
        out = softmax(masked(s, mask)) @ v
        out = merge(out, b, t, d)
        return out @ w_o if project else out
    return answer


def good_split(y, b, t, d, h):
    return y.view(b, t, h, d // h).transpose(1, 2)


def good_merge(out, b, t, d):
    return out.transpose(1, 2).reshape(b, t, d)


def timer(sync_each=True, sync_warmup=True, reduce=statistics.median, time_warmup=False):
    def answer(work, sync, clock, repeats=5, warmup=2):
        durations = []
        for _ in range(warmup):
            start = clock() if time_warmup else None
            work()
            if time_warmup:
                sync()
                durations.append(clock() - start)
        if sync_warmup:
            sync()
        for _ in range(repeats):
            start = clock()
            work()
            if sync_each:
                sync()
            durations.append(clock() - start)
        sync()
        return float(reduce(durations))
    return answer


def rollout_with(step):
    def answer(attentions):
        r = torch.eye(attentions.shape[-1])
        for layer in attentions:
            r = step(layer, r)
        return r
    return answer


def mixed(layer, combine=lambda layer: layer.mean(0)):
    m = 0.5 * combine(layer) + 0.5 * torch.eye(layer.shape[-1])
    return m / m.sum(-1, keepdim=True)


def freeze_all(model):
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def freeze_attribute(model):
    model.encoder.requires_grad = False
    return model


def sample_greedy(logits, temperature=1.0, top_k=None, generator=None):
    return logits.argmax(-1, keepdim=True)


def sample_flat(logits, temperature=1.0, top_k=None, generator=None):
    return sample_next(logits, temperature, top_k, generator).flatten()


def sample_without_generator(logits, temperature=1.0, top_k=None, generator=None):
    return sample_next(logits, temperature, top_k, None)


def sample_top_k_inclusive(logits, temperature=1.0, top_k=None, generator=None):
    logits = logits / temperature
    if top_k is not None:  # <= drops the k-th best too: k - 1 tokens are left
        logits = logits.masked_fill(logits <= logits.topk(top_k, -1).values[:, -1:], float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)


def pe_halves(length, d):
    angles = torch.arange(length)[:, None] / 10000 ** (torch.arange(0, d, 2) / d)
    return torch.cat([angles.sin(), angles.cos()], 1)


def pe_per_dimension(length, d):
    angles = torch.arange(length)[:, None] / 10000 ** (torch.arange(d) / d)
    return torch.where(torch.arange(d) % 2 == 0, angles.sin(), angles.cos())


def lr_linear(s, w, total, hi, lo):
    if s < w or s >= total:
        return warmup_cosine(s, w, total, hi, lo)
    return hi - (hi - lo) * (s - w) / (total - w)


WRONG = [
    ("01.rnn_step", lambda x, h, wx, wh, b: x @ wx + h @ wh + b, "tanh"),
    ("01.rnn_step", lambda x, h, wx, wh, b: torch.tanh(x @ wx + b), "h_prev"),
    ("01.rnn_step", lambda x, h, wx, wh, b: torch.tanh(x @ wx + h @ wh), "bias"),
    ("01.rnn_step", lambda x, h, wx, wh, b: torch.relu(x @ wx + h @ wh + b), "not ReLU"),
    ("01.rnn_step", lambda x, h, wx, wh, b: torch.tanh(x @ wx + h @ wh.T + b), "not w_hh.T"),
    ("01.run_rnn", lambda xs, h, wx, wh, b: run_rnn(xs, h, wx, wh.T, b), "not w_hh.T"),
    ("01.run_rnn", lambda xs, h, wx, wh, b: torch.tanh(xs @ wx + (h @ wh)[:, None] + b), "feed the NEW state"),
    ("01.run_rnn", lambda xs, h, wx, wh, b: run_rnn(xs, h, wx, wh, b)[:, -1], "only the last state"),
    ("01.run_rnn", lambda xs, h, wx, wh, b: torch.cat([h[:, None], run_rnn(xs, h, wx, wh, b)], 1), "leave h0 out"),
    ("01.run_rnn", lambda xs, h, wx, wh, b: torch.cat([h[:, None], run_rnn(xs, h, wx, wh, b)[:, :-1]], 1), "one step late"),
    ("01.run_rnn", lambda xs, h, wx, wh, b: run_rnn(xs, h, wx, wh, b).transpose(0, 1), "dim=1"),
    ("01.path_length", lambda kind, i, j: j - i + 1 if kind == "rnn" else 1, "off by one"),
    ("01.path_length", lambda kind, i, j: abs(j - i), "connects every pair"),
    ("01.path_length", lambda kind, i, j: j - i if kind == "rnn" else 1, "reaches itself in 0 steps"),
    ("01.accuracy", lambda logits, labels: (logits.argmax(-1) == labels).sum().item() * 1.0, "count"),
    ("01.accuracy", lambda logits, labels: (logits.argmax(0) == labels[: logits.shape[1]]).float().mean().item(),
     "class axis"),
    ("01.accuracy", lambda logits, labels: (logits.argmax(-1) != labels).float().mean().item(), "error rate"),
    ("01.accuracy", lambda logits, labels: (logits.argmax(-1) == labels).float().mean(), ".item()"),
    ("02.attention_scores", lambda q, k: q @ k.transpose(-2, -1), "sqrt(d)"),
    ("02.attention_scores", lambda q, k: q @ k.transpose(-2, -1) / q.shape[-1], "not by d"),
    ("02.attention_scores", lambda q, k: q @ k.transpose(-2, -1) / math.sqrt(k.shape[-2]), "not the number of keys"),
    ("02.attention_scores", lambda q, k: k @ q.transpose(-2, -1) / math.sqrt(q.shape[-1]), "swapped"),
    ("02.softmax", lambda s: softmax(s.transpose(0, -1)).transpose(0, -1), "wrong axis"),
    ("02.softmax", lambda s: s.exp() / s.exp().sum(-1, keepdim=True), "overflow"),
    ("02.softmax", lambda s: (s - s.max()).exp() / (s - s.max()).exp().sum(-1, keepdim=True), "ROW's max"),
    ("02.softmax", lambda s: (s - s.amax(-1, keepdim=True)).exp() / (s - s.amax(-1, keepdim=True)).exp().sum(),
     "ITS sum"),
    ("02.causal_mask", lambda t: torch.ones(t, t, dtype=torch.bool).triu(), "transpose"),
    ("02.causal_mask", lambda t: torch.ones(t, t, dtype=torch.bool).tril(-1), "ITSELF"),
    ("02.causal_mask", lambda t: torch.ones(t, t, dtype=torch.bool).tril(1), "off by one"),
    ("02.causal_mask", lambda t: ~torch.ones(t, t, dtype=torch.bool).tril(), "inverted"),
    ("02.causal_mask", lambda t: torch.ones(t, t).tril(), "bool"),
    ("02.padding_mask", lambda lengths, n: torch.arange(n)[None] <= lengths[:, None], "off by one"),
    ("02.padding_mask", lambda lengths, n: torch.arange(n)[None] >= lengths[:, None], "inverted"),
    ("02.padding_mask", lambda lengths, n: torch.arange(n)[:, None] < lengths[None], "rows are sequences"),
    ("02.padding_mask", lambda lengths, n: (torch.arange(n)[None] < lengths[:, None]).long(), "bool"),
    ("02.scaled_dot_product_attention", sdpa_with(lambda raw, d, m: softmax(masked(raw, m))), "sqrt(d)"),
    ("02.scaled_dot_product_attention", sdpa_with(lambda raw, d, m: masked(raw / d**0.5, m).softmax(-2)), "wrong axis"),
    ("02.scaled_dot_product_attention", sdpa_with(lambda raw, d, m: softmax(raw / d**0.5) * (1 if m is None else m)),
     "after the softmax"),
    ("02.scaled_dot_product_attention", sdpa_with(lambda raw, d, m: softmax(
        raw / d**0.5 if m is None else (raw / d**0.5).masked_fill(m, float("-inf")))), "inverted"),
    ("02.scaled_dot_product_attention", sdpa_with(lambda raw, d, m: softmax(
        raw / d**0.5 if m is None else (raw / d**0.5).masked_fill(~m, 0.0))), "-inf"),
    ("02.scaled_dot_product_attention", sdpa_with(lambda raw, d, m: softmax(raw / d**0.5)), "mask was ignored"),
    ("02.scaled_dot_product_attention", lambda q, k, v, mask=None: sdpa(q, k, v, mask)[0], "return a tuple"),
    ("02.scaled_dot_product_attention", lambda q, k, v, mask=None: sdpa(q, k, v, mask)[::-1], "in that order"),
    ("02.scaled_dot_product_attention", lambda q, k, v, mask: sdpa(q, k, v, mask), "default of None"),
    ("02.scaled_dot_product_attention", lambda q, k, v, mask=None: (*sdpa(q, k, v, mask), None), "return 2 values"),
    ("03.sinusoidal_positional_encoding", lambda t, d: positional_encoding(t, d).view(t, -1, 2).flip(-1).flatten(1),
     "swapped"),
    ("03.sinusoidal_positional_encoding", lambda t, d: positional_encoding(t, d) * 0 + 1, "PE[t, 2i]"),
    ("03.sinusoidal_positional_encoding", lambda t, d: positional_encoding(t + 1, d)[1:], "start at 0"),
    ("03.sinusoidal_positional_encoding", pe_halves, "interleave"),
    ("03.sinusoidal_positional_encoding", pe_per_dimension, "share one frequency"),
    ("03.split_heads", lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h), "reshape straight"),
    ("03.split_heads", lambda x, h: x.view(*x.shape[:2], x.shape[2] // h, h).permute(0, 3, 1, 2), "CONSECUTIVE"),
    ("03.split_heads", lambda x, h: x.view(*x.shape[:2], h, x.shape[2] // h), "transpose(1, 2)"),
    ("03.multi_head_attention", mha_custom(lambda y, b, t, d, h: y.reshape(b, h, t, d // h), good_merge),
     "split by a reshape without the transpose"),
    ("03.multi_head_attention", mha_custom(good_split, lambda out, b, t, d: out.reshape(b, t, d)),
     "merged by a reshape without the transpose"),
    ("03.multi_head_attention", mha_custom(good_split, good_merge, heads=1), "single-head"),
    ("03.multi_head_attention", mha_custom(good_split, good_merge, project=False), "output projection"),
    ("03.multi_head_attention", lambda x, wq, wk, wv, wo, n, mask=None: mha_custom(
        good_split, good_merge, scale=x.shape[-1])(x, wq, wk, wv, wo, n, mask), "sqrt(d_head)"),
    ("03.layer_norm", lambda x, g, b: (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-5) * g + b,
     "biased variance"),
    ("03.layer_norm", lambda x, g, b: (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5) * g + b, "BatchNorm"),
    ("03.layer_norm", lambda x, g, b: layer_norm(x, torch.ones_like(g), torch.zeros_like(b)), "gamma"),
    ("03.layer_norm", lambda x, g, b: layer_norm(x, b, g), "gamma scales"),
    ("03.layer_norm", lambda x, g, b: (x - x.mean(-1, keepdim=True)) / (x.std(-1, unbiased=False, keepdim=True) + 1e-5)
     * g + b, "INSIDE the square root"),
    ("03.layer_norm", lambda x, g, b: (x - x.mean(-1, keepdim=True)) / x.std(-1, unbiased=False, keepdim=True) * g + b,
     "variance 0"),
    ("04.block_flops", lambda t, d: 12 * t * d * d + 2 * t * t * d, "multiply-adds"),
    ("04.block_flops", lambda t, d: 24 * t * d * d, "attention's own products"),
    ("04.block_flops", lambda t, d: 8 * t * d * d + 4 * t * t * d, "forget it"),
    ("04.block_flops", lambda t, d: 24 * t * d * d + 2 * t * t * d, "TWO products"),
    ("04.time_fn", timer(sync_each=False), "no sync()"),
    ("04.time_fn", timer(sync_warmup=False), "still queued"),
    ("04.time_fn", timer(reduce=statistics.mean), "MEDIAN"),
    ("04.time_fn", timer(reduce=lambda d: torch.tensor(d).median().item()), "torch.median returns the lower one"),
    ("04.time_fn", timer(time_warmup=True), "warm-up calls were timed"),
    ("04.time_fn", timer(reduce=min), "fastest"),
    ("04.time_fn", lambda work, sync, clock, repeats, warmup: time_fn(work, sync, clock, repeats, warmup), "defaults"),
    ("04.time_fn", lambda work, sync, clock, repeats=5, warmup=2: time_fn(work, sync, clock, repeats, 0), "times untimed"),
    ("04.causal_sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v), "is_causal=True"),
    ("04.causal_sdpa", lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool).triu(1)), "inverted"),
    ("04.causal_sdpa", lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool).triu()), "lower triangle"),
    ("04.causal_sdpa", lambda q, k, v: sdpa(q, k, v, torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool).tril())[0],
     "asks you to call torch.nn.functional.scaled_dot_product_attention"),
    ("04.ddp_average", lambda grads: torch.stack(grads).sum(0), "SUM"),
    ("04.ddp_average", lambda grads: grads[0], "one replica"),
    ("04.ddp_average", lambda grads: grads, "one tensor, not a list"),
    ("05.shift_targets", lambda t: (t[:, 1:], t[:, :-1]), "swapped"),
    ("05.shift_targets", lambda t: (t[:-1], t[1:]), "TIME axis"),
    ("05.shift_targets", lambda t: (t[:, :-1], t[:, :-1]), "NEXT tokens"),
    ("05.shift_targets", lambda t: t[:, :-1], "return a tuple"),
    ("05.lm_loss", lambda logits, y: F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"), "mean"),
    ("05.lm_loss", lambda logits, y: F.nll_loss(logits.flatten(0, 1), y.flatten()), "log_softmax"),
    ("05.lm_loss", lambda logits, y: F.cross_entropy(logits.flatten(0, 1).softmax(-1), y.flatten()), "raw logits"),
    ("05.lm_loss", lambda logits, y: F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum") / len(y),
     "all B x T"),
    ("05.warmup_cosine_lr", lambda s, w, total, hi, lo: hi * s / w if s < w else warmup_cosine(s, w, total, hi, lo),
     "step 0 already trains"),
    ("05.warmup_cosine_lr", lambda s, w, total, hi, lo: warmup_cosine(s, w, total, hi, lo) if s < total else 0.0,
     "not 0"),
    ("05.warmup_cosine_lr", lr_linear, "straight line"),
    ("05.warmup_cosine_lr", lambda s, w, total, hi, lo: warmup_cosine(s, w, total, hi, 0.0) if s < total else lo,
     "towards min_lr"),
    ("05.warmup_cosine_lr", lambda s, w, total, hi, lo: warmup_cosine(s, w, total + w, hi, lo) if w <= s < total
     else warmup_cosine(s, w, total, hi, lo), "(total - warmup)"),
    ("05.sample_next", lambda logits, temperature=1.0, top_k=None, generator=None: sample_next(
        logits * temperature * temperature, temperature, top_k, generator), "multiplied"),
    ("05.sample_next", lambda logits, temperature=1.0, top_k=None, generator=None: sample_next(
        logits, 1.0, top_k, generator), "temperature was ignored"),
    ("05.sample_next", lambda logits, temperature=1.0, top_k=None, generator=None: sample_next(
        logits, temperature, None if top_k != 1 else 1, generator), "top_k"),
    ("05.sample_next", sample_top_k_inclusive, "keep exactly the top_k"),
    ("05.sample_next", sample_greedy, "always picked one token"),
    ("05.sample_next", sample_flat, "(B, 1)"),
    ("05.sample_next", sample_without_generator, "generator=generator"),
    ("05.pre_ln_block", lambda x, attn, ff, n1, n2: (lambda h: n2(h + ff(h)))(n1(x + attn(x))), "Post-LN"),
    ("05.pre_ln_block", lambda x, attn, ff, n1, n2: ff(n2(attn(n1(x)))), "residual"),
    ("05.pre_ln_block", lambda x, attn, ff, n1, n2: (lambda h: h + ff(n1(h)))(x + attn(n1(x))), "its own norm"),
    ("05.pre_ln_block", lambda x, attn, ff, n1, n2: (lambda h: h + ff(n1(h)))(x + attn(n2(x))), "swapped"),
    ("05.pre_ln_block", lambda x, attn, ff, n1, n2: (lambda h: h + ff(n2(h)))(n1(x) + attn(n1(x))), "UN-normalised"),
    ("06.attention_rollout", rollout_with(lambda layer, r: r @ mixed(layer)), "other order"),
    ("06.attention_rollout", rollout_with(lambda layer, r: layer.mean(0) @ r), "identity"),
    ("06.attention_rollout", rollout_with(lambda layer, r: mixed(layer, lambda a: a.sum(0)) @ r), "don't sum"),
    ("06.attention_rollout", lambda a: rollout(a[-1:]), "ALL the layers"),
    ("06.mean_attention_distance", lambda w: distance(w) * 0 + (w * (torch.arange(w.shape[-1])[:, None] - torch.arange(
        w.shape[-1])[None, :])).sum(-1).mean(-1), "absolute"),
    ("06.mean_attention_distance", lambda w: distance(w) / w.shape[-1], "SUM over the keys"),
    ("06.mean_attention_distance", lambda w: distance(w) * w.shape[-1], "don't sum"),
    ("06.previous_token_head", lambda a: divmod(int(torch.diagonal(a, 1, -2, -1).mean(-1).argmax()), a.shape[1]), "NEXT"),
    ("06.previous_token_head", lambda a: divmod(int(torch.diagonal(a, 0, -2, -1).mean(-1).argmax()), a.shape[1]),
     "ITSELF"),
    ("06.previous_token_head", lambda a: int(torch.diagonal(a, -1, -2, -1).mean(-1).argmax()), "divmod"),
    ("06.special_token_share", lambda w, special: w[..., special, :].sum(-2).mean(-1), "keys"),
    ("06.special_token_share", lambda w, special: 1 - w[..., special].sum(-1).mean(-1), "ORDINARY"),
    ("06.special_token_share", lambda w, special: w[..., special].sum(-1).sum(-1), "don't sum"),
    ("07.mean_pool", lambda hidden, mask: hidden.mean(1), "padding"),
    ("07.mean_pool", lambda hidden, mask: (hidden * mask.unsqueeze(-1)).sum(1) / hidden.shape[1], "REAL tokens"),
    ("07.mean_pool", lambda hidden, mask: torch.stack([h[: int(n)].mean(0) for h, n in zip(hidden, mask.sum(1), strict=True)]),
     "not always the first ones"),
    ("07.freeze_encoder", lambda model: model, "requires_grad_(False)"),
    ("07.freeze_encoder", freeze_all, "head must still learn"),
    ("07.freeze_encoder", freeze_attribute, "only sets an attribute"),
    ("07.freeze_encoder", lambda model: freeze_encoder_copy(model), "same object"),
    ("07.freeze_encoder", lambda model: model.eval(), "requires_grad_(False)"),
    ("07.warmup_linear", lambda s, total, w: s / w if s < w else max(0.0, (total - s) / (total - w)), "step 0"),
    ("07.warmup_linear", lambda s, total, w: (s + 1) / w if s < w else (total - s) / (total - w), "never below 0"),
    ("07.warmup_linear", lambda s, total, w: (s + 1) / w if s < w else max(0.0, (total - s) / total), "(total - warmup)"),
    ("07.select_by_validation", lambda runs: max(runs, key=lambda r: r["test_accuracy"])["test_accuracy"], "TEST"),
    ("07.select_by_validation", lambda runs: max(runs, key=lambda r: r["val_accuracy"])["val_accuracy"], "not its "
     "validation"),
    ("07.select_by_validation", lambda runs: max(runs, key=lambda r: r["val_accuracy"]), "not the whole run"),
    ("07.select_by_validation", lambda runs: min(runs, key=lambda r: r["val_accuracy"])["test_accuracy"], "HIGHEST"),
]


def freeze_encoder_copy(model):
    model = copy.deepcopy(model)
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    return model


def test_every_task_has_plausible_mistakes():
    assert {task_id for task_id, _, _ in WRONG} == set(CORRECT)


@pytest.mark.parametrize("task_id, answer, words", WRONG, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(WRONG)])
def test_plausible_mistake_is_rejected_with_a_hint_that_names_it(task_id, answer, words):
    for seed in (1, 2):
        with pytest.raises(AssertionError) as failure:
            check(task_id, answer, seed=seed)
        message = str(failure.value)
        assert message.startswith(task_id) and words in message, message
