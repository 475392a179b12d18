"""Old module paths keep working: ``from attention_course.gpt import GPT`` still imports ``attention_course.core.gpt``.

The library used to be flat (``attention_course/gpt.py``); it now has one sub-package per part of the book.
``MOVED`` maps each old path (below ``attention_course``) to its new one; a finder after the standard path finder
answers only for those old paths (a module that exists is always found first), hands back the very module object
of the new path, and warns once with a DeprecationWarning that names it. A module that was split in several
(``bench``) maps to all its parts: its old path gives a stand-in whose attributes come from the part that defines
them, with a warning that names that part.

``MOVED`` is a plain literal: the maintainers' rewriting script reads it to move a file's imports to the new paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
import warnings

PACKAGE = __name__.rpartition(".")[0]

MOVED: dict[str, str | tuple[str, ...]] = {
    "attention": "core.attention",
    "course": "core.course",
    "data": "core.data",
    "device": "core.device",
    "fused_loss": "core.fused_loss",
    "fused_mlp": "core.fused_mlp",
    "gpt": "core.gpt",
    "lesson": "core.lesson",
    "models": "core.models",
    "profiles": "core.profiles",
    "training": "core.training",
    "bench": ("core.benchmarks", "parallel.sweeps", "parallel.gpt_step", "parallel.idle", "parallel.scaling"),
    "sharding": "parallel.sharding",
    "train": "parallel.train",
    "explain": "inside.explain",
    "explorer": "inside.explorer",
    "pretrained": "inside.pretrained",
    "transfer": "inside.transfer",
    "viz": "inside.viz",
    "distill": "deploy.distill",
    "generation": "deploy.generation",
    "quantize": "deploy.quantize",
    "serving": "deploy.cost",
    "serving_bench": "deploy.experiment",
    "forecast": "beyond.forecast",
    "multimodal": "beyond.multimodal",
    "vision": "beyond.vision",
    "candidates": "proof.candidates",
    "memo": "proof.memo",
    "poc": "proof.evidence",
    "tools.challenges": "grading.challenges",
}

# data files that moved with their module (the rewriting script follows references to them)
MOVED_FILES: dict[str, str] = {"poc_kpis.json": "proof/poc_kpis.json"}


def new_path(old: str) -> str | tuple[str, ...]:
    """The full new path(s) of the old full path ``old`` (``attention_course.gpt`` -> ``attention_course.core.gpt``)."""
    target = MOVED[old.removeprefix(PACKAGE + ".")]
    return f"{PACKAGE}.{target}" if isinstance(target, str) else tuple(f"{PACKAGE}.{part}" for part in target)


_IMPORT_MACHINERY = ("<frozen importlib", os.path.dirname(importlib.__file__) + os.sep, __file__)


def _warn(message: str) -> None:
    """A DeprecationWarning pointed at the code that imported the old path, past the import machinery's frames."""
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_IMPORT_MACHINERY):
        frame = frame.f_back
        # warnings.warn itself passes over importlib's bootstrap frames when it counts levels
        level += not ("importlib" in frame.f_code.co_filename and "_bootstrap" in frame.f_code.co_filename)
    warnings.warn(message, DeprecationWarning, stacklevel=level)


class _Alias(importlib.abc.Loader):
    """Loads an old path as the module object of its new path (one module, two names)."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        _warn(f"{spec.name} moved to {self.target}: import it from there")
        module = importlib.import_module(self.target)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # the import system has just set the old path's spec on the module: give it back its own
        module.__spec__ = self.own_spec

    def get_code(self, fullname: str):
        """``python -m OLD``: runpy asks for code to run as __main__; it runs the new module as __main__ itself (so that
        its relative imports start from its own package, not the old path's)."""
        _warn(f"{fullname} moved to {self.target}: run `python -m {self.target}`")
        return compile(f"import runpy\nrunpy.run_module({self.target!r}, run_name='__main__', alter_sys=True)\n",
                       f"<{fullname}, moved to {self.target}>", "exec")


def _ownership(module: types.ModuleType, attribute: str) -> int:
    """2 if ``module`` defines the function or class ``attribute``, 1 for another value of its own, 0 for an import."""
    value = vars(module)[attribute]
    owner = getattr(value, "__module__", None) if isinstance(value, (type, types.FunctionType)) else None
    if owner == module.__name__:
        return 2
    return 0 if isinstance(value, types.ModuleType) or owner is not None else 1


class _SplitModule(types.ModuleType):
    """The old path of a module that was split: each attribute comes from the new module that defines it."""

    def __init__(self, name: str, parts: tuple[str, ...]):
        super().__init__(name, f"{name} was split into {', '.join(parts)}")
        self._parts = parts

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        having = [module for module in map(importlib.import_module, self._parts) if attribute in vars(module)]
        if not having:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attribute!r} (it was split into "
                                 f"{', '.join(self._parts)})")
        module = max(having, key=lambda module: _ownership(module, attribute))  # the first of the best
        _warn(f"{self.__name__}.{attribute} moved to {module.__name__}.{attribute}: import it from there")
        return getattr(module, attribute)

    def __dir__(self) -> list[str]:
        return sorted({name for part in self._parts for name in vars(importlib.import_module(part))})


class _Split(importlib.abc.Loader):
    def __init__(self, parts: tuple[str, ...]):
        self.parts = parts

    def create_module(self, spec):
        return _SplitModule(spec.name, self.parts)

    def exec_module(self, module) -> None:
        pass


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the old flat paths of ``MOVED`` (and nothing else)."""

    def find_spec(self, fullname: str, path=None, target=None):
        if not fullname.startswith(PACKAGE + ".") or fullname.removeprefix(PACKAGE + ".") not in MOVED:
            return None
        new = new_path(fullname)
        loader = _Alias(new) if isinstance(new, str) else _Split(new)
        return importlib.machinery.ModuleSpec(fullname, loader)


def install() -> None:
    """Put the finder right after the standard path finder (once): a module that exists is always found first, and an
    old path is answered here before an editable install's finder could find a stale copy of it elsewhere."""
    if any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        return
    after = next((i + 1 for i, finder in enumerate(sys.meta_path) if finder is importlib.machinery.PathFinder),
                 len(sys.meta_path))
    sys.meta_path.insert(after, MovedFinder())
