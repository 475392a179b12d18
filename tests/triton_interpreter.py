"""Run a test module's check through Triton's CPU interpreter, for the Triton kernels' tests on machines without a GPU."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


def run_under_interpreter(module: str, call: str) -> None:
    """``module.call`` in a fresh process with ``TRITON_INTERPRET=1`` (Triton picks the interpreter when it is first
    imported, hence the new process); skip where Triton is not installed, fail with its stderr if the check fails."""
    pytest.importorskip("triton")
    check = f"import {module}; {module}.{call}; print('interpreted check ok')"
    run = subprocess.run([sys.executable, "-W", "ignore", "-c", check], capture_output=True, text=True, cwd=TESTS,
                         env={**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join(
                             [str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}, timeout=600)
    assert run.returncode == 0 and "interpreted check ok" in run.stdout, run.stderr[-3000:]
