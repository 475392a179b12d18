"""nbval, strict: the solution notebooks reproduce their stored outputs exactly (after sanitising)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_solutions_reproduce_their_outputs():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "solutions/",
         "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", "--nbval-current-env", "-o", "testpaths=solutions"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
