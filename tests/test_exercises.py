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
    # What the course ships is what the generator makes (test above); checked in memory, so a learner's
    # edits to exercises/ never fail this test.
    notebook = ex.make_exercise(ex.read_notebook(solution), solution.name)
    text = ex.render(notebook)
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
            assert line not in exercise_lines, f"solution line leaked into {solution.name}: {line}"
    assert sum(c.source.count("raise NotImplementedError") for c in notebook.cells if c.cell_type == "code") == len(regions)


def _copy_course(tmp_path, count=1):
    (tmp_path / "solutions").mkdir()
    sources = sorted((ROOT / "solutions").glob("*.ipynb"))[:count]
    for source in sources:
        (tmp_path / "solutions" / source.name).write_text(source.read_text())
    return (tmp_path, sources[0].name) if count == 1 else (tmp_path, [source.name for source in sources])


def _edit(path, source="def my_answer():\n    return 42  # the learner's work", cell=3):
    work = nbformat.read(path, as_version=4)
    work.cells[cell].source = source
    nbformat.write(work, path)


def _update_solution(root, name, words="Updated by the instructor."):
    solution = nbformat.read(root / "solutions" / name, as_version=4)
    solution.cells[0].source += "\n" + words
    nbformat.write(solution, root / "solutions" / name)


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
    _edit(target)
    _update_solution(root, name)

    assert main(["exercises", "--root", str(root)]) == 0  # skipping the learner's notebook is not a failure
    out = capsys.readouterr().out
    assert f"edited by you: exercises/{name}: left untouched" in out and "has changed since" in out
    assert "the learner's work" in target.read_text()

    assert main(["exercises", "--force", "--root", str(root)]) == 0
    backups = list((root / "exercises").glob(f"{name}.*.bak"))
    assert len(backups) == 1 and "the learner's work" in backups[0].read_text()
    assert "Updated by the instructor." in target.read_text()


def test_an_edited_exercise_is_reported_not_an_error_for_check(tmp_path, capsys):
    root, name = _copy_course(tmp_path)
    main(["exercises", "--root", str(root)])
    _edit(root / "exercises" / name)
    capsys.readouterr()
    assert main(["exercises", "--check", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"edited by you: exercises/{name}" in out and "1 edited by you" in out and "STALE" not in out
    _update_solution(root, name)  # the course moved on: still the learner's file, still not an error
    assert main(["exercises", "--check", "--root", str(root)]) == 0
    assert "has changed since" in capsys.readouterr().out


def test_only_a_stale_course_copy_fails_the_check(tmp_path, capsys):
    root, names = _copy_course(tmp_path, count=2)
    main(["exercises", "--root", str(root)])
    _edit(root / "exercises" / names[1])  # a learner's edit beside a stale copy changes nothing
    _update_solution(root, names[0])
    capsys.readouterr()
    assert main(["exercises", "--check", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"STALE exercises/{names[0]}" in out and f"edited by you: exercises/{names[1]}" in out
    (root / "exercises" / names[0]).unlink()
    assert main(["exercises", "--check", "--root", str(root)]) == 1
    assert f"MISSING exercises/{names[0]}" in capsys.readouterr().out


def test_regeneration_keeps_a_copy_of_what_it_replaces_outputs_included(tmp_path):
    root, name = _copy_course(tmp_path)
    main(["exercises", "--root", str(root)])
    target = root / "exercises" / name
    notebook = json.loads(target.read_text())
    code = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "my run's output\n"}]
    code["execution_count"] = 1
    target.write_text(json.dumps(notebook))
    assert main(["exercises", "--root", str(root)]) == 0  # up to date: the learner's outputs stay
    assert "my run's output" in target.read_text()
    _update_solution(root, name)
    assert main(["exercises", "--root", str(root)]) == 0  # stale course copy (run, not edited): replaced
    backups = list((root / "exercises").glob(f"{name}.*.bak"))
    assert len(backups) == 1 and "my run's output" in backups[0].read_text()
    assert "my run's output" not in target.read_text() and "Updated by the instructor." in target.read_text()


ODD_FILES = {"empty": b"", "a JSON list": b"[]", "not UTF-8": b'{"cells": ["\xff\xfe"]}', "not JSON": b'{"cells": [',
             "no cells": b'{"metadata": {}}', "a folder": None}


@pytest.mark.parametrize("kind", ODD_FILES)
def test_an_odd_exercise_file_is_named_and_the_others_still_processed(tmp_path, capsys, kind):
    root, names = _copy_course(tmp_path, count=2)
    main(["exercises", "--root", str(root)])
    odd, other = root / "exercises" / names[0], root / "exercises" / names[1]
    odd.unlink()
    if ODD_FILES[kind] is None:
        odd.mkdir()
        (odd / "inside.txt").write_text("a folder named like a notebook")
    else:
        odd.write_bytes(ODD_FILES[kind])
    other.unlink()  # the other notebook needs regenerating: it must still happen
    _update_solution(root, names[1])
    capsys.readouterr()

    assert main(["exercises", "--check", "--root", str(root)]) == 1  # only for the missing course copy
    out = capsys.readouterr().out
    assert f"exercises/{names[0]} is not a readable notebook (" in out and f"MISSING exercises/{names[1]}" in out
    assert main(["exercises", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"exercises/{names[0]} is not a readable notebook" in out and "--force" in out
    assert f"wrote exercises/{names[1]}" in out and "Updated by the instructor." in other.read_text()
    assert (odd.is_dir() if ODD_FILES[kind] is None else odd.read_bytes() == ODD_FILES[kind])  # left as it was

    assert main(["exercises", "--force", "--root", str(root)]) == 0
    assert nbformat.read(odd, as_version=4).cells  # replaced by the course's version ...
    kept = list((root / "exercises").glob(f"{names[0]}.*.bak"))  # ... and what it replaced is kept
    assert len(kept) == 1 and (kept[0].is_dir() if ODD_FILES[kind] is None else kept[0].read_bytes() == ODD_FILES[kind])


@pytest.mark.parametrize("content", [b"", b"[]", b"\xff\xfe", "unclosed BEGIN SOLUTION"])
def test_a_broken_solution_is_named_and_the_others_still_generated(tmp_path, capsys, content):
    root, names = _copy_course(tmp_path, count=2)
    bad = root / "solutions" / names[0]
    if isinstance(content, str):
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")]
        nbformat.write(notebook, bad)
    else:
        bad.write_bytes(content)
    assert main(["exercises", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"ERROR solutions/{names[0]} cannot be used" in out and f"wrote exercises/{names[1]}" in out
    assert main(["exercises", "--check", "--root", str(root)]) == 1


def test_a_learner_edit_in_the_real_course_passes_the_check(tmp_path):
    import shutil

    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    assert main(["exercises", "--root", str(tmp_path)]) == 0
    for target in sorted((tmp_path / "exercises").glob("*.ipynb")):  # a learner works through every exercise
        notebook = nbformat.read(target, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code" and "raise NotImplementedError" in cell.source:
                cell.source = cell.source.replace('raise NotImplementedError("your code here")', "return None  # my try")
                cell.outputs, cell.execution_count = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")], 4
        nbformat.write(notebook, target)
        assert ex.was_edited(target), target.name
    assert main(["exercises", "--check", "--root", str(tmp_path)]) == 0


def test_opening_and_saving_an_exercise_is_neither_an_edit_nor_stale(tmp_path, capsys):
    root, name = _copy_course(tmp_path)
    main(["exercises", "--root", str(root)])
    target = root / "exercises" / name
    notebook = json.loads(target.read_text())
    notebook["metadata"]["widgets"] = {}  # what an editor may add on saving, in its own layout
    target.write_text(json.dumps(notebook, indent=2, sort_keys=True))
    saved = target.read_text()
    assert main(["exercises", "--check", "--root", str(root)]) == 0
    assert main(["exercises", "--root", str(root)]) == 0 and target.read_text() == saved
    assert "edited by you:" not in capsys.readouterr().out


def test_running_an_exercise_without_editing_is_not_an_edit(tmp_path):
    root, name = _copy_course(tmp_path)
    main(["exercises", "--root", str(root)])
    target = root / "exercises" / name
    notebook = json.loads(target.read_text())
    notebook["cells"][1]["execution_count"] = 3  # what running it in JupyterLab changes
    target.write_text(json.dumps(notebook))
    assert not ex.was_edited(target)
