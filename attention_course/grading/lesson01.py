"""Checks for lesson 01: from recurrence to attention."""

from __future__ import annotations

import torch

from ._core import call, expect_number, expect_tensor, fresh_generator, fresh_rng, task
from ._messages import tr


def _rnn_inputs(g, batch, length, d_in, d_hidden):
    xs = torch.randn(batch, length, d_in, generator=g)
    h0 = torch.randn(batch, d_hidden, generator=g)
    w_xh = torch.randn(d_in, d_hidden, generator=g) * 0.5
    w_hh = torch.randn(d_hidden, d_hidden, generator=g) * 0.5
    b_h = torch.randn(d_hidden, generator=g) * 0.5
    return xs, h0, w_xh, w_hh, b_h


def _reference_run(xs, h0, w_xh, w_hh, b_h):
    h, states = h0, []
    for t in range(xs.shape[1]):
        h = torch.tanh(xs[:, t] @ w_xh + h @ w_hh + b_h)
        states.append(h)
    return torch.stack(states, dim=1)


def _sizes(rng):
    """(batch, d_in, d_hidden) with d_in != d_hidden, so that a swapped weight cannot pass by its shape."""
    d_in = rng.randint(2, 6)
    return rng.randint(1, 4), d_in, d_in + rng.randint(1, 4)


@task("01.rnn_step")
def check_rnn_step(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = [_sizes(rng) for _ in range(3)] + [(1, 3, 5)]
    for batch, d_in, d_hidden in cases:
        xs, h0, w_xh, w_hh, b_h = _rnn_inputs(g, batch, 1, d_in, d_hidden)
        x_t, case = xs[:, 0], tr("batch {batch}, d_in {d_in}, d_h {d_hidden}", batch=batch, d_in=d_in, d_hidden=d_hidden)
        linear = x_t @ w_xh + h0 @ w_hh + b_h
        got = call("01.rnn_step", case, fn, x_t, h0, w_xh, w_hh, b_h)
        expect_tensor("01.rnn_step", case, got, torch.tanh(linear), tr("h_t = tanh(x_t @ w_xh + h_prev @ w_hh + b_h)"),
                      [(linear, tr("you forgot the tanh non-linearity")),
                       (torch.tanh(x_t @ w_xh + b_h), tr("the new state must also depend on h_prev (h_prev @ w_hh)")),
                       (torch.tanh(x_t @ w_xh + h0 @ w_hh), tr("add the bias b_h inside the tanh")),
                       (torch.tanh(x_t @ w_xh + h0 @ w_hh.T + b_h), tr("use h_prev @ w_hh, not w_hh.T: the weights "
                                                                       "are applied as x @ w")),
                       (torch.relu(linear), tr("the vanilla RNN uses tanh, not ReLU")),
                       (torch.sigmoid(linear), tr("the vanilla RNN uses tanh, not the sigmoid"))])
    return len(cases)


@task("01.run_rnn")
def check_run_rnn(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = [(*_sizes(rng), rng.randint(3, 8)) for _ in range(2)] + [(2, 3, 4, 1), (1, 2, 3, 2)]
    for batch, d_in, d_hidden, length in cases:
        xs, h0, w_xh, w_hh, b_h = _rnn_inputs(g, batch, length, d_in, d_hidden)
        case = tr("batch {batch}, length {length}, d_in {d_in}, d_h {d_hidden}",
                  batch=batch, length=length, d_in=d_in, d_hidden=d_hidden)
        expected = _reference_run(xs, h0, w_xh, w_hh, b_h)
        got = call("01.run_rnn", case, fn, xs, h0, w_xh, w_hh, b_h)
        expect_tensor("01.run_rnn", case, got, expected,
                      tr("loop over time: h = tanh(xs[:, t] @ w_xh + h @ w_hh + b_h), collect every h, stack on dim 1"),
                      [(torch.tanh(xs @ w_xh + (h0 @ w_hh)[:, None] + b_h),
                        tr("every step used h0: feed the NEW state back in at the next step")),
                       (expected[:, -1], tr("you returned only the last state: collect the state of every step and "
                                            "torch.stack(states, dim=1)")),
                       (torch.cat([h0[:, None], expected[:, :-1]], 1), tr("the states are one step late: return the "
                                                                          "state AFTER each input (h_1 .. h_T), not "
                                                                          "h0 .. h_(T-1)")),
                       (torch.cat([h0[:, None], expected], 1), tr("leave h0 out: return one state per input step")),
                       (expected.transpose(0, 1), tr("stack on dim=1 so the result is (B, T, d_h), not (T, B, d_h)")),
                       (_reference_run(xs, h0, w_xh, w_hh.T, b_h), tr("use h @ w_hh, not w_hh.T: the weights are "
                                                                      "applied as x @ w"))])
    # the same recurrence as PyTorch's own nn.RNN
    batch, d_in, d_hidden = _sizes(rng)
    xs, h0, w_xh, w_hh, b_h = _rnn_inputs(g, batch, 5, d_in, d_hidden)
    rnn = torch.nn.RNN(d_in, d_hidden, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(w_xh.T)
        rnn.weight_hh_l0.copy_(w_hh.T)
        rnn.bias_ih_l0.copy_(b_h)
        rnn.bias_hh_l0.zero_()
        expected, _ = rnn(xs, h0[None])
    got = call("01.run_rnn", tr("matches torch.nn.RNN"), fn, xs, h0, w_xh, w_hh, b_h)
    expect_tensor("01.run_rnn", tr("matches torch.nn.RNN"), got, expected, tr("your recurrence differs from nn.RNN's"))
    return len(cases) + 1


@task("01.path_length")
def check_path_length(fn) -> int:
    rng = fresh_rng()
    cases = [("rnn", 0, 0), ("attention", 5, 5), ("rnn", 2, 7), ("attention", 3, 4)]
    for kind in ("rnn", "attention", "rnn", "attention"):
        i = rng.randint(0, 50)
        cases.append((kind, i, i + rng.randint(2, 60)))
    for kind, i, j in cases:
        expected = j - i if kind == "rnn" else int(i != j)
        got = call("01.path_length", f"{kind}, {i} -> {j}", fn, kind, i, j)
        if kind == "rnn":
            hint, wrongs = tr("a recurrent layer passes information one step at a time: j - i steps"), [
                (j - i + 1, tr("off by one: from position i to j takes j - i steps (0 when i == j)")),
                (1, tr("that is attention's answer: a recurrent layer needs one step per position in between"))]
        else:
            hint, wrongs = tr("self-attention connects every pair of positions directly: one step (0 from a position "
                              "to itself)"), [
                (j - i, tr("self-attention connects every pair of positions directly, in one step")),
                (1, tr("a position reaches itself in 0 steps: return 0 when i == j"))]
        expect_number("01.path_length", tr("{kind}, position {i} -> {j}", kind=kind, i=i, j=j), got, expected, hint,
                      [(w, text) for w, text in wrongs if w != expected], integer=True)
    return len(cases)


@task("01.accuracy")
def check_accuracy(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = []
    for n, classes in ((5, 5), (rng.randint(5, 12) | 1, rng.randint(2, 6)), (rng.randint(3, 10) * 2, 3)):
        while True:  # at least one right and one wrong; in the square case, argmax over dim 0 scores differently
            logits = torch.randn(n, classes, generator=g)
            labels = torch.randint(classes, (n,), generator=g)
            accuracy = float((logits.argmax(-1) == labels).float().mean())
            by_column = float((logits.argmax(0) == labels).float().mean()) if n == classes else -1.0
            if 0 < accuracy < 1 and min(abs(by_column - accuracy), abs(by_column + accuracy - 1)) > 1e-3:
                break
        cases.append((tr("{n} examples, {classes} classes", n=n, classes=classes), logits, labels))
    logits = torch.randn(6, 3, generator=g)
    cases.append((tr("all 6 right"), logits, logits.argmax(-1)))
    cases.append((tr("none of 5 right"), logits[:5], (logits[:5].argmax(-1) + 1) % 3))
    for case, logits, labels in cases:
        predictions = logits.argmax(-1)
        right = int((predictions == labels).sum())
        expected = right / len(labels)
        got = call("01.accuracy", case, fn, logits, labels)
        wrongs = [(right, tr("that is a count: divide by the number of examples")),
                  (1 - expected, tr("that is the error rate: count the rows where the prediction EQUALS the label"))]
        if logits.shape[0] == logits.shape[1]:
            wrongs.append((float((logits.argmax(0) == labels).float().mean()),
                           tr("take argmax over the class axis (dim=-1), not over the examples")))
        expect_number("01.accuracy", case, got, expected,
                      tr("take argmax over the class axis (dim=-1), compare with the labels, take the mean"),
                      [(w, text) for w, text in wrongs if abs(w - expected) > 1e-9], python_float=True)
    return len(cases)
