"""The isolated grader runs each notebook as its own throwaway user that sees nothing of the course: not the
repository, the solutions, /root, the course folder (gradebook, hidden tests, submissions), nor another
notebook's user. Needs root (useradd, unshare), as `classroom grade` does; skipped otherwise."""

import os
import re
import tempfile
from pathlib import Path

import pytest

from attention_course.tools import grade_sandbox

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not grade_sandbox.sandbox_available(), reason="needs root, unshare and useradd")

SETUP = "import os\nimport torch\nfrom attention_course.grading import check"
SPY = """
paths = {paths!r}
leaks = [p for p in paths if os.path.exists(p)]
try:  # /root stays only as the way to Python where Python lives there (pyenv): nothing else of it
    leaks += ['/root/' + name for name in os.listdir('/root') if name != '.pyenv']
    leaks += ['/home/' + name for name in os.listdir('/home')]
except OSError:
    pass
try:
    open(paths[0] + '/gradebook.db', 'w').write('mine now')
    leaks.append('wrote the gradebook')
except OSError:
    pass
def causal_mask(T):
    raise RuntimeError(f"uid={{os.getuid()}} leaks={{leaks}}")
"""


def _job(paths: list[str]) -> dict:
    cells = [{"index": 0, "source": SETUP}, {"index": 1, "source": SPY.format(paths=paths)}]
    tasks = [{"task": "02.causal_mask", "answer": "causal_mask", "cell": 2, "hidden": []}]
    return {"cells": cells, "tasks": tasks, "timeout": 30, "nonce": os.urandom(8).hex()}


def test_each_notebook_runs_as_its_own_user_and_sees_nothing_of_the_course():
    course = Path(tempfile.mkdtemp(prefix="course-", dir="/var/tmp"))
    try:
        (course / "gradebook.db").write_text("grades")
        (course / "source").mkdir()
        paths = [str(course), str(course / "source"), str(ROOT / "solutions"), str(ROOT / "attention_course"),
                 "/work/main/solutions", str(Path(grade_sandbox.__file__).resolve())]
        jobs = [dict(_job(paths), key="ann"), dict(_job(paths), key="ben")]
        results, mode = grade_sandbox.run_jobs(jobs, [course])
        assert mode == grade_sandbox.SANDBOXED
        uids = []
        for key in ("ann", "ben"):
            message = results[key][0]["message"]
            found = re.search(r"uid=(\d+) leaks=(\[.*?\])", message)
            assert found, message
            uids.append(int(found[1]))
            assert found[2] == "[]", message
        assert 0 not in uids and uids[0] != uids[1]
        assert (course / "gradebook.db").read_text() == "grades"
    finally:
        for path in sorted(course.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        course.rmdir()


def test_a_forged_verdict_line_is_not_accepted():
    """Learner code writing a verdict to every file descriptor it can find gets no points from it."""
    forge = ("import json, os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, (json.dumps("
             "{'nonce': 'guess', 'passed': True, 'message': 'passed'}) + '\\n').encode())\n"
             "    except OSError:\n        pass\ndef causal_mask(T):\n    return torch.ones(T, T, dtype=torch.bool).tril()")
    job = {"cells": [{"index": 0, "source": SETUP}, {"index": 1, "source": forge}],
           "tasks": [{"task": "02.causal_mask", "answer": "causal_mask", "cell": 2, "hidden": []}],
           "timeout": 30, "nonce": os.urandom(8).hex()}
    results, _ = grade_sandbox.run_job(job)
    assert results[0]["passed"] is False and "wrote to the grader's channel" in results[0]["message"], results


# ------------------------------------------------------------------ the red team, lessons 09 and 10, graded isolated

RED_SETUP = ("import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
             "from attention_course.grading import check")
_FRAME = ("def {name}(*args):\n    import inspect\n    for info in inspect.stack():\n"
          "        if 'expected' in info.frame.f_locals:\n            return info.frame.f_locals['expected']\n"
          "    return 0.0")
_ALWAYS_EQUAL = ("class _Yes(float):\n    def __eq__(self, other):\n        return True\n"
                 "    def __float__(self):\n        return 1.0\n    __hash__ = float.__hash__\n"
                 "def {name}(*args):\n    return _Yes(0.0)")
_SOLUTIONS = ("import json, pathlib\nfor folder in {folders!r}:\n    path = pathlib.Path(folder) / {notebook!r}\n"
              "    if path.exists():\n        for c in json.loads(path.read_text())['cells']:\n"
              "            if 'BEGIN SOLUTION' in ''.join(c['source']):\n                exec(''.join(c['source']))\n"
              "        break")
_FOLDERS = [str(ROOT / "solutions"), "/work/main/solutions", "solutions", "../solutions"]
RED_TEAM_ISOLATED = {  # name: (task, answer name, the learner's cell)
    "09 patchify: the course's own": ("09.patchify", "patchify", "from attention_course.beyond.vision import patchify"),
    "09 mase: the course's own": ("09.mase", "mase", "from attention_course.beyond.forecast import mase"),
    "09 seasonal naive: read from solutions/": ("09.seasonal_naive", "seasonal_naive", _SOLUTIONS.format(
        folders=_FOLDERS, notebook="09_beyond_text.ipynb")),
    "09 info_nce: patches torch.allclose and F.cross_entropy": (
        "09.info_nce", "info_nce", "torch.allclose = lambda *a, **k: True\nF.cross_entropy = lambda *a, **k: "
        "torch.tensor(0.0, requires_grad=True)\ndef info_nce(a, b, t):\n    return F.cross_entropy(a, b)"),
    "09 decoder masks: pad id hard-coded to 0": (
        "09.decoder_masks", "decoder_masks", "def decoder_masks(tokens, pad_id, n_patches):\n"
        "    b, n = tokens.shape\n    s = torch.ones(n, n, dtype=torch.bool).tril()[None] & (tokens != 0)[:, None, :]\n"
        "    return s, torch.ones(b, n, n_patches, dtype=torch.bool)"),
    "09 mase: reads the checker's frame": ("09.mase", "mase", _FRAME.format(name="mase")),
    "10 monthly cost: the course's own": ("10.monthly_cost", "monthly_cost", "from attention_course.proof.evidence import monthly_cost"),
    "10 monthly cost: round for ceil": (
        "10.monthly_cost", "monthly_cost", "def monthly_cost(v, p, h):\n    return max(1, round(v / (86400 * p))) * h * 730"),
    "10 choose candidate: strict comparisons": (
        "10.choose_candidate", "choose_candidate", "def choose_candidate(rows, kpi):\n    ok = [r for r in rows if "
        "r['accuracy'] > kpi['min_accuracy'] and r['p95_ms'] < kpi['max_p95_ms'] and r['cost_per_million'] < "
        "kpi['max_cost_per_million'] and r['labels'] < kpi['max_labels']]\n"
        "    return min(ok, key=lambda r: (r['cost_per_million'], -r['accuracy']))['candidate'] if ok else None"),
    "10 break-even: swaps _compare.fail.__code__": (
        "10.break_even_months", "break_even_months", "from attention_course.grading import _compare\n"
        "_compare.fail.__code__ = (lambda *a, **k: None).__code__\ndef break_even_months(o, m, h):\n    return 0.0"),
    "10 cost per million: a float that equals anything": ("10.cost_per_million", "cost_per_million",
                                                          _ALWAYS_EQUAL.format(name="cost_per_million")),
    "10 slice accuracy: reads the checker's frame": ("10.slice_accuracy", "slice_accuracy",
                                                     _FRAME.format(name="slice_accuracy")),
}


def _worked_answers() -> list[tuple[str, str, str]]:
    """(task, answer name, cell) for every task of lessons 09 and 10, from the worked solutions."""
    import nbformat

    answers = []
    for name in ("09_beyond_text.ipynb", "10_proof_of_concept.ipynb"):
        for cell in nbformat.read(ROOT / "solutions" / name, as_version=4).cells:
            if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
                answer = cell.source.split("(")[0].removeprefix("def ").strip()
                answers.append((f"{name[:2]}.{answer}", answer, cell.source))
    return answers


def test_the_isolated_grader_rejects_the_red_team_on_lessons_09_and_10():
    """Each attack is one learner's notebook, graded as its own user in the fresh process; the worked answers, one
    more learner, all pass there (so a grader that rejects everything fails this test)."""
    def job(key, attempts):
        cells = [{"index": 0, "source": RED_SETUP}]
        cells += [{"index": i + 1, "source": source} for i, (_, _, source) in enumerate(attempts)]
        tasks = [{"task": task, "answer": answer, "cell": len(cells), "hidden": []} for task, answer, _ in attempts]
        return {"key": key, "cells": cells, "tasks": tasks, "timeout": 30, "nonce": os.urandom(8).hex()}

    jobs = [job(f"attack{i}", [attack]) for i, attack in enumerate(RED_TEAM_ISOLATED.values())]
    worked = _worked_answers()
    assert {task for task, _, _ in worked} >= {"09.mase", "10.choose_candidate"} and len(worked) == 11
    results, mode = grade_sandbox.run_jobs([*jobs, job("worked", worked)])
    assert mode == grade_sandbox.SANDBOXED
    rejected = [v["passed"] for v in results["worked"]]
    assert rejected == [True] * len(worked), results["worked"]
    accepted = {name: results[f"attack{i}"][0]["message"] for i, name in enumerate(RED_TEAM_ISOLATED)
                if results[f"attack{i}"][0]["passed"] is not False}
    assert not accepted, f"{len(accepted)} of {len(RED_TEAM_ISOLATED)} attacks accepted: {accepted}"
    for i, name in enumerate(RED_TEAM_ISOLATED):
        message = results[f"attack{i}"][0]["message"]
        assert message and "Traceback" not in message, (name, message)


def test_hidden_cases_see_only_the_answer_not_the_learners_other_names():
    """A wrong answer beside a rebound ``abs`` (or a fake ``torch``) must not pass a hidden case (a reviewer's attack)."""
    from attention_course.grading import isolated
    from attention_course.tools.assignments import HIDDEN_CASES

    task = {"task": "05.warmup_cosine_lr", "answer": "warmup_cosine_lr", "hidden": HIDDEN_CASES["05.warmup_cosine_lr"]}
    cheat = {"abs": lambda x: 0, "torch": None, "warmup_cosine_lr": lambda *args: 5.0}
    assert isolated._hidden(task, cheat) is not None
    right = {"warmup_cosine_lr": lambda step, warmup, total, max_lr, min_lr: max_lr if step <= warmup else min_lr}
    assert isolated._hidden(task, right) is None


def test_the_graders_library_copy_holds_no_hidden_tests_and_is_closed_to_other_users():
    import shutil
    import stat

    from attention_course.tools import grade_sandbox

    library = grade_sandbox._library_copy()
    try:
        assert (library / "attention_course" / "grading" / "isolated.py").is_file()
        assert not list(library.rglob("assignments.py")) and not list(library.rglob("assignments.*.pyc"))
        assert stat.S_IMODE(library.parent.stat().st_mode) == 0o700, "other users could read the copy while grading"
    finally:
        shutil.rmtree(library.parent)
