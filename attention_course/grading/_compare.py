"""Comparisons for the checks: the learner's result, converted to plain values, against the expected one.

Re-exported by ``_core`` (lesson checks import everything from there); see its docstring for how to use them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ._display import format_failure
from ._messages import tr

# Bound once: an answer that replaces torch.allclose or torch.equal cannot change these.
_allclose, _equal, _isfinite, _isnan, _isinf = torch.allclose, torch.equal, torch.isfinite, torch.isnan, torch.isinf


class CheckFailed(AssertionError):
    """A graded case failed; the message names the case, what was expected, what came back, and a hint."""

    learner_error: BaseException | None = None

    def _render_traceback_(self) -> list[str]:  # IPython/Jupyter show this instead of the grader's frames
        first, _, rest = format_failure(self).partition("\n")
        return [f"\x1b[0;31m{first}\x1b[0m" + ("\n" + rest if rest else "")]


def preview(x: object) -> str:
    """A short description of any value that never runs the value's own code (no custom __repr__ or __eq__)."""
    if type(x) is Tensor or isinstance(x, torch.nn.Parameter):
        head = tr("tensor of shape {shape}, dtype {dtype}", shape=tuple(x.shape), dtype=x.dtype)
        if x.device.type != "cpu":
            return tr("{head}, on device {device}", head=head, device=x.device)
        flat = x.detach().flatten()[:6].tolist()
        shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat)
        return tr("{head}, first values [{shown}{more}]", head=head, shown=shown, more=", ..." if x.numel() > 6 else "")
    if type(x) in (int, float, bool, str, type(None)):
        return repr(x) if type(x) is not str or len(x) < 80 else repr(x[:77]) + "..."
    if type(x) in (list, tuple) and len(x) <= 12:
        inner = ", ".join(preview(v) for v in x)
        return f"[{inner}]" if type(x) is list else f"({inner}{',' if len(x) == 1 else ''})"
    if type(x) in (list, tuple, dict):
        return tr("a {kind} of {count} items", kind=type(x).__name__, count=len(x))
    if isinstance(x, np.ndarray):
        return tr("a NumPy array of shape {shape}", shape=x.shape)
    if isinstance(x, np.generic):
        return tr("NumPy {kind} {value}", kind=type(x).__name__, value=repr(x.item()))
    return tr("an object of type {kind}", kind=type(x).__name__)


def fail(task_id: str, case: str, expected: object, got: object, hint: str) -> None:
    __tracebackhide__ = True
    raise CheckFailed(tr("{task_id}: case '{case}' failed.\n  expected: {expected}\n  got:      {got}\n  hint: {hint}",
                         task_id=task_id, case=case, expected=preview(expected), got=preview(got), hint=hint)) from None


def as_tensor(task_id: str, case: str, got: object, expected: object) -> Tensor:
    """The answer's result as a plain, dense CPU tensor, or a failure saying what it is instead."""
    __tracebackhide__ = True
    if isinstance(got, torch.nn.Parameter):
        got = got.detach()
    if type(got) is not Tensor:
        if got is None:
            hint = tr("your function returned None: did you forget `return`?")
        elif isinstance(got, Tensor):
            hint = tr("return a plain torch.Tensor, not an object of the Tensor subclass {kind}", kind=type(got).__name__)
        elif type(got) in (tuple, list):
            hint = tr("return one tensor, not a {kind} of {count} items", kind=type(got).__name__, count=len(got))
        elif isinstance(got, np.ndarray):
            hint = tr("return a torch.Tensor, not a NumPy array: keep the computation in torch")
        elif type(got) in (int, float, bool) or isinstance(got, np.generic):
            hint = tr("return a tensor, not a single number")
        else:
            hint = tr("return a torch.Tensor, not {kind}", kind=type(got).__name__)
        fail(task_id, case, expected, got, hint)
    if got.device.type == "meta":
        fail(task_id, case, expected, got, tr("your tensor is on the meta device: it has a shape but no values. Create "
             "tensors on the inputs' device, e.g. torch.zeros_like(x) or torch.zeros(..., device=x.device)"))
    if got.device.type != "cpu":
        fail(task_id, case, expected, got, tr("your tensor is on {device} but the inputs were on the CPU: keep "
             "the result on the inputs' device (no .cuda() / .to('cuda'); create tensors with device=x.device)",
             device=got.device))
    if got.layout != torch.strided:
        got = got.to_dense()
    if got.is_complex():
        fail(task_id, case, expected, got, tr("return real numbers, not a complex tensor"))
    return got.detach().resolve_conj().resolve_neg()


def _close(a: Tensor, b: Tensor, atol: float, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype == torch.bool or b.dtype == torch.bool:
        return a.dtype == b.dtype and _equal(a, b)
    return _allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=True)


def expect_tensor(
    task_id: str, case: str, got: object, expected: Tensor, hint: str,
    diagnoses: list[tuple[Tensor, str]] = (), atol: float = 1e-4, rtol: float = 1e-4, nan_hint: str | None = None,
) -> Tensor:
    """Compare type, device, shape, dtype kind and values; if the values match a known mistake, say which one."""
    __tracebackhide__ = True
    got = as_tensor(task_id, case, got, expected)
    for wrong, diagnosis in diagnoses:  # a known mistake of another shape (e.g. only the last state)
        if wrong.shape != expected.shape and _close(got, wrong, atol, rtol):
            fail(task_id, case, expected, got, diagnosis)
    if got.shape != expected.shape:
        extra = (tr(" (the right number of values in another arrangement: check the order of the axes)")
                 if got.numel() == expected.numel() else "")
        fail(task_id, case, expected, got, tr("the shape should be {shape}{extra}. {hint}", shape=tuple(expected.shape),
                                              extra=extra, hint=hint))
    if expected.dtype == torch.bool:
        if got.dtype != torch.bool:
            fail(task_id, case, expected, got, tr("return a bool tensor (True = may attend), e.g. with `.bool()` "
                 "or a comparison; yours has dtype {dtype}", dtype=got.dtype))
    elif not expected.is_floating_point():
        if got.is_floating_point() or got.dtype == torch.bool:
            fail(task_id, case, expected, got, tr("return whole numbers (an integer dtype such as torch.long), "
                 "not {dtype}", dtype=got.dtype))
    else:
        if not got.is_floating_point():
            fail(task_id, case, expected, got, tr("return floating-point values, not {dtype} (did an integer "
                 "tensor slip in? use .float())", dtype=got.dtype))
    if _close(got, expected, atol, rtol):
        return got
    bad = ~_isfinite(got) & _isfinite(expected) if got.is_floating_point() else torch.zeros(())
    kinds = tr(" and ").join(name for name, found in (("NaN", _isnan(got)), (tr("infinity"), _isinf(got)))
                             if got.is_floating_point() and bool((found & bad).any()))
    for wrong, diagnosis in diagnoses:
        if _close(got, wrong, atol, rtol):
            fail(task_id, case, expected, got, diagnosis + (tr(" (that is also where your {kinds} comes from)", kinds=kinds)
                                                            if kinds else ""))
    if kinds:
        fail(task_id, case, expected, got, tr("your result contains {kinds} ({bad} of {total} values). {hint}",
                                              kinds=kinds, bad=int(bad.sum()), total=got.numel(), hint=nan_hint or hint))
    if got.is_floating_point() and got.dtype in (torch.float16, torch.bfloat16) and _close(got, expected, 3e-2, 3e-2):
        fail(task_id, case, expected, got, tr("close, but computed in {dtype}: keep the inputs' precision (float32)",
                                              dtype=got.dtype))
    fail(task_id, case, expected, got, hint)


def as_number(task_id: str, case: str, got: object, expected: object, integer: bool = False,
              python_float: bool = False) -> float | int:
    """``got`` as a plain int or float (from Python, NumPy or a one-element tensor), finite; else a failure."""
    __tracebackhide__ = True
    value = None
    if type(got) is bool or isinstance(got, np.bool_):
        fail(task_id, case, expected, got, tr("return a number, not True/False"))
    elif isinstance(got, int):
        value = int.__index__(got)  # a plain int even from a subclass with home-made comparisons
    elif isinstance(got, float):
        value = float.__float__(got)
    elif isinstance(got, np.generic) and got.dtype.kind in "iuf":
        value = got.item()
    elif isinstance(got, Tensor):
        tensor = as_tensor(task_id, case, got, expected)
        if tensor.numel() != 1:
            fail(task_id, case, expected, got, tr("return one number, not a tensor of shape {shape}",
                                                  shape=tuple(tensor.shape)))
        if python_float:
            fail(task_id, case, expected, got, tr("return a Python float, e.g. with `.item()`, not a tensor"))
        if tensor.dtype == torch.bool:
            fail(task_id, case, expected, got, tr("return a number, not True/False"))
        value = tensor.item()
    if value is None:
        fail(task_id, case, expected, got, (tr("your function returned None: did you forget `return`?") if got is None
                                            else tr("return a number (int or float), not {got}", got=preview(got))))
    if python_float and isinstance(value, int):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        fail(task_id, case, expected, value, tr("your function returned {value}: a number must be finite", value=value))
    if integer:
        if isinstance(value, float) and not value.is_integer():
            fail(task_id, case, expected, value, tr("this should be a whole number"))
        value = int(value)
    return value


def expect_number(
    task_id: str, case: str, got: object, expected: float, hint: str,
    diagnoses: list[tuple[float, str]] = (), tol: float = 1e-6, integer: bool = False, python_float: bool = False,
) -> float | int:
    """A plain number close to ``expected`` (exactly equal when ``integer``); known mistakes are named."""
    __tracebackhide__ = True
    value = as_number(task_id, case, got, expected, integer, python_float)
    if value == expected if integer else abs(value - expected) <= tol * max(1.0, abs(expected)):
        return value
    for wrong, diagnosis in diagnoses:
        if abs(value - wrong) <= tol * max(1.0, abs(wrong)):
            fail(task_id, case, expected, value, diagnosis)
    fail(task_id, case, expected, value, hint)


def expect_tuple(task_id: str, case: str, got: object, names: tuple[str, ...]) -> tuple:
    """A tuple (or list) of ``len(names)`` items, returned as a plain tuple."""
    __tracebackhide__ = True
    wanted = f"({', '.join(names)})"
    if isinstance(got, (tuple, list)):
        if len(got) == len(names):
            return tuple(got)
        fail(task_id, case, wanted, got, tr("return {count} values {wanted}; you returned {returned}", count=len(names),
                                            wanted=wanted, returned=len(got)))
    what = tr("None: did you forget `return`?") if got is None else preview(got)
    fail(task_id, case, wanted, got, tr("return a tuple {wanted}; you returned {what}", wanted=wanted, what=what))
