"""What runs around a learner's answer: a time limit, banned library calls, copies of the inputs.

Nothing here is imported by lesson checks directly; ``_core.call`` uses it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode


class TimeUp(BaseException):  # noqa: N818  (a signal, not an error; BaseException so `except Exception` cannot eat it)
    """Raised inside an answer that ran past its task's time limit."""


class ForbiddenCall(BaseException):  # noqa: N818
    """Raised inside an answer that called the library function the task asks the learner to write."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


# ------------------------------------------------------------------ banned and required library calls

# What each "write it yourself" task replaces: (torch callables, aten op names, what the learner is told).
LIBRARY_FUNCTIONS: dict[str, tuple[tuple, tuple[str, ...], str]] = {
    "softmax": ((torch.softmax, F.softmax, Tensor.softmax, torch.special.softmax, torch.log_softmax,
                 F.log_softmax, Tensor.log_softmax, torch.nn.functional.softmin, torch._softmax),
                ("aten._softmax", "aten.softmax", "aten._log_softmax", "aten.log_softmax", "aten.special_softmax"),
                "torch.softmax / F.softmax / Tensor.softmax (or log_softmax)"),
    "layer_norm": ((F.layer_norm, torch.layer_norm, torch.native_layer_norm),
                   ("aten.layer_norm", "aten.native_layer_norm"),
                   "torch.nn.functional.layer_norm / nn.LayerNorm"),
    "scaled_dot_product_attention": ((F.scaled_dot_product_attention,), ("aten.scaled_dot_product_attention",
                                                                          "aten._scaled_dot_product"),
                                     "torch.nn.functional.scaled_dot_product_attention"),
    "multi_head_attention": ((F.multi_head_attention_forward, torch._native_multi_head_attention),
                             ("aten._native_multi_head_attention",),
                             "torch.nn.MultiheadAttention / F.multi_head_attention_forward"),
}


def library_name(group: str) -> str:
    return LIBRARY_FUNCTIONS[group][2]


def _matches(func, group: str) -> bool:
    objects, aten, _ = LIBRARY_FUNCTIONS[group]
    if any(func is obj for obj in objects):
        return True
    if isinstance(func, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        return str(func).startswith(aten) if aten else False
    return False


class LibraryWatch(TorchFunctionMode):
    """Sees every torch call the answer makes (however it was imported): raises on banned ones, notes required ones."""

    def __init__(self, forbid: tuple[str, ...], require: tuple[str, ...]):
        super().__init__()
        self.forbid, self.require = forbid, require
        self.banned_used: str | None = None
        self.required_used: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        for group in self.forbid:
            if _matches(func, group):
                self.banned_used = group
                raise ForbiddenCall(group)
        for group in self.require:
            if _matches(func, group):
                self.required_used.add(group)
        return func(*args, **(kwargs or {}))


# ------------------------------------------------------------------ the time limit


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise TimeUp inside the block once ``seconds`` have passed.

    On the main thread of a Unix process (scripts, Jupyter kernels) a SIGALRM timer interrupts the answer
    between two Python steps; elsewhere a trace function checks the clock at each line (unless a debugger or
    coverage tool already traces). One long torch operation finishes before either can stop it.
    """
    if seconds is None or seconds <= 0:
        yield
        return
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        def on_alarm(signum, frame):
            raise TimeUp()

        previous_handler = signal.signal(signal.SIGALRM, on_alarm)
        previous_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
        started = time.monotonic()
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_handler)
            if previous_delay:  # someone else's timer (e.g. a test runner's): give back what is left of it
                signal.setitimer(signal.ITIMER_REAL, max(previous_delay - (time.monotonic() - started), 1e-3))
        return
    if sys.gettrace() is not None:
        yield
        return
    deadline = time.monotonic() + seconds

    def tracer(frame, event, arg):
        if time.monotonic() > deadline:
            raise TimeUp()
        return tracer

    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(None)


# ------------------------------------------------------------------ copies of the inputs


def copy_inputs(value):
    """A copy the answer may change freely: tensors cloned, lists/tuples/dicts rebuilt, anything else shared."""
    if type(value) is Tensor or isinstance(value, torch.nn.Parameter):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(copy_inputs(v) for v in value)
    if type(value) is dict:
        return {k: copy_inputs(v) for k, v in value.items()}
    if type(value) is np.ndarray:
        return value.copy()
    return value


def same_inputs(original, given) -> bool:
    """Whether the answer left its copy of an input as it was (values, shapes, list lengths, dict keys)."""
    if isinstance(original, Tensor):
        if not isinstance(given, Tensor) or given.shape != original.shape or given.dtype != original.dtype:
            return False
        both_nan = torch.isnan(original) & torch.isnan(given) if original.is_floating_point() else False
        return bool(((given == original) | both_nan).all()) if original.numel() else True
    if isinstance(original, np.ndarray):
        return (isinstance(given, np.ndarray) and given.shape == original.shape and given.dtype == original.dtype
                and bool(np.array_equal(given, original, equal_nan=original.dtype.kind in "fc")))
    if isinstance(original, (list, tuple)):
        return (type(given) is type(original) and len(given) == len(original)
                and all(same_inputs(a, b) for a, b in zip(original, given, strict=True)))
    if isinstance(original, dict):
        return (type(given) is dict and given.keys() == original.keys()
                and all(same_inputs(original[k], given[k]) for k in original))
    if isinstance(original, (int, float, str, bool, type(None))):
        return type(given) is type(original) and given == original
    return True


# ------------------------------------------------------------------ what an answer must not replace

_GUARDED = {"torch": ("allclose", "equal", "isfinite", "isnan", "isinf", "is_tensor", "tensor", "as_tensor", "stack"),
            "torch.Tensor": ("__eq__", "__ne__", "__bool__", "item", "tolist", "double", "float", "detach", "clone",
                             "abs", "all", "any", "sum", "to", "to_dense", "resolve_conj", "resolve_neg", "numel"),
            "builtins": ("isinstance", "type", "abs", "float", "int", "len", "max", "min", "bool", "round", "sorted"),
            "math": ("isfinite", "isclose")}


def _owners() -> list[tuple[str, object, tuple[str, ...] | None]]:
    """What to watch: named functions of torch, Tensor, builtins and math, and every function of the checker."""
    import builtins
    import math

    objects = {"torch": torch, "torch.Tensor": Tensor, "builtins": builtins, "math": math}
    owners = [(label, objects[label], names) for label, names in _GUARDED.items()]
    package = __name__.rpartition(".")[0]
    return owners + [(name, module, None) for name, module in list(sys.modules.items())
                     if name == package or name.startswith(package + ".")]


_MISSING = object()


def snapshot() -> list[tuple[str, object, dict]]:
    """The library and checker functions a check relies on, as they are now (each owner's own entries)."""
    taken = []
    for label, owner, names in _owners():
        own = vars(owner)
        taken.append((label, owner, dict(own) if names is None else {n: own.get(n, _MISSING) for n in names}))
    return taken


def undo_replacements(taken) -> list[str]:
    """Put back whatever an answer replaced; return the names it replaced."""
    replaced = []
    for label, owner, saved in taken:
        own = vars(owner)
        for name, value in saved.items():
            if own.get(name, _MISSING) is not value:
                replaced.append(f"{label}.{name}")
                if value is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, value)
    return replaced


# ------------------------------------------------------------------ showing a failure
