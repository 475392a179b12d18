"""Checks for lesson 05: the LM objective, the schedule, sampling, the Pre-LN block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._core import CheckFailed, call, expect_tensor, fail, task


@task("05.shift_targets")
def check_shift(fn) -> int:
    tokens = torch.arange(12).view(2, 6)
    got = call("05.shift_targets", "tokens (2, 6)", fn, tokens)
    if not (isinstance(got, tuple) and len(got) == 2):
        raise CheckFailed("05.shift_targets: return a tuple (inputs, targets)")
    inputs, targets = got
    expect_tensor("05.shift_targets", "inputs of tokens (2, 6)", inputs, tokens[:, :-1],
                  "inputs are every token but the last: tokens[:, :-1]",
                  [(tokens[:, 1:], "inputs and targets are swapped")])
    expect_tensor("05.shift_targets", "targets of tokens (2, 6)", targets, tokens[:, 1:],
                  "targets are the inputs shifted by one: tokens[:, 1:]",
                  [(tokens[:, :-1], "targets must be the NEXT tokens: tokens[:, 1:]")])
    return 2


@task("05.lm_loss")
def check_lm_loss(fn) -> int:
    g = torch.Generator().manual_seed(505)
    logits, targets = torch.randn(3, 7, 11, generator=g), torch.randint(11, (3, 7), generator=g)
    expected = F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1))
    got = call("05.lm_loss", "logits (3, 7, 11)", fn, logits, targets)
    wrong_sum = F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1), reduction="sum")
    expect_tensor("05.lm_loss", "logits (3, 7, 11), targets (3, 7)", got, expected,
                  "flatten to (B*T, vocab) and (B*T,), then F.cross_entropy (a mean over all predictions)",
                  [(wrong_sum, "use the mean over predictions, not the sum")])
    return 1


@task("05.warmup_cosine_lr")
def check_schedule(fn) -> int:
    warmup, total, max_lr, min_lr = 10, 110, 1.0, 0.1
    cases = {0: 0.1, 4: 0.5, 9: 1.0, 10: 1.0, 60: min_lr + 0.5 * (max_lr - min_lr), 110: 0.1, 200: 0.1}
    for step, expected in cases.items():
        got = call("05.warmup_cosine_lr", f"step {step}", fn, step, warmup, total, max_lr, min_lr)
        if not isinstance(got, (float, int)) or not math.isclose(got, expected, abs_tol=1e-6):
            if step < warmup:
                hint = "during warm-up: max_lr * (step + 1) / warmup, reaching max_lr at step warmup - 1"
            elif step >= total:
                hint = "after the last step stay at min_lr"
            else:
                hint = ("cosine: progress = (step - warmup) / (total - warmup); "
                        "min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * progress))")
            fail("05.warmup_cosine_lr", f"step {step} (warmup 10, total 110, lr 1.0 -> 0.1)", expected, got, hint)
    return len(cases)


@task("05.sample_next")
def check_sampling(fn) -> int:
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0], [0.0, 3.0, 0.0, 0.0, 2.5]])
    greedy = call("05.sample_next", "top_k=1", fn, logits, 1.0, 1, torch.Generator().manual_seed(0))
    if not isinstance(greedy, torch.Tensor) or greedy.shape != (2, 1):
        fail("05.sample_next", "top_k=1", "a (2, 1) tensor of token ids", greedy, "return one id per row, shape (B, 1)")
    if greedy.flatten().tolist() != [0, 1]:
        fail("05.sample_next", "top_k=1", [0, 1], greedy.flatten().tolist(), "top_k=1 must always pick the largest logit")
    draws = torch.cat([call("05.sample_next", "top_k=2", fn, logits, 1.0, 2, torch.Generator().manual_seed(i))
                       for i in range(400)], dim=1)
    if not set(draws[0].tolist()) <= {0, 1} or not set(draws[1].tolist()) <= {1, 4}:
        fail("05.sample_next", "top_k=2, 400 draws", "only the 2 best tokens", sorted(set(draws[0].tolist())),
             "keep the k largest logits, set the others to -inf before the softmax")
    for temperature in (0.5, 2.0):
        draws = torch.cat([call("05.sample_next", f"temperature {temperature}", fn, logits[:1], temperature, None,
                                torch.Generator().manual_seed(i)) for i in range(2000)], dim=1)
        share = (draws == 0).float().mean().item()
        expected = torch.softmax(logits[0] / temperature, -1)[0].item()
        if abs(share - expected) > 0.05:
            wrong = torch.softmax(logits[0] * temperature, -1)[0].item()
            hint = ("divide the logits by the temperature (you multiplied)" if abs(share - wrong) < 0.05
                    else "sample from softmax(logits / temperature) with torch.multinomial")
            fail("05.sample_next", f"temperature {temperature}, 2000 draws", f"token 0 in {expected:.0%} of draws",
                 f"{share:.0%}", hint)
    return 4


@task("05.pre_ln_block")
def check_pre_ln_block(fn) -> int:
    torch.manual_seed(5)
    width = 8
    attention = torch.nn.Linear(width, width)
    feed_forward = torch.nn.Sequential(torch.nn.Linear(width, 16), torch.nn.GELU(), torch.nn.Linear(16, width))
    norm1, norm2 = torch.nn.LayerNorm(width), torch.nn.LayerNorm(width)
    with torch.no_grad():
        for norm in (norm1, norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, width)
    with torch.no_grad():
        h = x + attention(norm1(x))
        expected = h + feed_forward(norm2(h))
        post = norm1(x + attention(x))
        post = norm2(post + feed_forward(post))
        no_residual = feed_forward(norm2(attention(norm1(x))))
        got = call("05.pre_ln_block", "x (2, 3, 8)", fn, x, attention, feed_forward, norm1, norm2)
    expect_tensor("05.pre_ln_block", "x (2, 3, 8)", got, expected,
                  "h = x + attention(norm1(x)); return h + feed_forward(norm2(h))",
                  [(post, "that is Post-LN (normalise after the residual sum): normalise the sublayer's INPUT"),
                   (no_residual, "keep the residual connections: add each sublayer's output to its input")])
    return 1
