"""The machinery behind ``check``: a task registry, answer calling, and comparisons with diagnoses."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

TASKS: dict[str, Callable[[object], int]] = {}


class CheckFailed(AssertionError):
    """A graded case failed; the message names the case, what was expected, what came back, and a hint."""


def task(task_id: str):
    """Register a checker: a function that takes the learner's answer and returns how many cases it checked."""

    def register(checker: Callable[[object], int]) -> Callable[[object], int]:
        TASKS[task_id] = checker
        return checker

    return register


def known_tasks() -> list[str]:
    """All registered task ids, sorted."""
    return sorted(TASKS)


def check(task_id: str, answer: object) -> None:
    """Grade ``answer`` for ``task_id``: print one line when every case passes, else raise AssertionError."""
    if task_id not in TASKS:
        raise KeyError(f"unknown task {task_id!r}; known tasks: {', '.join(known_tasks())}")
    if answer is None:
        raise CheckFailed(f"{task_id}: got None. Pass your function (without calling it), e.g. check({task_id!r}, my_fn)")
    cases = TASKS[task_id](answer)
    print(f"\N{WHITE HEAVY CHECK MARK} {task_id}: passed ({cases} case{'s' if cases != 1 else ''} checked).")


def call(task_id: str, case: str, fn: Callable, *args, **kwargs):
    """Call the learner's function, turning a crash into a failure that says which case caused it."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{task_id}: not done yet: the function still raises NotImplementedError. "
                          "Replace the `raise NotImplementedError` line with your code.") from None
    except Exception as error:  # the learner's bug, reported with the case that triggered it
        raise CheckFailed(f"{task_id}: case '{case}' raised {type(error).__name__}: {error}") from error


def _preview(x: object) -> str:
    if isinstance(x, Tensor):
        flat = x.detach().flatten()[:6].tolist()
        shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat)
        return f"tensor of shape {tuple(x.shape)}, dtype {x.dtype}, first values [{shown}]"
    return repr(x)


def fail(task_id: str, case: str, expected: object, got: object, hint: str) -> None:
    raise CheckFailed(
        f"{task_id}: case '{case}' failed.\n  expected: {_preview(expected)}\n  got:      {_preview(got)}\n  hint: {hint}"
    )


def expect_tensor(
    task_id: str, case: str, got: object, expected: Tensor, hint: str,
    diagnoses: list[tuple[Tensor, str]] = (), atol: float = 1e-4,
) -> None:
    """Compare type, shape, dtype kind and values; if the values match a known mistake, say which one."""
    if not isinstance(got, Tensor):
        fail(task_id, case, expected, got, f"return a torch.Tensor, not {type(got).__name__}")
    if got.shape != expected.shape:
        fail(task_id, case, expected, got, f"the shape should be {tuple(expected.shape)}. {hint}")
    if expected.dtype == torch.bool:
        if got.dtype != torch.bool:
            fail(task_id, case, expected, got, "return a bool tensor (True = may attend), e.g. with `.bool()`")
        if torch.equal(got, expected):
            return
    elif not expected.is_floating_point():
        if torch.equal(got, expected):
            return
    elif got.is_floating_point() and torch.allclose(got.float(), expected.float(), atol=atol, rtol=1e-4):
        return
    for wrong, diagnosis in diagnoses:
        if wrong.shape == got.shape and torch.allclose(got.float(), wrong.float(), atol=atol, rtol=1e-4, equal_nan=True):
            fail(task_id, case, expected, got, diagnosis)
    fail(task_id, case, expected, got, hint)
