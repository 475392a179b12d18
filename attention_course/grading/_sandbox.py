"""What an answer may not do while a check runs it: look at the checker, call the course's own implementation,
read the worked solutions, start threads or processes, or reach below Python.

Two watchers, both active only inside ``answer_guard`` (``_core.call`` wraps every call of an answer in it):

- an audit hook (PEP 578; installed once per process, it cannot be removed) refuses the events through which
  code reads other frames or memory (``sys._getframe``, ``inspect.stack``, ``gc.get_referrers``, a traceback's
  ``tb_frame``, ``ctypes``), swaps a function's ``__code__``, patches a class it did not define, starts a
  thread or a process, or opens the solutions, ``/proc/*/mem``;
- a profile function sees every Python function the answer enters: a function of the course library (not the
  grading package, not the harmless helpers in ``HARMLESS``) entered from the answer's code, or the answer
  being such a function itself, is "the course's own implementation" unless the task allows it.

Only events the answer's own code started count ("learner-initiated": the first frame above the event that
is not in the standard library, site-packages or the course package is the answer's, found before any
checker frame). The checker's own use of the library (training a learner's model with ``fit_classifier``)
and Python's own use of frames (``collections.namedtuple``, ``typing``) stay allowed.

The audit hook also notes, at any time, a notebook cell that opens a file under ``solutions/``: ``check``
then refuses every answer of that kernel (``solutions_read``).

What this cannot stop in a learner's own kernel (the class grade does not depend on it: see
``grading.isolated``): code that ran before ``attention_course.grading`` was imported, and C extensions.
"""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path

from ._messages import deferred

_GRADING = os.path.dirname(os.path.abspath(__file__)) + os.sep  # attention_course/grading/ (as Python names it)
_PACKAGE = os.path.dirname(_GRADING[:-1]) + os.sep  # attention_course/
_ROOTS = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
          sys.prefix, sys.base_prefix, sys.exec_prefix)
# Both spellings: a virtual environment reached through a symbolic link names its files by the link.
_TRUSTED_ROOTS = tuple({form + os.sep for p in _ROOTS if p for form in (os.path.abspath(p), str(Path(p).resolve()))}
                       | {_PACKAGE})
# Library modules an answer may use in every task (no task asks the learner to write these). _moved is import
# machinery: every import the standard path finder misses asks it (and it answers only for the library's old paths,
# whose modules are watched like any other).
HARMLESS = ("attention_course/__init__.py", "attention_course/core/profiles.py", "attention_course/core/device.py",
            "attention_course/core/course.py", "attention_course/inside/viz.py", "attention_course/core/lesson.py",
            "attention_course/_moved.py")
# Modules whose job is to hand frames to their caller: an answer may not use them (others use frames themselves).
_FRAME_GIVERS = ("/inspect.py", "/traceback.py", "/pdb.py", "/bdb.py", "/trace.py", "/_pytest/_code/code.py")
_GUARDED_CLASSES = {"torch", "numpy", "builtins", "attention_course", "math", "random"}  # no answer patches these
_FRAME_ATTRIBUTES = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back", "gi_yieldfrom"}
_PROCESS_EVENTS = {"_thread.start_new_thread", "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn",
                   "os.spawn", "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill",
                   "sys.addaudithook", "sys.settrace", "sys.setprofile", "sys._current_frames",
                   "sys._current_exceptions", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
                   "os.add_dll_directory"}


class SandboxViolation(BaseException):  # noqa: N818  (BaseException: `except Exception` in an answer cannot eat it)
    """Raised inside an answer that tried something ``answer_guard`` refuses; ``what`` says what."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class _State(threading.local):
    def __init__(self):
        self.guard: _Guard | None = None
        self.in_hook = False


_STATE = _State()
SOLUTIONS_READ: list[str] = []  # files under solutions/ that a notebook cell opened in this process
_INSTALLED = False


def trusted_file(filename: str) -> bool:
    """Code of Python, an installed package or the course (not a learner's notebook, script or test)."""
    return filename.startswith(_TRUSTED_ROOTS) or filename.startswith("<frozen")


def notebook_cell(filename: str) -> bool:
    """A code object compiled from a notebook cell (IPython's files, or ``isolated``'s ``<cell N>``)."""
    return "ipykernel_" in filename or filename.startswith(("<ipython-input", "<cell"))


def _library_file(filename: str) -> bool:
    return (filename.startswith(_PACKAGE) and not filename.startswith(_GRADING)
            and not filename.endswith(HARMLESS) and "/tools/" not in filename[len(_PACKAGE) - 1:])


def _learner_initiated(frame) -> bool:
    """Whether the code that caused an event is the answer's: a learner frame before any checker frame."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_GRADING):
            return False
        if not trusted_file(filename):
            return True
        frame = frame.f_back
    return False


def _audit(event: str, args: tuple) -> None:
    state = _STATE
    if state.in_hook:
        return
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if f"{os.sep}solutions{os.sep}" in path or path.startswith(f"solutions{os.sep}"):
            _note_solutions_read(path)
    guard = state.guard
    if guard is None:
        return
    what = _refused(event, args)
    if what is None:
        return
    state.in_hook = True
    try:
        caller = sys._getframe(1)  # the Python code that caused the event (C functions have no frame)
        if not _learner_initiated(caller):
            return
        if event in ("sys._getframe", "object.__getattr__") or event.startswith("ctypes."):
            user = caller  # who gets the frame or the memory: past inspect/traceback/ctypes, the code that called them
            while user is not None and (user.f_code.co_filename.endswith(_FRAME_GIVERS)
                                        or f"{os.sep}ctypes{os.sep}" in user.f_code.co_filename):
                user = user.f_back
            if user is not None and trusted_file(user.f_code.co_filename):
                return  # PyTorch, transformers or Python for their own bookkeeping (a frame, a shared library)
        if event.startswith("object.") and trusted_file(caller.f_code.co_filename):
            return  # PyTorch or Python setting up a class it just made (a lazy import); verify() sees the rest
    finally:
        state.in_hook = False
    guard.violation = guard.violation or what  # the first one (unsetting a profile that raised is an event too)
    raise SandboxViolation(guard.violation)


def _note_solutions_read(path: str) -> None:
    state = _STATE
    state.in_hook = True
    try:
        frame = sys._getframe(2)
        while frame is not None and trusted_file(frame.f_code.co_filename):
            frame = frame.f_back
        if frame is not None and notebook_cell(frame.f_code.co_filename) and path not in SOLUTIONS_READ:
            SOLUTIONS_READ.append(path)
    finally:
        state.in_hook = False


def _refused(event: str, args: tuple) -> str | None:
    """What an answer would be doing with this event, if it is one the guard refuses."""
    if event == "sys._getframe":
        return deferred("reads the checker's frames (sys._getframe / inspect)")
    if event.startswith("ctypes."):
        return deferred("uses ctypes ({event}) to reach below Python", event=event)
    if event in _PROCESS_EVENTS:
        return deferred("calls {event} (threads, processes, hooks and the garbage collector's object lists are "
                        "off-limits)", event=event)
    if event == "object.__getattr__" and len(args) > 1 and args[1] in _FRAME_ATTRIBUTES:
        return deferred("reads .{attribute} (the frames of the running check)", attribute=args[1])
    if event in ("object.__setattr__", "object.__delattr__") and len(args) > 1:
        target, name = args[0], args[1]
        if name in ("__code__", "__defaults__", "__kwdefaults__") and not _learner_object(target):
            return deferred("swaps the {name} of {target}", name=name, target=repr(getattr(target, '__qualname__', target)))
        if isinstance(target, type) and str(getattr(target, "__module__", "")).split(".")[0] in _GUARDED_CLASSES:
            return deferred("changes the class {cls} ({name})", cls=f"{target.__module__}.{target.__qualname__}", name=name)
        return None
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if path.startswith("/proc/") and path.endswith(("/mem", "/environ", "/maps")):
            return deferred("opens {path} (the memory of a process)", path=path)
        if f"{os.sep}solutions{os.sep}" in path or path.startswith(f"solutions{os.sep}"):
            return deferred("reads the worked solutions ({path})", path=path)
    return None


def _learner_object(obj) -> bool:
    code = getattr(obj, "__code__", None)
    if code is not None:
        return not trusted_file(code.co_filename)
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    filename = getattr(module, "__file__", None)
    return module is None or filename is None or not trusted_file(filename)


def install() -> None:
    """Install the audit hook once per process (an audit hook cannot be removed; inactive, it only notes reads
    of solutions/)."""
    global _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_audit)
        _INSTALLED = True


def _resolve(dotted: str):
    """'numpy.percentile' -> (the function's code object or None, the callable)."""
    import importlib

    module_name, _, name = dotted.rpartition(".")
    target = getattr(importlib.import_module(module_name), name)
    inner = getattr(target, "_implementation", None) or getattr(target, "__wrapped__", None) or target
    return getattr(inner, "__code__", None), target


class _Guard:
    def __init__(self, allowed: tuple[str, ...], direct_callers: tuple, forbidden: tuple[str, ...] = ()):
        self.allowed = allowed
        self.direct_callers = direct_callers
        resolved = {name: _resolve(name) for name in forbidden}
        self.forbidden_codes = {code: name for name, (code, _) in resolved.items() if code is not None}
        self.forbidden_objects = {id(target): name for name, (_, target) in resolved.items()}
        self.violation: str | None = None
        self.library_used: str | None = None

    def profile(self, frame, event, arg):
        if self.library_used is not None:
            return
        if event == "call" and frame.f_code in self.forbidden_codes:
            self._forbidden(self.forbidden_codes[frame.f_code])
        if event == "c_call" and id(arg) in self.forbidden_objects:
            self._forbidden(self.forbidden_objects[id(arg)])
        if event == "call":
            filename = frame.f_code.co_filename
            if not _library_file(filename):
                return
            entry, caller = frame, frame.f_back
            while caller is not None and _library_file(caller.f_code.co_filename):
                entry, caller = caller, caller.f_back
            while caller is not None and trusted_file(caller.f_code.co_filename) \
                    and not caller.f_code.co_filename.startswith(_GRADING):
                caller = caller.f_back  # through PyTorch's wrappers (no_grad, Module.__call__) to who called
            if caller is not None and caller.f_code.co_filename.startswith(_GRADING) \
                    and caller.f_code not in self.direct_callers:
                return  # the checker itself uses the library (e.g. trains the learner's model)
            self._library(entry.f_code.co_filename, entry.f_code.co_qualname)
        elif event == "c_call":
            wrapped = getattr(arg, "__wrapped__", None)  # an lru_cache'd library function (e.g. a data split)
            code = getattr(wrapped, "__code__", None)
            if code is not None and _library_file(code.co_filename) and _learner_initiated(frame):
                self._library(code.co_filename, code.co_qualname)

    def _forbidden(self, name: str) -> None:
        self.library_used = name
        self.violation = self.violation or deferred("calls {name}, which this task asks you to write yourself", name=name)
        raise SandboxViolation(self.violation)

    def _library(self, filename: str, qualname: str) -> None:
        module = "attention_course." + filename[len(_PACKAGE):].removesuffix(".py").replace(os.sep, ".")
        name = f"{module}.{qualname}"
        if any(name == a or (a.endswith(".*") and name.startswith(a[:-1])) for a in self.allowed):
            return
        self.library_used = name
        self.violation = self.violation or deferred("calls the course library's own {name}", name=name)
        raise SandboxViolation(self.violation)


@contextlib.contextmanager
def answer_guard(allowed: tuple[str, ...] = (), direct_callers: tuple = (),
                 forbidden: tuple[str, ...] = (), library: bool = True) -> Iterator[_Guard]:
    """Run an answer under the audit hook and the library watch; ``guard.violation`` says what it tried.

    ``allowed``: course-library functions the answer may call ("attention_course.inside.pretrained.*" for a module);
    ``forbidden``: other functions it may not ("numpy.percentile"); ``direct_callers``: the checker's code
    objects that call the answer (an answer that *is* a library function is refused too); ``library=False``:
    the audit hook only (a notebook's top-level cells import and set up freely)."""
    install()
    guard = _Guard(tuple(allowed), tuple(direct_callers), tuple(forbidden))
    previous_guard, previous_profile = _STATE.guard, sys.getprofile()
    _STATE.guard = guard
    if library:
        sys.setprofile(guard.profile)
    try:
        yield guard
    finally:
        sys.setprofile(previous_profile)
        _STATE.guard = previous_guard
