"""Answers that would fool a naive checker, by accident or on purpose, fail with a message that says why.

Each kind of trick is applied to every task it fits (the right answer altered in one way), with a fixed seed so
that the test is repeatable; the checks themselves draw fresh cases at every call.
"""

import math
import sys
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_grading import CORRECT, FLOAT_TENSOR, NUMBER, PAIR, layer_norm, sdpa, softmax, split_heads

from attention_course.grading import check
from attention_course.grading._core import CheckFailed

SEED = 11


def rejected(task_id, answer, *words, **options):
    """The check fails with a CheckFailed (never another exception) whose message holds every one of ``words``."""
    with pytest.raises(CheckFailed) as failure:
        check(task_id, answer, seed=SEED, **options)
    message = str(failure.value)
    assert message.startswith(task_id) and all(w in message for w in words), message
    return message


def altered(task_id, change_tensor=None, change_number=None):
    """The right answer with its tensor results (or numbers) passed through a change."""
    def answer(*args, **kwargs):
        out = CORRECT[task_id](*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(change_tensor(o) if isinstance(o, torch.Tensor) else change_number(o) for o in out)
        if isinstance(out, torch.Tensor):
            return change_tensor(out)
        return change_number(out)
    return answer


# ---------------------------------------------------------------- hard-coded answers


def remembers_first_result(task_id):
    """Returns whatever the right answer gave on the first call, for every later case: a hard-coded answer."""
    memory = []

    def answer(*args, **kwargs):
        if not memory:
            memory.append(CORRECT[task_id](*args, **kwargs))
        return memory[0]
    return answer


@pytest.mark.parametrize("task_id", sorted(CORRECT))
def test_a_hard_coded_result_fails(task_id):
    rejected(task_id, remembers_first_result(task_id), "case")


@pytest.mark.parametrize("task_id", ["01.accuracy", "04.block_flops", "05.warmup_cosine_lr", "07.select_by_validation"])
def test_a_constant_copied_from_an_earlier_failure_fails(task_id):
    with pytest.raises(CheckFailed) as failure:
        check(task_id, lambda *a, **k: 0.123456, seed=SEED)
    expected = str(failure.value).split("expected: ")[1].split("\n")[0]
    rejected(task_id, lambda *a, **k: float(expected))


# ---------------------------------------------------------------- NaN, infinity


def with_value(value):
    def change(t):
        if not t.is_floating_point():
            return t
        t = t.contiguous().clone()
        t.view(-1)[0] = value
        return t
    return change


NAN_TASKS = sorted(FLOAT_TENSOR | NUMBER | {"02.scaled_dot_product_attention", "06.previous_token_head"})


@pytest.mark.parametrize("task_id", NAN_TASKS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_nan_and_infinity_fail_with_a_message(task_id, value):
    message = rejected(task_id, altered(task_id, with_value(value), lambda n: value))
    assert any(w in message for w in ("NaN", "infinity", "inf", "nan")), message


# ---------------------------------------------------------------- objects with home-made comparisons


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __float__(self):
        return 0.0

    def __index__(self):
        return 0

    def __repr__(self):
        raise RuntimeError("a checker must not call this")

    __hash__ = object.__hash__


class LyingTensor(torch.Tensor):
    """Compares equal to anything, and claims closeness to anything."""

    def __eq__(self, other):
        return torch.ones_like(torch.Tensor(self), dtype=torch.bool)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


class LyingFloat(float):
    def __eq__(self, other):
        return True

    def __sub__(self, other):
        return 0.0

    def __float__(self):
        return 0.123

    __hash__ = float.__hash__


class LyingInt(int):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = int.__hash__


@pytest.mark.parametrize("task_id", sorted(CORRECT))
def test_an_object_that_claims_equality_fails(task_id):
    rejected(task_id, lambda *a, **k: AlwaysEqual(), "case")
    rejected(task_id, lambda *a, **k: (AlwaysEqual(), AlwaysEqual()), "case")


LIARS = sorted(FLOAT_TENSOR | {"02.causal_mask", "02.padding_mask", "05.sample_next", "02.scaled_dot_product_attention"})


@pytest.mark.parametrize("task_id", LIARS)
def test_a_tensor_subclass_fails(task_id):
    def liar(t):
        return torch.zeros_like(t).as_subclass(LyingTensor)
    rejected(task_id, altered(task_id, liar, None), "subclass")


@pytest.mark.parametrize("task_id", sorted(NUMBER - {"01.path_length", "04.block_flops"}))
def test_a_float_subclass_with_its_own_comparisons_fails(task_id):
    rejected(task_id, lambda *a, **k: LyingFloat(0.5), "case")


@pytest.mark.parametrize("task_id", ["01.path_length", "04.block_flops"])
def test_an_int_subclass_with_its_own_comparisons_fails(task_id):
    rejected(task_id, lambda *a, **k: LyingInt(3), "case")


# ---------------------------------------------------------------- wrong types, devices, dtypes


TYPE_MISTAKES = [
    ("returns None", lambda out: None, "forget `return`"),
    ("a NumPy array", lambda out: np.asarray(out.detach()), "NumPy"),
    ("a list of numbers", lambda out: out.tolist(), "not a list"),
    ("on the meta device", lambda out: out.to("meta"), "meta device"),
    ("a string", lambda out: "tensor([1, 2])", "not str"),
]


@pytest.mark.parametrize("task_id", sorted(FLOAT_TENSOR | {"02.causal_mask", "02.padding_mask"}))
@pytest.mark.parametrize("mistake, change, words", TYPE_MISTAKES, ids=[m for m, _, _ in TYPE_MISTAKES])
def test_a_result_of_the_wrong_type_or_device_gets_a_fitting_hint(task_id, mistake, change, words):
    rejected(task_id, lambda *a, **k: change(CORRECT[task_id](*a, **k)), words)


NUMBER_MISTAKES = [
    ("returns None", lambda out: None, "forget `return`"),
    ("a string", lambda out: str(out), "return a number"),
    ("a list", lambda out: [out], "return a number"),
    ("a bool", lambda out: True, "not True/False"),
    ("a tensor of two numbers", lambda out: torch.tensor([float(out), 0.0]), "one number"),
    ("a number on the meta device", lambda out: torch.tensor(float(out), device="meta"), "meta device"),
]


@pytest.mark.parametrize("task_id", sorted(NUMBER))
@pytest.mark.parametrize("mistake, change, words", NUMBER_MISTAKES, ids=[m for m, _, _ in NUMBER_MISTAKES])
def test_a_number_task_names_the_wrong_type(task_id, mistake, change, words):
    rejected(task_id, lambda *a, **k: change(CORRECT[task_id](*a, **k)), words)


def test_a_tensor_where_a_python_float_is_asked_for():
    rejected("01.accuracy", lambda logits, labels: (logits.argmax(-1) == labels).float().mean(), ".item()")
    rejected("04.time_fn", lambda *a: torch.tensor(CORRECT["04.time_fn"](*a)), ".item()")


@pytest.mark.parametrize("task_id", sorted(PAIR))
@pytest.mark.parametrize("change, words", [(lambda out: out[0], "return a tuple"), (lambda out: (*out, out[0]), "return 2"),
                                           (lambda out: out[:1], "return 2"), (lambda out: None, "forget `return`"),
                                           (lambda out: {"a": out[0], "b": out[1]}, "return a tuple")])
def test_a_tuple_of_the_wrong_length_or_none_gets_a_fitting_hint(task_id, change, words):
    rejected(task_id, lambda *a, **k: change(CORRECT[task_id](*a, **k)), words)


DTYPE_MISTAKES = [
    ("02.causal_mask", lambda t: torch.ones(t, t).tril(), "bool"),
    ("02.causal_mask", lambda t: torch.ones(t, t, dtype=torch.long).tril(), "bool"),
    ("02.padding_mask", lambda lengths, n: (torch.arange(n)[None] < lengths[:, None]).int(), "bool"),
    ("05.shift_targets", lambda t: (t[:, :-1].float(), t[:, 1:].float()), "whole numbers"),
    ("05.sample_next", lambda *a: CORRECT["05.sample_next"](*a).float(), "integer token ids"),
    ("02.softmax", lambda s: softmax(s).long(), "floating-point"),
    ("07.mean_pool", lambda h, m: ((h * m[..., None]).sum(1) / m.sum(1, keepdim=True)).bool(), "floating-point"),
    ("02.softmax", lambda s: softmax(s).to(torch.complex64), "complex"),
    ("03.layer_norm", lambda x, g, b: layer_norm(x.bfloat16(), g.bfloat16(), b.bfloat16()), "bfloat16"),
    ("03.split_heads", lambda x, h: split_heads(x, h).half(), "float16"),
]


@pytest.mark.parametrize("task_id, answer, words", DTYPE_MISTAKES, ids=[f"{t}-{i}" for i, (t, _, w) in enumerate(DTYPE_MISTAKES)])
def test_a_wrong_dtype_gets_a_fitting_hint(task_id, answer, words):
    rejected(task_id, answer, words)


def test_a_gpu_result_is_named_as_such(monkeypatch):
    real = torch.Tensor.device

    def device(self):
        return torch.device("cuda:0") if getattr(self, "_pretend_cuda", False) else real.__get__(self)

    monkeypatch.setattr(torch.Tensor, "device", property(device))

    def on_gpu(*args):
        out = CORRECT["02.softmax"](*args)
        out._pretend_cuda = True
        return out
    rejected("02.softmax", on_gpu, "cuda:0", "inputs' device")


def test_odd_results_never_raise_anything_but_check_failed():
    odd = [set(), {1: 2}, iter([1]), b"1", 1j, object(), torch.empty(0), torch.tensor([]), range(3), Ellipsis, type,
           torch.zeros(2, dtype=torch.bool),
           torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long), [], (2, 2), check_invariants=True)]
    for task_id in sorted(CORRECT):
        for value in odd:
            with pytest.raises(CheckFailed):
                check(task_id, lambda *a, value=value, **k: value, seed=SEED)


# ---------------------------------------------------------------- exits, interrupts, endless loops


def exits(*a, **k):
    sys.exit(3)


def interrupted(*a, **k):
    raise KeyboardInterrupt


def generator_exit(*a, **k):
    raise GeneratorExit("done")


def base_exception(*a, **k):
    raise BaseException("stop")


EXITS = [(exits, "sys.exit()"), (interrupted, "KeyboardInterrupt"), (generator_exit, "GeneratorExit"),
         (base_exception, "BaseException"), (lambda *a, **k: 1 / 0, "ZeroDivisionError")]


@pytest.mark.parametrize("task_id", sorted(CORRECT))
@pytest.mark.parametrize("answer, words", EXITS, ids=[w for _, w in EXITS])
def test_exits_and_interrupts_inside_an_answer_give_a_message(task_id, answer, words):
    rejected(task_id, answer, words, "case")


def forever(*a, **k):
    while True:
        pass


def sleeps(*a, **k):
    time.sleep(30)


def swallows_everything(*a, **k):
    while True:
        try:
            time.sleep(0.01)
        except Exception:
            pass


@pytest.mark.parametrize("task_id", sorted(CORRECT))
def test_an_endless_loop_is_stopped(task_id):
    started = time.monotonic()
    rejected(task_id, forever, "stopped", "time limit", time_limit=0.1)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("answer", [sleeps, swallows_everything])
def test_sleeping_or_swallowing_exceptions_does_not_escape_the_limit(answer):
    started = time.monotonic()
    message = rejected("02.softmax", answer, time_limit=0.3)
    # Stopped at the limit; on a loaded machine the answer may first be caught unsetting the checker's profile
    # (the limit's exception passes through it), which is refused: either way no points, within the limit.
    assert "stopped" in message or "refused: your function calls sys.setprofile" in message, message
    assert time.monotonic() - started < 5


def test_a_slow_answer_uses_up_the_time_of_the_later_cases():
    def slow(s):
        time.sleep(0.15)
        return softmax(s)
    rejected("02.softmax", slow, "time limit", time_limit=0.5)


def test_the_time_limit_also_works_off_the_main_thread():
    outcome = {}

    def run():
        try:
            check("02.softmax", forever, seed=SEED, time_limit=0.3)
        except CheckFailed as failure:
            outcome["message"] = str(failure)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(10)
    assert "stopped" in outcome.get("message", ""), outcome


def test_the_time_limit_leaves_no_alarm_behind():
    import signal

    check("02.softmax", softmax, seed=SEED)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None) or callable(
        signal.getsignal(signal.SIGALRM))


# ---------------------------------------------------------------- "write it yourself": no library shortcut

BANNED = [
    ("02.softmax", lambda s: torch.softmax(s, -1), "torch.softmax"),
    ("02.softmax", lambda s: F.softmax(s, dim=-1), "torch.softmax"),
    ("02.softmax", lambda s: s.softmax(-1), "torch.softmax"),
    ("02.softmax", lambda s: torch.nn.Softmax(dim=-1)(s), "torch.softmax"),
    ("02.softmax", lambda s: F.log_softmax(s, -1).exp(), "log_softmax"),
    ("02.softmax", lambda s: torch.special.softmax(s, -1), "torch.softmax"),
    ("02.softmax", lambda s: torch.ops.aten._softmax(s, -1, False), "torch.softmax"),
    ("03.layer_norm", lambda x, g, b: F.layer_norm(x, x.shape[-1:], g, b), "layer_norm"),
    ("03.layer_norm", lambda x, g, b: torch.layer_norm(x, x.shape[-1:], g, b), "layer_norm"),
    ("03.layer_norm", lambda x, g, b: nn_layer_norm(x, g, b), "nn.LayerNorm"),
    ("02.scaled_dot_product_attention", lambda q, k, v, mask=None: library_sdpa(q, k, v, mask),
     "scaled_dot_product_attention"),
    ("03.multi_head_attention", lambda x, wq, wk, wv, wo, n, mask=None: library_mha(x, wq, wk, wv, wo, n, mask),
     "MultiheadAttention"),
]


def nn_layer_norm(x, g, b):
    norm = torch.nn.LayerNorm(x.shape[-1])
    with torch.no_grad():
        norm.weight.copy_(g)
        norm.bias.copy_(b)
    return norm(x)


def library_sdpa(q, k, v, mask=None):
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out, sdpa(q, k, v, mask)[1]


def library_mha(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    b, t, d = x.shape
    layer = torch.nn.MultiheadAttention(d, n_heads, bias=False, batch_first=True)
    with torch.no_grad():
        layer.in_proj_weight.copy_(torch.cat([w_q.T, w_k.T, w_v.T]))
        layer.out_proj.weight.copy_(w_o.T)
    attn_mask = None if mask is None else ~mask.expand(b, n_heads, t, t).reshape(b * n_heads, t, t)
    return layer(x, x, x, attn_mask=attn_mask, need_weights=False)[0]


@pytest.mark.parametrize("task_id, answer, words", BANNED, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BANNED)])
def test_calling_the_library_function_the_task_replaces_fails(task_id, answer, words):
    rejected(task_id, answer, words, "write it yourself")


def test_the_ban_cannot_be_caught_and_ignored():
    def sneaky(s):
        try:
            return torch.softmax(s, -1)
        except BaseException:  # noqa: BLE001
            return softmax(s)
    rejected("02.softmax", sneaky, "write it yourself")


def test_a_name_imported_before_the_check_is_banned_too():
    from torch.nn.functional import softmax as imported_early

    rejected("02.softmax", lambda s: imported_early(s, -1), "write it yourself")


def test_the_ban_is_lifted_after_the_answer_and_the_checker_may_use_the_library(capsys):
    check("02.softmax", softmax, seed=SEED)
    assert torch.allclose(torch.softmax(torch.zeros(3), 0), torch.full((3,), 1 / 3))
    check("03.layer_norm", layer_norm, seed=SEED)
    assert F.layer_norm(torch.ones(2, 3), (3,)).abs().sum() == 0
    assert capsys.readouterr().out.count("passed") == 2


def test_other_tasks_may_use_the_library():
    check("03.multi_head_attention", lambda x, *a: CORRECT["03.multi_head_attention"](x, *a), seed=SEED)
    check("02.scaled_dot_product_attention", lambda q, k, v, mask=None: (
        (w := torch.softmax(masked_scores(q, k, mask), -1)) @ v, w), seed=SEED)


def masked_scores(q, k, mask):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return s if mask is None else s.masked_fill(~mask, float("-inf"))


def test_the_fused_kernel_task_asks_for_the_fused_kernel():
    rejected("04.causal_sdpa", lambda q, k, v: torch.softmax(masked_scores(
        q, k, torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool).tril()), -1) @ v, "your values are right",
             "scaled_dot_product_attention")


# ---------------------------------------------------------------- replacing PyTorch or the checker


def replaces(owner, name, value):
    def answer(*args, **kwargs):
        setattr(owner, name, value)
        return CORRECT["02.softmax"](*args, **kwargs)
    return answer


def test_an_answer_that_replaces_torch_or_the_checker_fails_and_is_undone():
    import attention_course.grading._compare as compare
    import attention_course.grading.lesson02 as lesson02

    originals = torch.allclose, torch.equal, lesson02.expect_tensor, compare._close
    for owner, name, value in [(torch, "allclose", lambda *a, **k: True), (torch, "equal", lambda *a: True),
                               (torch.Tensor, "__eq__", lambda self, other: True),
                               (lesson02, "expect_tensor", lambda *a, **k: None),
                               (compare, "_close", lambda *a: True)]:
        rejected("02.softmax", replaces(owner, name, value), "replaced", name)
    assert (torch.allclose, torch.equal, lesson02.expect_tensor, compare._close) == originals
    assert "__eq__" not in vars(torch.Tensor) and not bool((torch.zeros(1) == torch.ones(1)).all())
