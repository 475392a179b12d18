"""Every check accepts a correct answer and rejects plausible wrong ones with a specific message."""

import math

import pytest
import torch

from attention_course import attention as A
from attention_course.grading import TASKS, check

# ---------------------------------------------------------------- correct answers


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
}


def test_every_task_has_a_correct_answer_here():
    assert set(TASKS) - set(CORRECT) <= {t for t in TASKS if not t.startswith(("01", "02", "03"))}


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
]


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
