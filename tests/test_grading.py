"""Every check accepts a correct answer and rejects plausible wrong ones with a specific message."""

import copy
import math
import statistics

import pytest
import torch
import torch.nn.functional as F

from attention_course import attention as A
from attention_course.gpt import sample_next
from attention_course.grading import TASKS, check
from attention_course.training import mean_pool
from attention_course.viz import attention_rollout, mean_attention_distance

# ---------------------------------------------------------------- correct answers


def timed_durations(work, sync, clock, repeats, warmup):
    for _ in range(warmup):
        work()
    sync()
    durations = []
    for _ in range(repeats):
        start = clock()
        work()
        sync()
        durations.append(clock() - start)
    return durations


def gpu_timer(work, sync, clock, repeats, warmup):
    return float(statistics.median(timed_durations(work, sync, clock, repeats, warmup)))


def warmup_cosine(step, warmup, total, max_lr, min_lr):
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def freeze_encoder(model):
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    return model


def rnn_step(x_t, h, w_xh, w_hh, b_h):
    return torch.tanh(x_t @ w_xh + h @ w_hh + b_h)


def run_rnn(xs, h, w_xh, w_hh, b_h):
    states = []
    for t in range(xs.shape[1]):
        h = rnn_step(xs[:, t], h, w_xh, w_hh, b_h)
        states.append(h)
    return torch.stack(states, 1)


CORRECT = {
    "01.rnn_step": rnn_step,
    "01.run_rnn": run_rnn,
    "01.path_length": lambda kind, i, j: abs(j - i) if kind == "rnn" else int(i != j),
    "01.accuracy": lambda logits, labels: (logits.argmax(-1) == labels).float().mean().item(),
    "02.attention_scores": lambda q, k: q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]),
    "02.softmax": lambda s: (s - s.amax(-1, keepdim=True)).exp() / (s - s.amax(-1, keepdim=True)).exp().sum(-1, keepdim=True),
    "02.causal_mask": A.causal_mask,
    "02.padding_mask": A.padding_mask,
    "02.scaled_dot_product_attention": A.scaled_dot_product_attention,
    "03.sinusoidal_positional_encoding": A.sinusoidal_positional_encoding,
    "03.split_heads": A.split_heads,
    "03.multi_head_attention": A.multi_head_attention,
    "03.layer_norm": lambda x, g, b: (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5) * g + b,
    "04.block_flops": lambda t, d: 24 * t * d * d + 4 * t * t * d,
    "04.time_fn": lambda work, sync, clock, repeats=5, warmup=2: gpu_timer(work, sync, clock, repeats, warmup),
    "04.causal_sdpa": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    "04.ddp_average": lambda grads: torch.stack(grads).mean(0),
    "05.shift_targets": lambda t: (t[:, :-1], t[:, 1:]),
    "05.lm_loss": lambda logits, y: F.cross_entropy(logits.flatten(0, 1), y.flatten()),
    "05.warmup_cosine_lr": lambda s, w, total, hi, lo: warmup_cosine(s, w, total, hi, lo),
    "05.sample_next": lambda logits, temperature=1.0, top_k=None, generator=None: sample_next(
        logits, temperature, top_k, generator),
    "05.pre_ln_block": lambda x, attn, ff, n1, n2: (lambda h: h + ff(n2(h)))(x + attn(n1(x))),
    "06.attention_rollout": attention_rollout,
    "06.mean_attention_distance": mean_attention_distance,
    "06.previous_token_head": lambda a: divmod(int(torch.diagonal(a, -1, -2, -1).mean(-1).argmax()), a.shape[1]),
    "06.special_token_share": lambda w, special: w[..., special].sum(-1).mean(-1),
    "07.mean_pool": mean_pool,
    "07.freeze_encoder": lambda model: freeze_encoder(model),
    "07.warmup_linear": lambda s, total, w: (s + 1) / w if s < w else max(0.0, (total - s) / (total - w)),
    "07.select_by_validation": lambda runs: max(runs, key=lambda r: r["val_accuracy"])["test_accuracy"],
}


def test_every_task_has_a_correct_answer_and_a_wrong_one_here():
    assert set(TASKS) == set(CORRECT)
    assert set(TASKS) <= {task_id for task_id, _, _ in WRONG} | {"01.accuracy"}


@pytest.mark.parametrize("task_id", sorted(CORRECT))
def test_correct_answer_passes(task_id, capsys):
    check(task_id, CORRECT[task_id])
    assert f"{task_id}: passed" in capsys.readouterr().out


# ---------------------------------------------------------------- plausible wrong answers


def sdpa_unscaled(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = s.softmax(-1)
    return w @ v, w


def sdpa_wrong_axis(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = s.softmax(-2)
    return w @ v, w


def sdpa_mask_after_softmax(q, k, v, mask=None):
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)
    if mask is not None:
        w = w * mask
    return w @ v, w


def sdpa_inverted_mask(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(mask, float("-inf"))
    w = s.softmax(-1)
    return w @ v, w


def sdpa_no_default_mask(q, k, v, mask):
    return A.scaled_dot_product_attention(q, k, v, mask)


def pe_swapped(length, d):
    pe = A.sinusoidal_positional_encoding(length, d)
    return torch.stack([pe[:, 1::2], pe[:, 0::2]], -1).flatten(1)


def mha_without_transpose(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    b, t, d = x.shape
    q, k, v = ((x @ w).reshape(b, n_heads, t, d // n_heads) for w in (w_q, w_k, w_v))
    out, _ = A.scaled_dot_product_attention(q, k, v, mask)
    return out.reshape(b, t, d) @ w_o


def mha_single_head(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    out, _ = A.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, mask)
    return out @ w_o


def mha_unscaled_heads(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    q, k, v = (A.split_heads(x @ w, n_heads) for w in (w_q, w_k, w_v))
    out, _ = sdpa_unscaled(q, k, v, mask)
    return A.merge_heads(out) @ w_o


def stub(*args, **kwargs):
    raise NotImplementedError("your code here")


WRONG = [
    ("01.rnn_step", lambda x, h, wx, wh, b: x @ wx + h @ wh + b, "tanh"),
    ("01.rnn_step", lambda x, h, wx, wh, b: torch.tanh(x @ wx + b), "h_prev"),
    ("01.run_rnn", lambda xs, h, wx, wh, b: torch.tanh(xs @ wx + (h @ wh)[:, None] + b), "feed the NEW state"),
    ("01.run_rnn", lambda xs, h, wx, wh, b: run_rnn(xs, h, wx, wh, b)[:, -1], "shape"),
    ("01.path_length", lambda kind, i, j: j - i + 1 if kind == "rnn" else 1, "one step at a time"),
    ("01.path_length", lambda kind, i, j: abs(j - i), "connects every pair"),
    ("01.accuracy", lambda logits, labels: (logits.argmax(-1) == labels).sum().item() * 1.0, "count"),
    ("01.accuracy", lambda logits, labels: (logits.argmax(0) == labels[:3]).float().mean().item(), "class axis"),
    ("02.attention_scores", lambda q, k: q @ k.transpose(-2, -1), "sqrt(d)"),
    ("02.attention_scores", lambda q, k: q @ k.transpose(-2, -1) / q.shape[-1], "not by d"),
    ("02.softmax", lambda s: s.softmax(0), "wrong axis"),
    ("02.softmax", lambda s: s.exp() / s.exp().sum(-1, keepdim=True), "overflow"),  # NaN on scores of 1000
    ("02.causal_mask", lambda t: torch.ones(t, t, dtype=torch.bool).triu(), "transpose"),
    ("02.causal_mask", lambda t: torch.ones(t, t, dtype=torch.bool).tril(-1), "ITSELF"),
    ("02.causal_mask", lambda t: torch.ones(t, t, dtype=torch.bool).tril(1), "off by one"),
    ("02.causal_mask", lambda t: ~torch.ones(t, t, dtype=torch.bool).tril(), "inverted"),
    ("02.causal_mask", lambda t: torch.ones(t, t).tril(), "bool"),
    ("02.padding_mask", lambda lengths, n: torch.arange(n)[None] <= lengths[:, None], "off by one"),
    ("02.padding_mask", lambda lengths, n: torch.arange(n)[None] >= lengths[:, None], "inverted"),
    ("02.scaled_dot_product_attention", sdpa_unscaled, "sqrt(d)"),
    ("02.scaled_dot_product_attention", sdpa_wrong_axis, "wrong axis"),
    ("02.scaled_dot_product_attention", sdpa_mask_after_softmax, "after the softmax"),
    ("02.scaled_dot_product_attention", sdpa_inverted_mask, "inverted"),
    ("02.scaled_dot_product_attention", lambda q, k, v, mask=None: A.scaled_dot_product_attention(q, k, v, mask)[0],
     "tuple"),
    ("02.scaled_dot_product_attention", sdpa_no_default_mask, "default of None"),
    ("03.sinusoidal_positional_encoding", pe_swapped, "swapped"),
    ("03.sinusoidal_positional_encoding", lambda t, d: A.sinusoidal_positional_encoding(t, d) * 0 + 1, "PE[t, 2i]"),
    ("03.split_heads", lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h), "reshape straight"),
    ("03.split_heads", lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h).contiguous(), "transpose"),
    ("03.multi_head_attention", mha_without_transpose, "without the transpose"),
    ("03.multi_head_attention", mha_single_head, "single-head"),
    ("03.multi_head_attention", mha_unscaled_heads, "merge heads"),
    ("03.layer_norm", lambda x, g, b: (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-5) * g + b,
     "biased variance"),
    ("03.layer_norm", lambda x, g, b: (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5) * g + b, "BatchNorm"),
    ("04.block_flops", lambda t, d: 12 * t * d * d + 2 * t * t * d, "multiply-adds"),
    ("04.block_flops", lambda t, d: 24 * t * d * d, "attention's own products"),
    ("04.time_fn", lambda work, sync, clock, repeats=5, warmup=2: timer_without_sync(work, sync, clock, repeats, warmup),
     "no sync()"),
    ("04.time_fn", lambda work, sync, clock, repeats=5, warmup=2: timer_mean(work, sync, clock, repeats, warmup), "MEDIAN"),
    ("04.time_fn", lambda work, sync, clock, repeats=5, warmup=2: gpu_timer(work, sync, clock, repeats + warmup, 0),
     "warm-up"),
    ("04.causal_sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v), "is_causal=True"),
    ("04.causal_sdpa", lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool).triu(1)), "inverted"),
    ("04.ddp_average", lambda grads: torch.stack(grads).sum(0), "SUM"),
    ("04.ddp_average", lambda grads: grads[0], "one replica"),
    ("05.shift_targets", lambda t: (t[:, 1:], t[:, :-1]), "swapped"),
    ("05.lm_loss", lambda logits, y: F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"), "mean"),
    ("05.warmup_cosine_lr", lambda s, w, total, hi, lo: hi * s / w if s < w else warmup_cosine(s, w, total, hi, lo),
     "warm-up"),
    ("05.warmup_cosine_lr", lambda s, w, total, hi, lo: warmup_cosine(min(s, total - 1), w, total, hi, lo) if s < total
     else hi, "min_lr"),
    ("05.sample_next", lambda logits, temperature=1.0, top_k=None, generator=None: sample_next(
        logits * temperature * temperature, temperature, top_k, generator), "multiplied"),
    ("05.sample_next", lambda logits, temperature=1.0, top_k=None, generator=None: sample_next(
        logits, temperature, None, generator), "top_k"),
    ("05.pre_ln_block", lambda x, attn, ff, n1, n2: (lambda h: n2(h + ff(h)))(n1(x + attn(x))), "Post-LN"),
    ("05.pre_ln_block", lambda x, attn, ff, n1, n2: ff(n2(attn(n1(x)))), "residual"),
    ("06.attention_rollout", lambda a: rollout_wrong_order(a), "other order"),
    ("06.attention_rollout", lambda a: rollout_no_residual(a), "identity"),
    ("06.mean_attention_distance", lambda w: signed_distance(w), "absolute"),
    ("06.previous_token_head", lambda a: divmod(int(torch.diagonal(a, 1, -2, -1).mean(-1).argmax()), a.shape[1]), "NEXT"),
    ("06.special_token_share", lambda w, special: w[..., special, :].sum(-2).mean(-1), "keys"),
    ("07.mean_pool", lambda hidden, mask: hidden.mean(1), "padding"),
    ("07.mean_pool", lambda hidden, mask: (hidden * mask.unsqueeze(-1)).sum(1) / hidden.shape[1], "REAL tokens"),
    ("07.freeze_encoder", lambda model: model, "requires_grad_(False)"),
    ("07.freeze_encoder", lambda model: freeze_all(model), "head must still learn"),
    ("07.freeze_encoder", lambda model: freeze_encoder(copy.deepcopy(model)), "same model object"),
    ("07.warmup_linear", lambda s, total, w: s / w if s < w else max(0.0, (total - s) / (total - w)), "warm-up"),
    ("07.warmup_linear", lambda s, total, w: (s + 1) / w if s < w else (total - s) / (total - w), "never below 0"),
    ("07.select_by_validation", lambda runs: max(runs, key=lambda r: r["test_accuracy"])["test_accuracy"], "TEST"),
]


def timer_without_sync(work, sync, clock, repeats, warmup):
    for _ in range(warmup):
        work()
    durations = []
    for _ in range(repeats):
        start = clock()
        work()
        durations.append(clock() - start)
    sync()
    return float(statistics.median(durations))


def timer_mean(work, sync, clock, repeats, warmup):
    durations = timed_durations(work, sync, clock, repeats, warmup)
    return sum(durations) / len(durations)


def rollout_wrong_order(attentions):
    size = attentions.shape[-1]
    rollout = torch.eye(size)
    for layer in attentions:
        mixed = 0.5 * layer.mean(0) + 0.5 * torch.eye(size)
        rollout = rollout @ (mixed / mixed.sum(-1, keepdim=True))
    return rollout


def rollout_no_residual(attentions):
    rollout = torch.eye(attentions.shape[-1])
    for layer in attentions:
        rollout = layer.mean(0) @ rollout
    return rollout


def signed_distance(weights):
    positions = torch.arange(weights.shape[-1], dtype=weights.dtype)
    return (weights * (positions[:, None] - positions[None, :])).sum(-1).mean(-1)


def freeze_all(model):
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.mark.parametrize("task_id, answer, words", WRONG, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(WRONG)])
def test_wrong_answer_is_rejected_with_a_specific_message(task_id, answer, words):
    with pytest.raises(AssertionError) as failure:
        check(task_id, answer)
    message = str(failure.value)
    assert message.startswith(task_id) and words in message, message


@pytest.mark.parametrize("task_id", sorted(CORRECT))
def test_untouched_stub_fails_and_says_so(task_id):
    with pytest.raises(AssertionError, match="NotImplementedError"):
        check(task_id, stub)


def test_unknown_task_and_missing_answer():
    with pytest.raises(KeyError, match="known tasks"):
        check("02.nope", stub)
    with pytest.raises(AssertionError, match="got None"):
        check("02.causal_mask", None)


def test_failure_message_shows_expected_and_got():
    with pytest.raises(AssertionError) as failure:
        check("02.causal_mask", lambda t: torch.ones(t, t, dtype=torch.bool).tril(-1))
    message = str(failure.value)
    assert "case 'T=4'" in message and "expected: tensor of shape (4, 4)" in message and "got:" in message
