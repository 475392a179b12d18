"""exercises/ is generated from solutions/: stubs, no trace of solutions, learners' edits never lost."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from attention_course.tools import exercises as ex
from attention_course.tools.cli import main

ROOT = Path(__file__).resolve().parent.parent
SOLUTION_LINE = re.compile(r"### BEGIN SOLUTION.*?\n(.*?)### END SOLUTION", re.DOTALL)


def test_strip_replaces_regions_with_a_stub_and_keeps_the_rest():
    source = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION use x + 1\n    return x + 1\n    ### END SOLUTION\n\nprint(f)"
    stripped = ex.strip_solution_code(source)
    assert "return x + 1" not in stripped
    assert "    # Hint: use x + 1\n    raise NotImplementedError" in stripped
    assert stripped.startswith("def f(x):\n    '''doc'''") and stripped.endswith("print(f)")


@pytest.mark.parametrize("source, words", [
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
])
def test_unbalanced_markers_are_reported(source, words):
    with pytest.raises(ex.SolutionFormatError, match=words):
        ex.strip_solution_code(source, "nb.ipynb, cell 3")


def test_exercises_are_up_to_date_with_solutions():
    assert main(["exercises", "--check", "--root", str(ROOT)]) == 0


@pytest.mark.parametrize("solution", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.stem)
def test_no_trace_of_the_solution_in_the_exercise(solution):
    exercise = ROOT / "exercises" / solution.name
    text = exercise.read_text()
    notebook = nbformat.read(exercise, as_version=4)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    for cell in notebook.cells:
        assert cell.get("outputs", []) == [] and cell.get("execution_count") is None
        assert set(cell.metadata) <= {"tags"}
    exercise_lines = {line.strip() for cell in notebook.cells for line in cell.source.splitlines()}
    solution_source = "\n".join(c.source for c in nbformat.read(solution, as_version=4).cells)
    regions = SOLUTION_LINE.findall(solution_source)
    assert regions, "a solution notebook without solution regions"
    for region in regions:
        for line in filter(None, (line.strip() for line in region.splitlines())):
            assert line not in exercise_lines, f"solution line leaked into {exercise.name}: {line}"
    assert sum(c.source.count("raise NotImplementedError") for c in notebook.cells if c.cell_type == "code") == len(regions)


def _copy_course(tmp_path):
    (tmp_path / "solutions").mkdir()
    source = sorted((ROOT / "solutions").glob("*.ipynb"))[0]
    (tmp_path / "solutions" / source.name).write_text(source.read_text())
    return tmp_path, source.name


def test_generation_writes_then_leaves_unchanged(tmp_path, capsys):
    root, name = _copy_course(tmp_path)
    assert main(["exercises", "--root", str(root)]) == 0
    assert main(["exercises", "--check", "--root", str(root)]) == 0
    assert main(["exercises", "--root", str(root)]) == 0
    assert "0 written, 1 already up to date" in capsys.readouterr().out


def test_stale_exercises_fail_the_check(tmp_path, capsys):
    root, name = _copy_course(tmp_path)
    main(["exercises", "--root", str(root)])
    solution = nbformat.read(root / "solutions" / name, as_version=4)
    solution.cells[0].source += "\nA new sentence."
    nbformat.write(solution, root / "solutions" / name)
    assert main(["exercises", "--check", "--root", str(root)]) == 1
    assert name in capsys.readouterr().out


def test_a_learners_edits_are_never_overwritten(tmp_path, capsys):
    root, name = _copy_course(tmp_path)
    main(["exercises", "--root", str(root)])
    target = root / "exercises" / name
    work = nbformat.read(target, as_version=4)
    work.cells[3].source = "def my_answer():\n    return 42  # the learner's work"
    nbformat.write(work, target)
    solution = nbformat.read(root / "solutions" / name, as_version=4)
    solution.cells[0].source += "\nUpdated by the instructor."
    nbformat.write(solution, root / "solutions" / name)

    assert main(["exercises", "--root", str(root)]) == 1
    assert "SKIPPED" in capsys.readouterr().out
    assert "the learner's work" in target.read_text()

    assert main(["exercises", "--force", "--root", str(root)]) == 0
    backups = list((root / "exercises").glob(f"{name}.*.bak"))
    assert len(backups) == 1 and "the learner's work" in backups[0].read_text()
    assert "Updated by the instructor." in target.read_text()


def test_running_an_exercise_without_editing_is_not_an_edit(tmp_path):
    root, name = _copy_course(tmp_path)
    main(["exercises", "--root", str(root)])
    target = root / "exercises" / name
    notebook = json.loads(target.read_text())
    notebook["cells"][1]["execution_count"] = 3  # what running it in JupyterLab changes
    target.write_text(json.dumps(notebook))
    assert not ex.was_edited(target)
