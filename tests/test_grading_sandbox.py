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
