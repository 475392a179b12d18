"""The command line: the exercises command finds the course only by its marker (doctor: tests/test_doctor.py);
bench and doctor run without the Jupyter stack."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attention_course.core.course import find_root
from attention_course.tools import cli

ROOT = Path(__file__).resolve().parent.parent


def test_exercises_outside_a_course_folder_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["exercises", "--check"]) == 2
    assert "no course checkout" in capsys.readouterr().err
    (tmp_path / "solutions").mkdir()  # a folder with solutions/ is not a course: the marker decides
    (tmp_path / "notebooks").mkdir()
    assert cli.main(["exercises", "--check"]) == 2
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "attention-course"\n')
    assert find_root(tmp_path / "solutions") == tmp_path.resolve()


# A GPU image has torch but not the Jupyter stack: the command line must still run `bench` and `doctor`.
JUPYTER_STACK = ("nbformat", "nbgrader", "jupyterhub", "jupyterlab", "jupyter_server", "nbclient", "nbconvert", "notebook",
                 "nbgitpuller", "ipykernel", "ipywidgets")
WITHOUT_JUPYTER = r"""
import importlib.abc, sys
MISSING = set(sys.argv.pop(1).split(","))

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name.split(".")[0])

sys.meta_path.insert(0, NotInstalled())
from attention_course.tools import cli
code = cli.main(sys.argv[1:])
imported = sorted(name for name in MISSING if name in sys.modules)
print("IMPORTED", imported)
sys.exit(code)
"""


def run_without_jupyter(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ATTENTION_COURSE_PROFILE": "smoke"}
    return subprocess.run([sys.executable, "-c", WITHOUT_JUPYTER, ",".join(JUPYTER_STACK), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


@pytest.mark.slow
def test_bench_and_doctor_run_where_the_jupyter_stack_is_absent():
    bench = run_without_jupyter("bench", "gpt", "--profile", "smoke", "--json")
    assert bench.returncode == 0, bench.stderr[-2000:]
    assert json.loads(bench.stdout[: bench.stdout.rindex("IMPORTED")])["tokens_per_s"] > 0
    listed = run_without_jupyter("bench", "--help")
    assert listed.returncode == 0 and all(name in listed.stdout for name in ("gpt", "serving", "transfer", "vision"))
    doctor = run_without_jupyter("doctor", "--only", "run", "--json")
    checks = json.loads(doctor.stdout[: doctor.stdout.rindex("IMPORTED")])
    failed = [check["check"].split()[0] for check in checks if not check["ok"]]
    assert failed and set(failed) <= set(JUPYTER_STACK), failed  # what is missing is named, not a crash
    classroom = run_without_jupyter("classroom", "grade", "x")
    assert classroom.returncode == 2 and "needs nbformat" in classroom.stderr and "Traceback" not in classroom.stderr
    for run in (bench, doctor):  # (--help exits inside argparse, before the line is printed)
        assert "IMPORTED []" in run.stdout, run.stdout[-300:]
