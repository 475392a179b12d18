"""Run a test module's check through Triton's CPU interpreter, for the Triton kernels' tests on machines without a GPU."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
# Where `make test` installs Triton, apart from the course's environment (requirements-test-triton.txt).
TRITON_FOLDER = TESTS.parent / ".triton"


def triton_path() -> list[str]:
    """The extra import path that makes Triton importable: [] where it is installed already, [.triton] where
    `make test` put it; skip the test where neither holds it."""
    if importlib.util.find_spec("triton") is not None:
        return []
    if (TRITON_FOLDER / "triton" / "__init__.py").exists():
        return [str(TRITON_FOLDER)]
    pytest.skip("Triton is not installed (make test installs it into .triton/)")


def run_under_interpreter(module: str, call: str) -> None:
    """``module.call`` in a fresh process with ``TRITON_INTERPRET=1`` (Triton picks the interpreter when it is first
    imported, hence the new process); skip where Triton is not installed, fail with its stderr if the check fails."""
    check = f"import {module}; {module}.{call}; print('interpreted check ok')"
    path = [str(TESTS), str(TESTS.parent), *triton_path(), os.environ.get("PYTHONPATH", "")]
    run = subprocess.run([sys.executable, "-W", "ignore", "-c", check], capture_output=True, text=True, cwd=TESTS,
                         env={**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join(path)}, timeout=600)
    assert run.returncode == 0 and "interpreted check ok" in run.stdout, run.stderr[-3000:]
