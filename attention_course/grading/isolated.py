"""A class grade computed where the learner's code cannot reach the checker before it runs.

``python -I -m attention_course.grading.isolated`` reads a job (JSON on stdin: the learner's code cells in
order, the graded tasks with the name of each answer, hidden cases, a time limit, and optionally ``lang``, the
language of the messages: "ja" for a notebook of the Japanese edition) and writes one verdict per
task (JSON on stdout). For every task it:

1. imports the checker first (all lessons) and seals it (``_integrity``) before any learner code exists;
2. forks a child that runs the learner's cells up to that task's test cell, under the audit hook of
   ``_sandbox`` (no frames, gc, ctypes, threads, processes or solutions), with stdout and stderr discarded;
3. in the child, verifies the seal (a notebook that patched PyTorch, NumPy or the checker is refused, the
   patch named), then runs ``check`` on the learner's answer and the task's hidden cases, and writes the
   verdict with the job's nonce to a pipe;
4. in the parent, accepts exactly one verdict carrying the nonce within the time limit; a child that died
   (``os._exit``, a crash) or ran too long costs that task only.

The grader (``tools/gradebook.py``) runs this as a throwaway Unix user, on a read-only copy of the library,
in an empty folder: the learner's code has no access to the repository, the solutions, the hidden tests'
source, the gradebook or other submissions. What it cannot stop, in the child that runs learner code: C-level
tricks (a C extension, or a CPython internal that the audit hook does not see) that write a forged verdict line
for the learner's *own* tasks. They cannot reach another learner's grade or files.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time

import torch

import attention_course.grading as grading  # first, before any learner code: the checker is sealed on import
from attention_course.core.language import LANG_ENV
from attention_course.grading._compare import CheckFailed
from attention_course.grading._core import check
from attention_course.grading._guard import TimeUp, time_limit
from attention_course.grading._integrity import verify
from attention_course.grading._messages import localised, tr
from attention_course.grading._sandbox import SandboxViolation, answer_guard
from attention_course.grading.challenges import CHALLENGE_CHECKS, challenge_message, run_time_rule

_write, _exit, _dumps = os.write, os._exit, json.dumps  # bound before learner code runs
MESSAGE_LIMIT = 2000


def _short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _run_cells(cells: list[dict], until: int, namespace: dict, deadline: float, cell_limit: float) -> list[str]:
    """Run the learner's cells before position ``until``; return the errors they raised (one line each)."""
    errors = []
    for cell in cells:
        if cell["index"] >= until:
            break
        try:
            code = compile(cell["source"], f"<cell {cell['index']}>", "exec")
        except SyntaxError as error:
            errors.append(tr("cell {index}: SyntaxError: {msg} (line {lineno})",
                             index=cell['index'] + 1, msg=error.msg, lineno=error.lineno))
            continue
        try:
            with time_limit(max(min(cell_limit, deadline - time.monotonic()), 0.1)), answer_guard(library=False):
                exec(code, namespace)  # noqa: S102  (the learner's own cell, in a throwaway process)
        except SandboxViolation as error:
            errors.append(tr("cell {index}: refused: your code {what}", index=cell['index'] + 1, what=localised(error.what)))
        except TimeUp:
            errors.append(tr("cell {index} was stopped at the time limit (an endless loop?)", index=cell['index'] + 1))
        except BaseException as error:  # noqa: BLE001  (a learner's cell may raise anything; the next cells still run)
            errors.append(tr("cell {index}: {name}: {error}",
                             index=cell['index'] + 1, name=type(error).__name__, error=error))
    return errors


def _hidden(task: dict, namespace: dict) -> str | None:
    """The first hidden case that fails, as a message; None when all hold. A case sees only the learner's answer,
    the real builtins and PyTorch: a notebook that rebinds ``abs`` or ``torch`` cannot bend the case itself."""
    names = {"__builtins__": builtins, "torch": torch, task["answer"]: namespace[task["answer"]]}
    for expression, why in task.get("hidden", []):
        try:
            with time_limit(10.0), answer_guard(library=False):
                holds = eval(expression, dict(names))  # noqa: S307  (the course's own hidden case)
        except BaseException as error:  # noqa: BLE001
            return tr("{task} (hidden case): {why}; evaluating it raised {name}: {error}",
                      task=task['task'], why=why, name=type(error).__name__, error=error)
        if holds is not True:
            return tr("{task} (hidden case): {why}", task=task['task'], why=why)
    return None


def verdict(task: dict, cells: list[dict], seed: int | None, limit: float, cell_limit: float) -> dict:
    """Run the cells and grade one task, in this (child) process; returns {"passed", "message"}."""
    started = time.monotonic()
    deadline = started + limit
    namespace = {"__name__": "__learner__", "__builtins__": __builtins__}
    errors = _run_cells(cells, task["cell"], namespace, deadline, cell_limit)
    ran = time.monotonic() - started  # measured here: a challenge's training time is not taken on the team's word
    changed = verify()
    if changed:
        return {"passed": False, "message": tr("{task}: refused: your notebook changed {changed}. The grade is "
                                               "computed with the course's own PyTorch, NumPy and checker.",
                                               task=task['task'], changed=', '.join(changed[:4]))}
    name = task["answer"]
    if name not in namespace:
        why = tr(" (the notebook's cells raised: {errors})", errors='; '.join(errors[:3])) if errors else ""
        return {"passed": False, "message": tr("{task}: `{name}` is not defined when this check runs{why}",
                                               task=task['task'], name=name, why=why)}
    printed = io.StringIO()
    if task["task"] in CHALLENGE_CHECKS:
        return _challenge(task["task"], namespace[name], ran)
    try:
        with contextlib.redirect_stdout(printed):
            check(task["task"], namespace[name], seed=seed)
    except CheckFailed as failure:
        return {"passed": False, "message": str(failure)}
    except BaseException as error:  # noqa: BLE001  (e.g. an unknown task: the course's bug, not the learner's)
        return {"passed": False, "message": tr("{task}: the check stopped: {name}: {error}",
                                               task=task['task'], name=type(error).__name__, error=error)}
    failed = _hidden(task, namespace)
    if failed:
        return {"passed": False, "message": failed}
    return {"passed": True, "message": printed.getvalue().strip() or tr("{task}: passed", task=task['task'])}


def _challenge(task_id: str, answer: object, ran: float) -> dict:
    """A team challenge: the score is what the checker measured, written here (not what the team printed);
    ``ran``: the seconds the team's cells took here."""
    too_long = run_time_rule(task_id, ran)
    if too_long:
        return {"passed": False, "message": too_long}
    if not isinstance(answer, dict):
        return {"passed": False, "message": tr("{task_id}: pass a dict (see the notebook's last cell)", task_id=task_id)}
    try:
        with contextlib.redirect_stdout(io.StringIO()), answer_guard(library=False):
            score, detail = CHALLENGE_CHECKS[task_id](answer)
    except BaseException as error:  # noqa: BLE001  (ChallengeFailed, or the team's code raising)
        return {"passed": False, "message": f"{task_id}: {type(error).__name__}: {error}"}
    return {"passed": True, "message": challenge_message(task_id, score, detail)}


def _child(task: dict, job: dict, write_end: int) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    try:
        timeout = float(job.get("timeout", 60))
        result = verdict(task, job["cells"], job.get("seed"), task_limit(task["task"], timeout), timeout)
    except BaseException as error:  # noqa: BLE001
        result = {"passed": False, "message": tr("{task}: the grader stopped: {name}: {error}",
                                                 task=task['task'], name=type(error).__name__, error=error)}
    for number in range(1, signal.NSIG):  # no handler the learner left may run during the write
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            signal.signal(number, signal.SIG_DFL)
    record = _dumps({"nonce": job["nonce"], "passed": bool(result["passed"]) is True,
                     "message": _short(str(result["message"]))})
    _write(write_end, (record + "\n").encode())
    _exit(0)


def task_limit(task_id: str, timeout: float) -> float:
    """Seconds a task may take: the class's limit, or the task's own when larger (the build tasks train)."""
    from attention_course.grading._core import _OPTIONS

    return max(timeout, float(_OPTIONS.get(task_id, {}).get("time_limit", 10.0)) + 30.0)


def grade_tasks(job: dict) -> list[dict]:
    """One verdict per task of ``job`` (this process never runs learner code; each task's child does)."""
    results = []
    if job.get("lang"):  # the language of the notebook graded: its messages (the grade is the same)
        os.environ[LANG_ENV] = str(job["lang"])
    for task in job["tasks"]:
        limit = task_limit(task["task"], float(job.get("timeout", 60)))
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _child(task, job, write_end)
        os.close(write_end)
        chunks, started, stopped = [], time.monotonic(), False
        while True:
            left = limit + 5 - (time.monotonic() - started)
            if left <= 0:
                stopped = True
                break
            ready, _, _ = select.select([read_end], [], [], left)
            if not ready:
                continue
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(read_end)
        if stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        results.append(_accept(task, b"".join(chunks), job["nonce"], stopped, limit))
    return results


def _accept(task: dict, raw: bytes, nonce: str, stopped: bool, limit: float) -> dict:
    name = task["task"]
    if stopped:
        return {"task": name, "passed": False, "message": tr("{name}: stopped: the notebook's code and this check "
                                                             "ran past the {limit:g} s limit (an endless loop, or a "
                                                             "cell that waits?)", name=name, limit=limit)}
    lines = [line for line in raw.decode(errors="replace").splitlines() if line.strip()]
    records = []
    for line in lines:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("nonce") == nonce:
                records.append(record)
    if len(lines) == 1 and len(records) == 1 and isinstance(records[0].get("passed"), bool):
        return {"task": name, "passed": records[0]["passed"], "message": str(records[0].get("message", ""))}
    if not lines:
        return {"task": name, "passed": False, "message": tr("{name}: the notebook's code ended the grading process "
                                                             "before this check gave a verdict (os._exit, a crash, "
                                                             "or a killed kernel); earlier and later tasks are "
                                                             "graded on their own", name=name)}
    return {"task": name, "passed": False, "message": tr("{name}: refused: the grading process received {n_lines} "
                                                         "verdicts for this task; the notebook's code wrote to the "
                                                         "grader's channel", name=name, n_lines=len(lines))}


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError("the job stream ended early")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _manager() -> None:
    """One notebook: read its job (and only its job) from stdin, become its user, grade, answer on stdout."""
    work = None
    try:
        header = _read_exactly(0, 12)
        job = json.loads(_read_exactly(0, int(header)))
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # the later notebooks' jobs stay out of reach of this one's code
        uid, gid = job.get("uid"), job.get("gid")
        work = tempfile.mkdtemp(prefix="job-")  # 0700: this notebook's own home and scratch, not the class run's
        if uid is not None and os.geteuid() == 0:
            os.chown(work, int(uid), int(gid))
        os.chdir(work)
        os.environ.update(HOME=work, TMPDIR=work)
        tempfile.tempdir = work  # the learner's temporary files too (tempfile caches its folder)
        if uid is not None and os.geteuid() == 0:
            os.setgroups([])
            os.setgid(int(gid))
            os.setuid(int(uid))
        results = grade_tasks(job)
        line = json.dumps({"nonce": job["nonce"], "key": job.get("key"), "results": results}) + "\n"
        _write(1, line.encode())
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)
        _exit(0)


def main() -> int:
    """Jobs on stdin, each as a 12-digit length and its JSON; one answer line per job on stdout.

    This process never reads a job: a manager forked for each one does (and drops to that job's user), so no
    notebook's code runs in a process that holds another learner's code.
    """
    count = int(_read_exactly(0, 12))
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            _manager()
        os.waitpid(pid, 0)
    return 0


def encode_jobs(jobs: list[dict]) -> bytes:
    """The stdin of ``main``: the number of jobs, then each job's length and JSON."""
    out = [b"%012d" % len(jobs)]
    for job in jobs:
        raw = json.dumps(job).encode()
        out += [b"%012d" % len(raw), raw]
    return b"".join(out)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["encode_jobs", "grade_tasks", "grading", "main", "verdict"]
