"""The machinery behind ``check``: a task registry, a guarded way to call answers, and strict comparisons.

How a lesson's checks use it (grading/lessonNN.py)::

    @task("NN.name", time_limit=10, forbid=("softmax",))   # forbid: groups in _guard.LIBRARY_FUNCTIONS
    def check_name(fn) -> int:
        g, rng = fresh_generator(), fresh_rng()              # fresh at every check; check(..., seed=N) repeats
        cases = 0
        for length in (rng.randint(2, 9), 1):               # random cases first, then the edge cases
            x = torch.randn(3, length, generator=g)
            expected = reference(x)                          # from the checker's own tensors
            got = call("NN.name", f"x {tuple(x.shape)}", fn, x)   # the answer gets copies of x
            expect_tensor("NN.name", f"x {tuple(x.shape)}", got, expected, "what the right answer does",
                          [(plausible_wrong(x), "what this mistake is")])
            cases += 1
        return cases

Helpers (every failure raises ``CheckFailed``; nothing else escapes ``check``):

- ``task(task_id, time_limit=10.0, forbid=(), require=())`` registers a checker. ``forbid`` names library
  functions the answer must not call ("write it yourself"); ``require`` ones it must call (04.causal_sdpa).
- ``call(task_id, case, fn, *args, **kwargs)`` runs the answer on copies of the arguments (tensors cloned,
  lists/tuples/dicts rebuilt; modules, generators and callables are passed as they are), within what is
  left of the task's time limit, and turns every way it can go wrong (an exception, NotImplementedError,
  sys.exit, KeyboardInterrupt, a banned call, running too long, replacing a torch or checker function)
  into a CheckFailed naming the case. An answer that changed its inputs gets a note, not a failure.
  Compute expected values from your own tensors (before or after the call: the answer never sees them).
- ``expect_tensor(task_id, case, got, expected, hint, diagnoses=(), atol=1e-4, rtol=1e-4, nan_hint=None)``
  accepts only a plain CPU tensor of the right shape and kind (bool / integer / floating, any float dtype),
  rejects NaN and infinity, and names a known mistake when ``got`` matches one of ``diagnoses``. Returns
  the plain tensor.
- ``expect_number(task_id, case, got, expected, hint, diagnoses=(), tol=1e-6, integer=False,
  python_float=False)``: a Python/NumPy number or a one-element tensor (unless ``python_float``), turned
  into a plain int or float before comparing. Returns it.
- ``as_tensor(task_id, case, got, expected)``: ``got`` as a plain dense CPU tensor, or the failure saying
  what it is instead (None, a list, a NumPy array, a Tensor subclass, a meta or GPU tensor).
- ``as_number(task_id, case, got, expected, integer=False, python_float=False)``: the conversion alone.
- ``expect_tuple(task_id, case, got, names)``: a tuple or list of ``len(names)`` items, returned as a tuple.
- ``fail(task_id, case, expected, got, hint)`` raises the standard failure; ``note(text)`` adds a remark.
- ``fresh_generator()`` / ``fresh_rng()``: a torch.Generator / random.Random drawn from this run's seed.
  Never seed the global generator: ``check`` restores torch's global random state after a checker anyway.

Write the plausible mistakes as ``diagnoses`` and put a case that tells them apart first (a square input
where an axis mix-up would otherwise crash, a count where mean and median differ). The comparisons live in
``_compare`` and the guards (time limit, banned calls, copies, what a learner sees) in ``_guard``; import
everything from here. A failure prints its case, expected, got and hint first: IPython and Jupyter use
``CheckFailed._render_traceback_``, scripts a ``sys.excepthook`` that shortens only CheckFailed.
"""

from __future__ import annotations

import contextvars
import inspect
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._compare import CheckFailed, as_number, as_tensor, expect_number, expect_tensor, expect_tuple, fail, preview
from ._display import install_display
from ._guard import (
    ForbiddenCall,
    LibraryWatch,
    TimeUp,
    copy_inputs,
    library_name,
    same_inputs,
    snapshot,
    undo_replacements,
)
from ._guard import time_limit as _time_limit
from ._messages import localised, tr
from ._sandbox import SOLUTIONS_READ, SandboxViolation, answer_guard
from ._sandbox import install as _install_sandbox

_install_sandbox()  # from the first import on, a notebook cell that opens solutions/ is noted

# Course-library code an answer may call (everything else of the library is "the course's own implementation").
LIBRARY_ALLOWED: dict[str, tuple[str, ...]] = {
    "03.": ("attention_course.core.attention.scaled_dot_product_attention",),  # lesson 03 builds on lesson 02's
    "07.build_200_labels": ("attention_course.inside.pretrained.*",),  # start from the pretrained encoder (lesson 07)
}


# Functions (outside torch: see _guard.LIBRARY_FUNCTIONS for those) that a "write it yourself" task forbids.
FORBIDDEN_CALLS: dict[str, tuple[str, ...]] = {
    "08.latency_percentile": ("numpy.percentile", "numpy.quantile", "numpy.nanpercentile", "numpy.nanquantile",
                              "statistics.quantiles", "statistics.median", "torch.quantile", "torch.nanquantile"),
}


def _library_allowed(task_id: str) -> tuple[str, ...]:
    return tuple(name for prefix, names in LIBRARY_ALLOWED.items() if task_id.startswith(prefix) for name in names)

TASKS: dict[str, Callable[[object], int]] = {}
_OPTIONS: dict[str, dict] = {}


def task(task_id: str, time_limit: float = 10.0, forbid: tuple[str, ...] = (), require: tuple[str, ...] = ()):
    """Register a checker: a function that takes the learner's answer and returns how many cases it checked."""

    def register(checker: Callable[[object], int]) -> Callable[[object], int]:
        TASKS[task_id] = checker
        _OPTIONS[task_id] = {"time_limit": time_limit, "forbid": tuple(forbid), "require": tuple(require)}
        return checker

    return register


def known_tasks() -> list[str]:
    """All registered task ids, sorted."""
    return sorted(TASKS)


@dataclass
class _Run:
    task_id: str
    seed: int
    time_left: float
    forbid: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    draws: int = 0
    notes: list[str] = field(default_factory=list)
    required_used: set[str] = field(default_factory=set)


_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("attention_course_check", default=None)


def _new_run(task_id: str, seed: int | None = None, limit: float | None = None) -> _Run:
    options = _OPTIONS.get(task_id, {})
    return _Run(task_id, int.from_bytes(os.urandom(4), "little") if seed is None else int(seed),
                options.get("time_limit", 10.0) if limit is None else float(limit),
                options.get("forbid", ()), options.get("require", ()))


def _current(task_id: str) -> _Run:
    run = _RUN.get()
    return run if run is not None else _new_run(task_id)  # outside check(): a fresh run for this one use


def fresh_generator() -> torch.Generator:
    """A torch.Generator seeded from this check's seed (a different stream at each call)."""
    run = _current("")
    run.draws += 1
    return torch.Generator().manual_seed(run.seed * 1000 + run.draws)


def fresh_rng() -> random.Random:
    """A random.Random seeded from this check's seed (a different stream at each call)."""
    run = _current("")
    run.draws += 1
    return random.Random(run.seed * 1000 + run.draws)


def note(text: str) -> None:
    """A remark shown with the verdict (pass or fail), once."""
    run = _current("")
    if text not in run.notes:
        run.notes.append(text)


def check(task_id: str, answer: object, *, seed: int | None = None, time_limit: float | None = None) -> None:
    """Grade ``answer`` for ``task_id``: print one line when every case passes, else raise CheckFailed.

    ``seed`` repeats the random cases of an earlier run (a failure prints its seed); ``time_limit`` (seconds
    of the answer's own running time) replaces the task's limit.
    """
    __tracebackhide__ = True
    install_display(CheckFailed)
    if task_id not in TASKS:
        raise KeyError(tr("unknown task {quoted}; known tasks: {known}", quoted=repr(task_id),
                          known=", ".join(known_tasks())))
    if answer is None:
        raise CheckFailed(tr("{task_id}: got None. Pass your function (without calling it), e.g. check({quoted}, my_fn)",
                             task_id=task_id, quoted=repr(task_id)))
    if not callable(answer):
        raise CheckFailed(tr("{task_id}: got {got}, which is not a function. Pass the function itself, "
                             "without calling it: check({quoted}, my_fn), not check({quoted}, my_fn(...))",
                             task_id=task_id, got=preview(answer), quoted=repr(task_id)))
    _verify_untouched(task_id)
    if SOLUTIONS_READ:
        raise CheckFailed(tr("{task_id}: this notebook opened the worked solutions ({path}). The check "
                             "does not grade answers taken from them: restart the kernel and write your own.",
                             task_id=task_id, path=SOLUTIONS_READ[0]))
    run = _new_run(task_id, seed, time_limit)
    token = _RUN.set(run)
    try:
        with torch.random.fork_rng(devices=[]):  # the learner's random stream is the same after a check
            cases = TASKS[task_id](answer)
        for group in run.require:
            if group not in run.required_used:
                raise CheckFailed(tr("{task_id}: your values are right, but the task asks you to call "
                                     "{function}; your function computes it another way.",
                                     task_id=task_id, function=library_name(group)))
    except CheckFailed as failure:
        raise _final(run, str(failure), getattr(failure, "learner_error", None)) from None
    except Exception as error:  # the checker tripped over what the answer returned: still the learner's message
        raise _final(run, tr("{task_id}: the check could not use what your function returned "
                             "({error_type}: {error}).\n  hint: return exactly what the task describes "
                             "(a tensor, a number or a tuple, with the shape it names)",
                             task_id=task_id, error_type=type(error).__name__, error=error), None) from None
    finally:
        _RUN.reset(token)
    _verify_untouched(task_id)
    noted = "".join(tr("\n   note: {text}", text=text) for text in run.notes)
    passed = (tr("{task_id}: passed ({cases} case checked).", task_id=task_id, cases=cases) if cases == 1 else
              tr("{task_id}: passed ({cases} cases checked).", task_id=task_id, cases=cases))
    print(f"\N{WHITE HEAVY CHECK MARK} {passed}{noted}")


def _verify_untouched(task_id: str) -> None:
    from ._integrity import verify

    changed = verify()
    if changed:
        raise CheckFailed(tr("{task_id}: refused: this notebook changed {names}{more}. The check put them back; it "
                             "does not grade answers next to a patched PyTorch, NumPy or checker. Remove that code and "
                             "run again.", task_id=task_id, names=", ".join(changed[:4]),
                             more=tr(" and more") if len(changed) > 4 else ""))


def _final(run: _Run, message: str, learner_error: BaseException | None) -> CheckFailed:
    notes = "".join(tr("\n  note: {text}", text=text) for text in run.notes)
    repeat = tr("\n  (random cases from seed {seed}: check({quoted}, your_fn, seed={seed}) repeats them)",
                seed=run.seed, quoted=repr(run.task_id))
    failure = CheckFailed(message + notes + repeat)
    failure.learner_error = learner_error
    return failure


def _parameter_names(fn: Callable) -> list[str]:
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []


def _raise(task_id: str, case: str, text: str, error: BaseException | None = None):
    __tracebackhide__ = True
    failure = CheckFailed(tr("{task_id}: case '{case}': {text}", task_id=task_id, case=case, text=text))
    failure.learner_error = error
    raise failure from None


def call(task_id: str, case: str, fn: Callable, *args, **kwargs):
    """Call the learner's function on copies of the arguments; every way it can go wrong becomes a CheckFailed."""
    __tracebackhide__ = True
    run = _current(task_id)
    if run.time_left <= 0:
        _raise(task_id, case, tr("the time limit of this task was used up by the earlier cases: your function is far "
               "too slow (an endless loop, or a Python loop over every element?)"))
    given_args, given_kwargs = copy_inputs(list(args)), copy_inputs(dict(kwargs))
    watch = LibraryWatch(run.forbid, run.require) if (run.forbid or run.require) else None
    taken = snapshot()
    started = time.monotonic()
    guard = None
    try:
        with _time_limit(run.time_left), answer_guard(_library_allowed(task_id), (call.__code__,),
                                                     FORBIDDEN_CALLS.get(task_id, ())) as guard:
            if watch is None:
                result = fn(*given_args, **given_kwargs)
            else:
                with watch:
                    result = fn(*given_args, **given_kwargs)
        if guard.violation:  # the answer caught the signal and carried on
            raise SandboxViolation(guard.violation)
    except SandboxViolation as error:
        what = guard.violation if guard is not None and guard.violation else error.what
        _raise(task_id, case, tr("refused: your function {what}. An answer computes its result from its inputs "
               "with your own code; the check does not grade the course's implementation, the solutions or tricks "
               "played on the checker.", what=localised(what)))
    except NotImplementedError as error:
        _raise(task_id, case, tr("not done yet: the function still raises NotImplementedError. "
               "Replace the `raise NotImplementedError` line with your code."), error)
    except ForbiddenCall as error:
        _forbidden(task_id, case, error.name)
    except TimeUp:
        _raise(task_id, case, tr("your function was stopped: it ran past this task's time limit ({left:.3g} s "
               "left for this case). An endless loop (a `while` whose condition never changes)? Or a Python loop "
               "over every element where one tensor operation would do?", left=run.time_left))
    except SystemExit as error:
        _raise(task_id, case, tr("your function called sys.exit() or exit() (SystemExit({code})). Return the "
               "result instead: exiting would end the script or restart the notebook's kernel.", code=repr(error.code)),
               error)
    except KeyboardInterrupt as error:
        _raise(task_id, case, tr("your function was interrupted (KeyboardInterrupt). If you pressed stop, run the "
               "check again; if your code raises KeyboardInterrupt itself, return a value instead."), error)
    except Exception as error:  # the learner's bug, reported with the case that triggered it
        _raise(task_id, case, tr("your function raised {error_type}: {error}", error_type=type(error).__name__,
                                 error=error), error)
    except BaseException as error:  # GeneratorExit and other exits that `except Exception` does not catch
        _raise(task_id, case, tr("your function raised {error_type} (a BaseException that stops "
               "programs: {error}). Return a value instead.", error_type=type(error).__name__, error=error), error)
    finally:
        run.time_left -= time.monotonic() - started
        replaced = undo_replacements(taken)
    if replaced:
        _raise(task_id, case, tr("your function replaced {names}. An answer computes its result; it must "
               "not change PyTorch or the checker (they have been put back).", names=", ".join(replaced)))
    if watch is not None:
        if watch.banned_used:  # the answer caught the signal and carried on
            _forbidden(task_id, case, watch.banned_used)
        run.required_used |= watch.required_used
    names = _parameter_names(fn)
    changed = [names[i] if i < len(names) else tr("argument {number}", number=i + 1)
               for i, (a, b) in enumerate(zip(args, given_args, strict=True)) if not same_inputs(a, b)]
    changed += [k for k in kwargs if not same_inputs(kwargs[k], given_kwargs[k])]
    if changed:
        names = ", ".join(changed)
        note((tr("your function changed its input {names} in place. ", names=names) if len(changed) == 1 else
              tr("your function changed its inputs {names} in place. ", names=names)) + tr(
             "The check gave it copies, so your values were graded fairly, but a caller's tensors would change "
             "too: prefer `x = x - m` to `x -= m`, and avoid methods ending in _."))
    return result


def _forbidden(task_id: str, case: str, group: str):
    __tracebackhide__ = True
    _raise(task_id, case, tr("your function calls {function}. This task asks you to write it yourself "
           "from basic tensor operations (the check compares your result with that library function).",
           function=library_name(group)))


__all__ = ["TASKS", "CheckFailed", "as_number", "as_tensor", "call", "check", "expect_number", "expect_tensor",
           "expect_tuple", "fail", "fresh_generator", "fresh_rng", "known_tasks", "note", "preview", "task"]
