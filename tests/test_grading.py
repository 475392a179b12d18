"""Every check accepts correct answers, also written in other harmless ways, and stubs fail every check.

The correct answers here are written from scratch (no library twin), so that they can be reused by the other
grading tests: test_grading_mistakes.py (plausible mistakes, with hints), test_grading_tricks.py (answers that
would fool a naive checker), test_grading_display.py (what a learner sees).
"""

import math
import statistics

import pytest
import torch
import torch.nn.functional as F

from attention_course.grading import TASKS, check


def rnn_step(x_t, h, w_xh, w_hh, b_h):
    return torch.tanh(x_t @ w_xh + h @ w_hh + b_h)


def run_rnn(xs, h, w_xh, w_hh, b_h):
    states = []
    for t in range(xs.shape[1]):
        h = rnn_step(xs[:, t], h, w_xh, w_hh, b_h)
        states.append(h)
    return torch.stack(states, 1)


def softmax(s):
    e = (s - s.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def sdpa(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = softmax(s)
    return w @ v, w


def split_heads(x, n_heads):
    b, t, d = x.shape
    return x.view(b, t, n_heads, d // n_heads).transpose(1, 2)


def mha(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    b, t, d = x.shape
    out, _ = sdpa(*(split_heads(x @ w, n_heads) for w in (w_q, w_k, w_v)), mask)
    return out.transpose(1, 2).reshape(b, t, d) @ w_o


def positional_encoding(length, d):
    angles = torch.arange(length)[:, None] / 10000 ** (torch.arange(0, d, 2) / d)
    pe = torch.zeros(length, d)
    pe[:, 0::2], pe[:, 1::2] = angles.sin(), angles.cos()
    return pe


def layer_norm(x, g, b, eps=1e-5):
    m = x.mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(((x - m) ** 2).mean(-1, keepdim=True) + eps) * g + b


def time_fn(work, sync, clock, repeats=5, warmup=2):
    for _ in range(warmup):
        work()
    sync()
    durations = []
    for _ in range(repeats):
        start = clock()
        work()
        sync()
        durations.append(clock() - start)
    return float(statistics.median(durations))


def warmup_cosine(step, warmup, total, max_lr, min_lr):
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def sample_next(logits, temperature=1.0, top_k=None, generator=None):
    logits = logits / temperature
    if top_k is not None:
        logits = logits.masked_fill(logits < logits.topk(top_k, -1).values[:, -1:], float("-inf"))
    return torch.multinomial((logits - logits.amax(-1, keepdim=True)).exp(), 1, generator=generator)


def rollout(attentions):
    r = torch.eye(attentions.shape[-1])
    for layer in attentions:
        mixed = 0.5 * layer.mean(0) + 0.5 * torch.eye(attentions.shape[-1])
        r = mixed / mixed.sum(-1, keepdim=True) @ r
    return r


def distance(w):
    p = torch.arange(w.shape[-1], dtype=w.dtype)
    return (w * (p[:, None] - p[None, :]).abs()).sum(-1).mean(-1)


def mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)


def freeze_encoder(model):
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    return model


CORRECT = {
    "01.rnn_step": rnn_step,
    "01.run_rnn": run_rnn,
    "01.path_length": lambda kind, i, j: abs(j - i) if kind == "rnn" else int(i != j),
    "01.accuracy": lambda logits, labels: (logits.argmax(-1) == labels).float().mean().item(),
    "02.attention_scores": lambda q, k: q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]),
    "02.softmax": softmax,
    "02.causal_mask": lambda t: torch.ones(t, t, dtype=torch.bool).tril(),
    "02.padding_mask": lambda lengths, n: torch.arange(n)[None] < lengths[:, None],
    "02.scaled_dot_product_attention": sdpa,
    "03.sinusoidal_positional_encoding": positional_encoding,
    "03.split_heads": split_heads,
    "03.multi_head_attention": mha,
    "03.layer_norm": layer_norm,
    "04.block_flops": lambda t, d: 24 * t * d * d + 4 * t * t * d,
    "04.time_fn": time_fn,
    "04.causal_sdpa": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    "04.ddp_average": lambda grads: torch.stack(grads).mean(0),
    "05.shift_targets": lambda t: (t[:, :-1], t[:, 1:]),
    "05.lm_loss": lambda logits, y: F.cross_entropy(logits.flatten(0, 1), y.flatten()),
    "05.warmup_cosine_lr": warmup_cosine,
    "05.sample_next": sample_next,
    "05.pre_ln_block": lambda x, attn, ff, n1, n2: (lambda h: h + ff(n2(h)))(x + attn(n1(x))),
    "06.attention_rollout": rollout,
    "06.mean_attention_distance": distance,
    "06.previous_token_head": lambda a: divmod(int(torch.diagonal(a, -1, -2, -1).mean(-1).argmax()), a.shape[1]),
    "06.special_token_share": lambda w, special: w[..., special].sum(-1).mean(-1),
    "07.mean_pool": mean_pool,
    "07.freeze_encoder": freeze_encoder,
    "07.warmup_linear": lambda s, total, w: (s + 1) / w if s < w else max(0.0, (total - s) / (total - w)),
    "07.select_by_validation": lambda runs: max(runs, key=lambda r: r["val_accuracy"])["test_accuracy"],
}
OURS = {task_id for task_id in TASKS if task_id[:2] in {"01", "02", "03", "04", "05", "06", "07"}
        and ".build_" not in task_id}  # the parts' build-and-hit-a-target tasks have tests of their own

# What each task returns, for the tests that alter a correct answer's result.
FLOAT_TENSOR = {"01.rnn_step", "01.run_rnn", "02.attention_scores", "02.softmax", "03.sinusoidal_positional_encoding",
                "03.split_heads", "03.multi_head_attention", "03.layer_norm", "04.causal_sdpa", "04.ddp_average",
                "05.pre_ln_block", "06.attention_rollout", "06.mean_attention_distance", "06.special_token_share",
                "07.mean_pool"}
NUMBER = {"01.path_length", "01.accuracy", "04.block_flops", "04.time_fn", "05.lm_loss", "05.warmup_cosine_lr",
          "07.warmup_linear", "07.select_by_validation"}
PAIR = {"02.scaled_dot_product_attention", "05.shift_targets", "06.previous_token_head"}
OTHER = {"02.causal_mask", "02.padding_mask", "05.sample_next", "07.freeze_encoder"}  # bool masks, ids, a model


def test_every_task_has_a_correct_answer_and_a_kind():
    assert OURS == set(CORRECT) and len(OURS) == 30
    assert FLOAT_TENSOR | NUMBER | PAIR | OTHER == OURS


@pytest.mark.parametrize("task_id", sorted(CORRECT))
def test_correct_answer_passes_on_fresh_cases(task_id, capsys):
    for _ in range(2):  # two runs, two fresh seeds
        check(task_id, CORRECT[task_id])
        out = capsys.readouterr().out
        assert f"{task_id}: passed" in out and "note" not in out, out


def test_a_seed_repeats_the_cases():
    seen = []
    check("02.softmax", lambda s: seen.append(tuple(s.shape)) or softmax(s), seed=7)
    first, seen[:] = list(seen), []
    check("02.softmax", lambda s: seen.append(tuple(s.shape)) or softmax(s), seed=7)
    assert seen == first


def test_checks_leave_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    for task_id in ("05.pre_ln_block", "07.freeze_encoder", "05.sample_next"):
        check(task_id, CORRECT[task_id])
    assert torch.equal(state, torch.random.get_rng_state())


# ---------------------------------------------------------------- correct answers written differently


def as_float64(answer):
    def wrapped(*args, **kwargs):
        out = answer(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(o.double() if o.is_floating_point() else o for o in out)
        return out.double()
    return wrapped


def as_list(answer):
    return lambda *args, **kwargs: list(answer(*args, **kwargs))


def softmax_in_place(s):
    s.sub_(s.amax(-1, keepdim=True)).exp_()
    return s.div_(s.sum(-1, keepdim=True))


def layer_norm_in_place(x, g, b, eps=1e-5):
    x -= x.mean(-1, keepdim=True)
    x /= torch.sqrt((x**2).mean(-1, keepdim=True) + eps)
    return x.mul_(g).add_(b)


def scores_in_place(q, k):
    q /= math.sqrt(q.shape[-1])
    return q @ k.transpose(-2, -1)


def pre_ln_in_place(x, attn, ff, n1, n2):
    x += attn(n1(x))
    x += ff(n2(x))
    return x


def ddp_in_place(grads):
    total = grads.pop()
    for g in grads:
        total.add_(g)
    return total.div_(len(grads) + 1)


def select_in_place(runs):
    # takes the best run out of the caller's list (a sort could leave an already sorted list as it was)
    best = max(runs, key=lambda r: r["val_accuracy"])
    runs.remove(best)
    return best["test_accuracy"]


def mean_pool_in_place(hidden, mask):
    hidden.mul_(mask.unsqueeze(-1))
    return hidden.sum(1) / mask.sum(1, keepdim=True)


def rollout_in_place(attentions):
    attentions.mul_(0.5)
    return rollout(attentions * 2)


IN_PLACE = [("02.softmax", softmax_in_place), ("03.layer_norm", layer_norm_in_place),
            ("02.attention_scores", scores_in_place), ("05.pre_ln_block", pre_ln_in_place),
            ("04.ddp_average", ddp_in_place), ("07.select_by_validation", select_in_place),
            ("07.mean_pool", mean_pool_in_place), ("06.attention_rollout", rollout_in_place)]


@pytest.mark.parametrize("task_id, answer", IN_PLACE, ids=[t for t, _ in IN_PLACE])
def test_right_values_from_an_answer_that_changes_its_inputs_pass_with_a_note(task_id, answer, capsys):
    check(task_id, answer)
    out = capsys.readouterr().out
    assert f"{task_id}: passed" in out and "changed its input" in out and "in place" in out, out


def spoil_inputs_afterwards(answer):
    """Right values, then every tensor argument is overwritten: the expected values must not move."""
    def wrapped(*args):
        out = answer(*args)
        out = tuple(o.clone() for o in out) if isinstance(out, tuple) else out.clone()
        for a in args:
            if isinstance(a, torch.Tensor):
                a.fill_(7 if a.dtype != torch.bool else True)
        return out
    return wrapped


SPOILED = sorted((FLOAT_TENSOR | {"02.scaled_dot_product_attention", "05.shift_targets"})
                 - {"04.ddp_average", "03.sinusoidal_positional_encoding"})  # (a list; integers)


@pytest.mark.parametrize("task_id", SPOILED)
def test_expected_values_come_from_copies_made_before_the_call(task_id, capsys):
    check(task_id, spoil_inputs_afterwards(CORRECT[task_id]))
    assert "changed its input" in capsys.readouterr().out


HARMLESS = [(t, as_float64(CORRECT[t])) for t in sorted(FLOAT_TENSOR | {"02.scaled_dot_product_attention"})]
HARMLESS += [(t, as_list(CORRECT[t])) for t in sorted(PAIR)]
HARMLESS += [("01.path_length", lambda kind, i, j: float(j - i) if kind == "rnn" else float(i != j)),
             ("04.block_flops", lambda t, d: 24.0 * t * d * d + 4.0 * t * t * d),
             ("05.warmup_cosine_lr", lambda *a: torch.tensor(warmup_cosine(*a), dtype=torch.float64)),
             ("07.select_by_validation", lambda runs: __import__("numpy").float64(
                 max(runs, key=lambda r: r["val_accuracy"])["test_accuracy"])),
             ("06.previous_token_head", lambda a: tuple(torch.tensor(divmod(
                 int(torch.diagonal(a, -1, -2, -1).mean(-1).argmax()), a.shape[1])))),
             ("02.padding_mask", lambda lengths, n: torch.arange(n).expand(len(lengths), n) < lengths[:, None]),
             ("05.shift_targets", lambda t: (t[:, :-1].int(), t[:, 1:].int())),
             ("05.sample_next", lambda logits, temperature=1.0, top_k=None, generator=None: sample_next(
                 logits.double(), temperature, top_k, generator).int()),
             ("03.split_heads", lambda x, h: split_heads(x, h).contiguous()),
             ("07.freeze_encoder", lambda model: model.encoder.requires_grad_(False) and model),
             ("04.ddp_average", lambda grads: torch.nn.Parameter(torch.stack(grads).mean(0))),
             ("04.time_fn", lambda work, sync, clock, repeats=5, warmup=2: __import__("numpy").float64(
                 time_fn(work, sync, clock, repeats, warmup)))]


@pytest.mark.parametrize("task_id, answer", HARMLESS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(HARMLESS)])
def test_harmless_variants_pass(task_id, answer, capsys):
    check(task_id, answer)
    assert f"{task_id}: passed" in capsys.readouterr().out


# ---------------------------------------------------------------- stubs and calling mistakes


def stub(*args, **kwargs):
    raise NotImplementedError("your code here")


@pytest.mark.parametrize("task_id", sorted(CORRECT))
def test_untouched_stub_fails_and_says_so(task_id):
    with pytest.raises(AssertionError, match="not done yet.*NotImplementedError"):
        check(task_id, stub)


def test_unknown_task_missing_answer_and_a_result_instead_of_a_function():
    with pytest.raises(KeyError, match="known tasks"):
        check("02.nope", stub)
    with pytest.raises(AssertionError, match="got None"):
        check("02.causal_mask", None)
    with pytest.raises(AssertionError, match="not a function.*without calling it"):
        check("02.causal_mask", torch.ones(3, 3, dtype=torch.bool).tril())


def test_a_checker_called_directly_outside_check_still_works_each_time():
    for _ in range(3):
        assert TASKS["02.causal_mask"](CORRECT["02.causal_mask"]) == 4
