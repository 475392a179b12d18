"""Checks for lesson 01: from recurrence to attention."""

from __future__ import annotations

import torch

from ._core import call, expect_tensor, fail, task

_GEN = 101


def _rnn_inputs(batch=3, length=5, d_in=4, d_hidden=6):
    g = torch.Generator().manual_seed(_GEN)
    xs = torch.randn(batch, length, d_in, generator=g)
    h0 = torch.randn(batch, d_hidden, generator=g)
    w_xh = torch.randn(d_in, d_hidden, generator=g) * 0.5
    w_hh = torch.randn(d_hidden, d_hidden, generator=g) * 0.5
    b_h = torch.randn(d_hidden, generator=g) * 0.1
    return xs, h0, w_xh, w_hh, b_h


def _reference_run(xs, h0, w_xh, w_hh, b_h):
    h, states = h0, []
    for t in range(xs.shape[1]):
        h = torch.tanh(xs[:, t] @ w_xh + h @ w_hh + b_h)
        states.append(h)
    return torch.stack(states, dim=1)


@task("01.rnn_step")
def check_rnn_step(fn) -> int:
    xs, h0, w_xh, w_hh, b_h = _rnn_inputs()
    x_t = xs[:, 0]
    expected = torch.tanh(x_t @ w_xh + h0 @ w_hh + b_h)
    got = call("01.rnn_step", "one step, batch 3", fn, x_t, h0, w_xh, w_hh, b_h)
    expect_tensor("01.rnn_step", "one step, batch 3", got, expected,
                  "h_t = tanh(x_t @ w_xh + h_prev @ w_hh + b_h)",
                  [(x_t @ w_xh + h0 @ w_hh + b_h, "you forgot the tanh non-linearity"),
                   (torch.tanh(x_t @ w_xh + b_h), "the new state must also depend on h_prev (h_prev @ w_hh)")])
    return 1


@task("01.run_rnn")
def check_run_rnn(fn) -> int:
    cases = 0
    for length in (1, 5):
        xs, h0, w_xh, w_hh, b_h = _rnn_inputs(length=length)
        case = f"batch 3, length {length}"
        expected = _reference_run(xs, h0, w_xh, w_hh, b_h)
        got = call("01.run_rnn", case, fn, xs, h0, w_xh, w_hh, b_h)
        no_feedback = torch.tanh(xs @ w_xh + (h0 @ w_hh)[:, None] + b_h)
        expect_tensor("01.run_rnn", case, got, expected,
                      "loop over time: h = tanh(xs[:, t] @ w_xh + h @ w_hh + b_h), collect every h, stack on dim 1",
                      [(no_feedback, "every step used h0: feed the NEW state back in at the next step")])
        cases += 1
    # the same recurrence as PyTorch's own nn.RNN
    xs, h0, w_xh, w_hh, b_h = _rnn_inputs()
    rnn = torch.nn.RNN(4, 6, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(w_xh.T)
        rnn.weight_hh_l0.copy_(w_hh.T)
        rnn.bias_ih_l0.copy_(b_h)
        rnn.bias_hh_l0.zero_()
        expected, _ = rnn(xs, h0[None])
    got = call("01.run_rnn", "matches torch.nn.RNN", fn, xs, h0, w_xh, w_hh, b_h)
    expect_tensor("01.run_rnn", "matches torch.nn.RNN", got, expected, "your recurrence differs from nn.RNN's")
    return cases + 1


@task("01.path_length")
def check_path_length(fn) -> int:
    cases = [("rnn", 0, 0, 0), ("rnn", 2, 7, 5), ("rnn", 0, 99, 99), ("attention", 0, 99, 1),
             ("attention", 3, 4, 1), ("attention", 5, 5, 0)]
    for kind, i, j, expected in cases:
        got = call("01.path_length", f"{kind}, {i} -> {j}", fn, kind, i, j)
        if got != expected:
            hint = ("a recurrent layer passes information one step at a time: j - i steps"
                    if kind == "rnn" else "self-attention connects every pair of positions directly: one step")
            fail("01.path_length", f"{kind}, position {i} -> {j}", expected, got, hint)
    return len(cases)


@task("01.accuracy")
def check_accuracy(fn) -> int:
    logits = torch.tensor([[2.0, 0.1, 0.3], [0.1, 0.2, 3.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]])
    labels = torch.tensor([0, 2, 0, 2])
    got = call("01.accuracy", "4 examples, 3 classes", fn, logits, labels)
    if not isinstance(got, float):
        fail("01.accuracy", "4 examples, 3 classes", 0.75, got, "return a Python float, e.g. with `.item()`")
    if abs(got - 0.75) > 1e-6:
        hint = ("that is a count: divide by the number of examples" if abs(got - 3) < 1e-6
                else "take argmax over the class axis (dim=-1) and compare with the labels")
        fail("01.accuracy", "4 examples, 3 classes", 0.75, got, hint)
    return 1
