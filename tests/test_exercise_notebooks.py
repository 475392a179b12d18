"""Every check in every exercise notebook fails on the untouched stubs (and says why)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("solution", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_check_fails_on_the_stubs(solution):
    # The exercise as generated (what exercises/ ships, tests/test_exercises.py proves), so that a learner's
    # own work in exercises/ never fails this test.
    from attention_course.tools.exercises import make_exercise

    path = ROOT / "exercises" / solution.name
    notebook = make_exercise(nbformat.read(solution, as_version=4), solution.name)
    NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    checks = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.lstrip().startswith("check(")]
    assert len(checks) >= 4, f"{path.name}: at least 4 graded tasks expected"
    for cell in checks:
        errors = [out for out in cell.outputs if out.output_type == "error"]
        assert errors, f"{path.name}: `{cell.source}` passed on an untouched stub"
        assert errors[0].ename == "CheckFailed" and "NotImplementedError" in errors[0].evalue, errors[0].evalue
    others = [cell for cell in notebook.cells if cell.cell_type == "code" and cell not in checks]
    for cell in others:
        assert not [out for out in cell.outputs if out.output_type == "error"], f"{path.name}: `{cell.source[:60]}` failed"
