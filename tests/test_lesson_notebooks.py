"""nbval, lax: every lesson runs top to bottom on the smoke profile; NBVAL_CHECK_OUTPUT cells must match."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_and_checked_outputs_match(lesson):
    env = dict(os.environ, ATTENTION_COURSE_PROFILE="smoke")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", str(lesson.relative_to(ROOT)),
         "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", "--nbval-current-env", "-o", "testpaths=notebooks"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, env=env)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_every_lesson_has_objectives_runtime_and_summary():
    import nbformat

    for lesson in LESSONS:
        cells = nbformat.read(lesson, as_version=4).cells
        first = cells[0].source
        assert "Learning objectives" in first and "Prerequisites" in first and "Run time" in first, lesson.name
        assert any("## Summary" in c.source for c in cells if c.cell_type == "markdown"), lesson.name
        assert "lesson.done()" in cells[-1].source, lesson.name
