"""The checker's seal: what PyTorch, NumPy, Python's builtins and the course's modules were when the grading
package was imported, so that ``check`` can tell (and undo) a notebook that patched them before a check.

``seal()`` runs once, at the end of ``attention_course.grading``'s import; ``verify()`` runs at the start and the
end of every ``check``. It compares each sealed module's entries (and every course function's ``__code__``,
defaults and the entries of its classes) by identity, puts back what changed and returns the names.
A notebook that patched them *before* importing the grading package is not seen here: the class grade comes
from ``grading.isolated``, which imports the checker before any learner code.
"""

from __future__ import annotations

import builtins
import math
import os
import random
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

_MISSING = object()
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
_FUNCTION_PARTS = ("__code__", "__defaults__", "__kwdefaults__")
_SEAL: list[tuple[str, object, dict]] = []
_CODES: list[tuple[str, types.FunctionType, tuple]] = []
_REGISTRIES: list[tuple[str, dict, dict]] = []  # the task registry's contents (a dict changed in place)


def _owners() -> list[tuple[str, object]]:
    owners = [("torch", torch), ("torch.nn.functional", F), ("torch.Tensor", torch.Tensor),
              ("torch.nn.Module", torch.nn.Module), ("numpy", np), ("builtins", builtins), ("math", math),
              ("random", random)]
    for name, module in sorted(sys.modules.items()):
        if (name == "attention_course" or name.startswith("attention_course.")) and module is not None:
            owners.append((name, module))
            for attribute, value in list(vars(module).items()):
                if isinstance(value, type) and value.__module__ == name:
                    owners.append((f"{name}.{attribute}", value))
    return owners


# Builtins the checks rely on (Jupyter swaps `input` and others at every cell: those are not sealed).
_BUILTINS = ("isinstance", "issubclass", "type", "abs", "float", "int", "len", "max", "min", "bool", "round", "sorted",
             "sum", "range", "list", "tuple", "dict", "set", "getattr", "hasattr", "setattr", "iter", "next", "all",
             "any", "zip", "map", "enumerate", "str", "repr", "callable", "id", "object", "super", "print", "vars")


def seal() -> None:
    """Remember the current state (called once, when the grading package has been imported)."""
    _SEAL.clear()
    _CODES.clear()
    _REGISTRIES.clear()
    core = sys.modules.get("attention_course.grading._core")
    if core is not None:
        _REGISTRIES.extend([("TASKS", core.TASKS, dict(core.TASKS)), ("_OPTIONS", core._OPTIONS, dict(core._OPTIONS))])
    for label, owner in _owners():
        entries = dict(vars(owner))
        if owner is builtins:
            entries = {name: entries[name] for name in _BUILTINS}
        _SEAL.append((label, owner, entries))
        if label.startswith("attention_course"):
            for name, value in entries.items():
                function = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
                if isinstance(function, types.FunctionType):
                    _CODES.append((f"{label}.{name}", function, tuple(getattr(function, p) for p in _FUNCTION_PARTS)))


def _wraps(new: object, old: object) -> bool:
    """``new`` is PyTorch's own wrapper of ``old``, defined inside torch: through functools.wraps, or closing over it
    (the first ``torch.compile`` makes torch._dynamo wrap ``nn.Module.__init__`` and ``__setstate__`` that way, to tag
    new modules; a notebook that compiles after importing the checker must not be refused for it)."""
    code = getattr(new, "__code__", None)
    filename = code.co_filename if code is not None else ""
    if not (f"{os.sep}torch{os.sep}" in filename and filename.startswith(_TORCH_DIR)):
        return False
    closed_over = [cell.cell_contents for cell in (getattr(new, "__closure__", None) or ()) if _filled(cell)]
    return getattr(new, "__wrapped__", None) is old or any(value is old for value in closed_over)


def _filled(cell: types.CellType) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True


def verify() -> list[str]:
    """Put back every sealed entry and function part that changed since ``seal``; return their names."""
    changed = []
    for label, owner, entries in _SEAL:
        own = vars(owner)
        for name, value in entries.items():
            now = own.get(name, _MISSING)
            if now is not value and _wraps(now, value):
                entries[name] = now  # PyTorch wrapping its own function on a lazy import (torch._dynamo)
            elif now is not value:
                changed.append(f"{label}.{name}")
                try:
                    setattr(owner, name, value)
                except (AttributeError, TypeError):  # a read-only mapping: nothing could have changed it either
                    pass
    for label, registry, entries in _REGISTRIES:
        if registry != entries or any(registry[k] is not v for k, v in entries.items()):
            changed.append(f"attention_course.grading.{label}")
            registry.clear()
            registry.update(entries)
    for label, function, parts in _CODES:
        for part, value in zip(_FUNCTION_PARTS, parts, strict=True):
            if getattr(function, part) is not value:
                changed.append(f"{label}.{part}")
                setattr(function, part, value)
    return changed
