"""Checks for lesson 05: the LM objective, the schedule, sampling, the Pre-LN block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._core import as_tensor, call, expect_number, expect_tensor, expect_tuple, fail, fresh_generator, fresh_rng, task
from ._messages import tr


@task("05.shift_targets")
def check_shift(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    shapes = [(rng.randint(1, 4), rng.randint(3, 12)) for _ in range(2)] + [(1, 2), (3, 5)]
    for batch, width in shapes:
        tokens = torch.randperm(200, generator=g)[: batch * width].view(batch, width)  # no two tokens alike
        case = f"tokens {tuple(tokens.shape)}"
        got = call("05.shift_targets", case, fn, tokens)
        inputs, targets = expect_tuple("05.shift_targets", case, got, ("inputs", "targets"))
        expect_tensor("05.shift_targets", tr("inputs of {case}", case=case), inputs, tokens[:, :-1],
                      tr("inputs are every token but the last: tokens[:, :-1]"),
                      [(tokens[:, 1:], tr("inputs and targets are swapped")),
                       (tokens[:-1], tr("slice the TIME axis (dim 1): tokens[:, :-1], not tokens[:-1]")),
                       (tokens, tr("inputs drop the last token: tokens[:, :-1]"))])
        expect_tensor("05.shift_targets", tr("targets of {case}", case=case), targets, tokens[:, 1:],
                      tr("targets are the inputs shifted by one: tokens[:, 1:]"),
                      [(tokens[:, :-1], tr("targets must be the NEXT tokens: tokens[:, 1:]")),
                       (tokens[1:], tr("slice the TIME axis (dim 1): tokens[:, 1:], not tokens[1:]")),
                       (tokens, tr("targets drop the first token: tokens[:, 1:]"))])
    return len(shapes)


@task("05.lm_loss")
def check_lm_loss(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    shapes = [(rng.randint(2, 4), rng.randint(2, 9), rng.randint(10, 40)) for _ in range(2)] + [(1, 1, 7), (3, 5, 11)]
    for batch, length, vocab in shapes:
        logits = torch.randn(batch, length, vocab, generator=g) * 2
        targets = torch.randint(vocab, (batch, length), generator=g)
        case = tr("logits {shape}, targets {shape2}", shape=tuple(logits.shape), shape2=tuple(targets.shape))
        flat, flat_targets = logits.reshape(-1, vocab).detach(), targets.reshape(-1)
        expected = F.cross_entropy(flat, flat_targets).item()
        got = call("05.lm_loss", case, fn, logits.requires_grad_(), targets)
        expect_number("05.lm_loss", case, got.detach() if isinstance(got, torch.Tensor) else got, expected,
                      tr("flatten to (B*T, vocab) and (B*T,), then F.cross_entropy (a mean over all predictions)"),
                      [(F.cross_entropy(flat, flat_targets, reduction="sum").item(),
                        tr("use the mean over predictions, not the sum")),
                       (F.cross_entropy(flat, flat_targets, reduction="sum").item() / batch,
                        tr("average over all B x T predictions, not only over the batch")),
                       (F.nll_loss(flat, flat_targets).item(), tr("F.nll_loss expects log-probabilities: use "
                                                                  "F.cross_entropy, which applies log_softmax to the "
                                                                  "logits itself")),
                       (F.cross_entropy(flat.softmax(-1), flat_targets).item(), tr("F.cross_entropy takes the raw "
                                                                                   "logits: don't apply softmax first"))], tol=1e-4)
        if not (isinstance(got, torch.Tensor) and got.requires_grad):
            fail("05.lm_loss", case, tr("a loss tensor connected to the logits"), got,
                 tr("the value is right, but return the loss as a tensor computed from the logits (no .item(), no "
                    "float(), no torch.no_grad()): the model trains through it"))
    return len(shapes)


def _lr(step, warmup, total, max_lr, min_lr, shape=math.cos, span=None):
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    progress = (step - warmup) / (span or (total - warmup))
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + shape(math.pi * progress))


@task("05.warmup_cosine_lr")
def check_schedule(fn) -> int:
    rng = fresh_rng()
    cases = 0
    for warmup, decay in ((rng.randint(2, 20), rng.randint(5, 50) * 4), (1, 8), (10, 100)):
        total = warmup + decay
        max_lr = round(rng.uniform(0.1, 3.0), 3)
        min_lr = round(max_lr * rng.uniform(0.05, 0.3), 4)
        steps = [0, warmup - 1, warmup, warmup + decay // 4, warmup + decay // 2, warmup + 3 * decay // 4,
                 total - 1, total, total + rng.randint(1, 100)]
        for step in dict.fromkeys(steps):
            case = tr("step {step} (warmup {warmup}, total {total}, lr {max_lr} -> {min_lr})",
                      step=step, warmup=warmup, total=total, max_lr=max_lr, min_lr=min_lr)
            expected = _lr(step, warmup, total, max_lr, min_lr)
            got = call("05.warmup_cosine_lr", case, fn, step, warmup, total, max_lr, min_lr)
            progress = (step - warmup) / decay
            if step < warmup:
                hint = tr("during warm-up: max_lr * (step + 1) / warmup, reaching max_lr at step warmup - 1")
                wrongs = [(max_lr * step / warmup, tr("warm-up: max_lr * (step + 1) / warmup, so that step 0 already "
                                                      "trains and step warmup - 1 reaches max_lr"))]
            elif step >= total:
                hint = tr("after the last step stay at min_lr")
                wrongs = [(0.0, tr("after the last step stay at min_lr, not 0")), (max_lr, tr("after the last step stay "
                                                                                          "at min_lr"))]
            else:
                hint = (tr("cosine: progress = (step - warmup) / (total - warmup); min_lr + 0.5 * (max_lr - min_lr) "
                           "* (1 + cos(pi * progress))"))
                wrongs = [(max_lr - (max_lr - min_lr) * progress, tr("that is a straight line: the decay follows a "
                                                                     "cosine, min_lr + 0.5 * (max_lr - min_lr) * (1 "
                                                                     "+ cos(pi * progress))")),
                          (_lr(step, warmup, total, max_lr, 0.0), tr("decay towards min_lr, not 0: start from min_lr "
                                                                     "+ ...")),
                          (_lr(step, 0, total, max_lr, min_lr), tr("progress counts from the end of warm-up: (step - "
                                                                   "warmup) / (total - warmup)")),
                          (_lr(step, warmup, total, max_lr, min_lr, span=total), tr("progress counts from the end of "
                                                                                    "warm-up: (step - warmup) / "
                                                                                    "(total - warmup)")),
                          (min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(progress)), tr("multiply the progress by "
                                                                                           "pi: cos(pi * progress) "
                                                                                           "runs from 1 to -1"))]
            expect_number("05.warmup_cosine_lr", case, got, expected, hint,
                          [(w, text) for w, text in wrongs if abs(w - expected) > 1e-6 * max(1, expected)])
            cases += 1
    return cases


def _ids(got, case, rows, vocab):
    """A (rows, 1) tensor of token ids, as a flat list."""
    task_id = "05.sample_next"
    expected = tr("a ({rows}, 1) tensor of token ids", rows=rows)
    tensor = as_tensor(task_id, case, got, torch.zeros(rows, 1, dtype=torch.long))
    if tensor.shape == (rows,):
        fail(task_id, case, expected, got, tr("one id per row with shape (B, 1), as torch.multinomial(probs, 1) "
                                              "gives it"))
    if tensor.shape != (rows, 1):
        fail(task_id, case, expected, got, tr("return one id per row: shape (B, 1)"))
    if tensor.is_floating_point() or tensor.dtype == torch.bool:
        fail(task_id, case, expected, got, tr("return integer token ids (torch.long), not {dtype}", dtype=tensor.dtype))
    if bool(((tensor < 0) | (tensor >= vocab)).any()):
        fail(task_id, case, expected, got, tr("token ids must lie in 0..{vocab}", vocab=vocab - 1))
    return tensor.flatten()


def _frequencies(ids, vocab):
    return torch.bincount(ids, minlength=vocab).double() / len(ids)


def _agrees(freq, probs, draws):
    """Within 6 standard errors everywhere (plus a little slack): a wrong distribution fails, sampling noise never."""
    bound = 6 * (probs * (1 - probs) / draws).sqrt() + 0.01
    return bool(((freq - probs).abs() <= bound).all())


@task("05.sample_next")
def check_sampling(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    task_id, draws = "05.sample_next", 4000
    vocab = rng.randint(5, 9)
    # logits spread evenly over [-1.5, 1.5] (shuffled): every one of the top k tokens gets a visible share
    row = torch.linspace(1.5, -1.5, vocab)[torch.randperm(vocab, generator=g)] + torch.rand(vocab, generator=g) * 0.1
    many = row.expand(draws, vocab).clone()
    seed = rng.randrange(2**31)
    first = _ids(call(task_id, tr("same generator seed twice"), fn, many, 1.0, None, torch.Generator().manual_seed(seed)),
                 tr("same generator seed"), draws, vocab)
    again = _ids(call(task_id, tr("same generator seed twice"), fn, many, 1.0, None, torch.Generator().manual_seed(seed)),
                 tr("same generator seed"), draws, vocab)
    if bool((first == first[0]).all()):
        fail(task_id, tr("{draws} rows of the same logits", draws=draws), tr("a sample spread over the tokens"), tr("always token {first}",
                                                                                                first=first[0]),
             tr("you always picked one token: sample from the softmax with torch.multinomial(probs, 1, "
                "generator=generator)"))
    if not torch.equal(first, again):
        fail(task_id, tr("two calls with generators of the same seed"), tr("the same draws"), tr("different draws"),
             tr("pass the generator on: torch.multinomial(probs, 1, generator=generator)"))
    cases = 2
    for temperature, top_k in ((rng.choice([0.5, 0.7]), None), (rng.choice([1.5, 2.0]), None), (1.0, rng.randint(2, vocab - 2))):
        case = tr("temperature {temperature}, top_k {top_k}, {draws} draws of {vocab} tokens",
                  temperature=temperature, top_k=top_k, draws=draws, vocab=vocab)
        scaled = row / temperature
        if top_k is not None:
            scaled = scaled.masked_fill(scaled < scaled.topk(top_k).values[-1], float("-inf"))
        probs = torch.softmax(scaled.double(), -1)
        got = _ids(call(task_id, case, fn, many, temperature, top_k, torch.Generator().manual_seed(rng.randrange(2**31))),
                   case, draws, vocab)
        freq = _frequencies(got, vocab)
        if _agrees(freq, probs, draws) and not bool((freq[probs == 0] > 0).any()):
            cases += 1
            continue
        seen = int((freq > 0).sum())
        if top_k is not None and (bool((freq[probs == 0] > 0).any()) or bool((freq[probs > 0.01] == 0).any())):
            hint = (tr("{seen} different tokens were drawn: keep exactly the top_k = {top_k} largest logits and set "
                       "the others to -inf (compare with the k-th largest using <, not <=)", seen=seen, top_k=top_k))
        elif _agrees(freq, torch.softmax(row.double() * temperature, -1), draws):
            hint = tr("divide the logits by the temperature (you multiplied)")
        elif _agrees(freq, torch.softmax(row.double(), -1), draws):
            hint = tr("the temperature was ignored: sample from softmax(logits / temperature)")
        else:
            hint = tr("sample from softmax(logits / temperature) with torch.multinomial")
        fail(task_id, case, [round(p, 3) for p in probs.tolist()], [round(p, 3) for p in freq.tolist()],
             tr("(token frequencies) {hint}", hint=hint))
    logits = torch.randn(rng.randint(2, 5), vocab, generator=g) * 2
    greedy = _ids(call(task_id, tr("top_k=1, logits {shape}", shape=tuple(logits.shape)), fn, logits, 1.0, 1,
                       torch.Generator().manual_seed(rng.randrange(2**31))), "top_k=1", logits.shape[0], vocab)
    if not torch.equal(greedy, logits.argmax(-1)):
        fail(task_id, "top_k=1", logits.argmax(-1).tolist(), greedy.tolist(), tr("top_k=1 must always pick the "
                                                                                 "largest logit"))
    return cases + 1


def _randomised(module, g):
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=g) * 0.5 + (1.0 if parameter.dim() == 1 else 0.0))
    return module


@task("05.pre_ln_block")
def check_pre_ln_block(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = 0
    for shape_of in ("3-D", "3-D", "2-D"):
        width = rng.randint(4, 10)
        attention = _randomised(torch.nn.Linear(width, width), g)
        feed_forward = _randomised(torch.nn.Sequential(torch.nn.Linear(width, 2 * width), torch.nn.GELU(),
                                                       torch.nn.Linear(2 * width, width)), g)
        norm1, norm2 = _randomised(torch.nn.LayerNorm(width), g), _randomised(torch.nn.LayerNorm(width), g)
        x = torch.randn(*((rng.randint(1, 3),) if shape_of == "3-D" else ()), rng.randint(2, 6), width, generator=g)
        case = f"x {tuple(x.shape)}"
        with torch.no_grad():
            h = x + attention(norm1(x))
            expected = h + feed_forward(norm2(h))
            post = norm1(x + attention(x))
            wrong = [(norm2(post + feed_forward(post)), tr("that is Post-LN (normalise after the residual sum): "
                                                           "normalise the sublayer's INPUT")),
                     (feed_forward(norm2(attention(norm1(x)))), tr("keep the residual connections: add each "
                                                                   "sublayer's output to its input")),
                     (h + feed_forward(norm1(h)), tr("each sublayer has its own norm: norm2 before the feed-forward")),
                     ((lambda h2: h2 + feed_forward(norm1(h2)))(x + attention(norm2(x))),
                      tr("the norms are swapped: norm1 before attention, norm2 before the feed-forward")),
                     ((lambda h2: h2 + feed_forward(norm2(h2)))(norm1(x) + attention(norm1(x))),
                      tr("add the sublayer's output to the UN-normalised stream: h = x + attention(norm1(x))")),
                     (x + feed_forward(norm2(attention(norm1(x)))), tr("two residual additions: one after attention, "
                                                                       "one after the feed-forward"))]
        got = call("05.pre_ln_block", case, fn, x, attention, feed_forward, norm1, norm2)
        expect_tensor("05.pre_ln_block", case, got, expected,
                      tr("h = x + attention(norm1(x)); return h + feed_forward(norm2(h))"), wrong)
        cases += 1
    return cases

