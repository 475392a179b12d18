"""Hints everywhere: every task of every lesson has staged hints, every exercise notebook imports ``hint`` and
says how to use it ("Stuck?"), each stub gives only the first nudge and none of the answer, ``hint()`` prints
once, and the exercise checks named in issue 29 do not hand out the answer on a wrong one."""

import math
import re
from pathlib import Path

import nbformat
import pytest

from attention_course.grading import TASKS, check, hint
from attention_course.grading._compare import CheckFailed
from attention_course.grading.hints import HINTS
from attention_course.tools.exercises import BEGIN, END

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))
CHECKED = re.compile(r'check\("([0-9]{2}\.[a-z0-9_]+)"')


def _stubs(solution: nbformat.NotebookNode) -> dict[str, tuple[str, list[str]]]:
    """{task: (the text after BEGIN SOLUTION, the solution's lines)} for each check cell's answer cell above it."""
    found, pending = {}, None
    for cell in solution.cells:
        if cell.cell_type != "code":
            continue
        if "### BEGIN SOLUTION" in cell.source:
            pending = cell.source
        for task in CHECKED.findall(cell.source):
            assert pending is not None, f"check({task!r}) has no answer cell above it"
            lines = pending.splitlines()
            starts = [i for i, line in enumerate(lines) if BEGIN.match(line)]
            ends = [i for i, line in enumerate(lines) if END.match(line)]
            assert len(starts) == len(ends) == 1, f"{task}: one BEGIN/END SOLUTION region expected"
            found[task] = (BEGIN.match(lines[starts[0]])["hint"].strip(" :-"), lines[starts[0] + 1:ends[0]])
            pending = None
    return found


def stub_problems(task: str, nudge: str, answer_lines: list[str]) -> list[str]:
    """What is wrong with a stub's comment ``nudge``: more than the first hint stage, or a line of the answer."""
    problems = []
    if nudge != f'{HINTS[task][0]} More: hint("{task}")':
        problems.append(f"{task}: the stub should give exactly the first hint stage and point to hint({task!r}), "
                        f"gives {nudge!r}")
    for line in answer_lines:
        code = line.strip()
        if len(code) > 12 and not code.startswith("#") and code in nudge:
            problems.append(f"{task}: the stub's comment contains the answer's line {code!r}")
    for later in HINTS[task][1:]:
        if later in nudge:
            problems.append(f"{task}: the stub's comment contains a later hint stage")
    return problems


def test_every_task_of_every_lesson_has_staged_hints():
    assert len(TASKS) >= 40  # every lesson's module registered its tasks
    lessons = {task[:2] for task in TASKS}
    assert lessons == {f"{n:02d}" for n in range(1, 12)}, lessons
    for task in TASKS:
        stages = HINTS.get(task)
        assert stages and len(stages) >= 2, f"{task}: no staged hints in grading/hints.py"
        assert len(set(stages)) == len(stages) and all(len(stage) > 20 for stage in stages), task
    assert set(HINTS) <= set(TASKS), f"hints for tasks that do not exist: {set(HINTS) - set(TASKS)}"


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda p: p.stem)
def test_exercise_imports_hint_says_stuck_and_stubs_give_only_a_nudge(exercise):
    notebook = nbformat.read(exercise, as_version=4)
    solution = nbformat.read(ROOT / "solutions" / exercise.name, as_version=4)
    number = exercise.name[:2]
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert re.search(r"^from attention_course\.grading(\.hints)? import [^\n]*\bhint\b", code, re.MULTILINE), \
        f"{exercise.name} does not import hint"
    intro = notebook.cells[0].source
    assert re.search(rf'Stuck[^\n]*\?[^`]*`hint\("{number}\.', intro), f"{exercise.name}: no 'Stuck?' line with hint(...)"
    stubs = _stubs(solution)
    tasks_here = set(CHECKED.findall(code))
    assert tasks_here == set(stubs) and tasks_here, exercise.name
    assert {task for task in TASKS if task.startswith(f"{number}.")} <= tasks_here, \
        f"{exercise.name} does not check every task of lesson {number}"
    problems = [p for task, (nudge, answer) in stubs.items() for p in stub_problems(task, nudge, answer)]
    assert not problems, "\n".join(problems)
    for task, (nudge, _) in stubs.items():  # what the learner's file really shows
        assert f"# Hint: {nudge}" in code, f"{exercise.name}: the stub of {task} is not the solution's nudge"
    answer_code = [line.strip() for _, answer in stubs.values() for line in answer if len(line.strip()) > 12]
    leaked = [line for line in answer_code if line in code and not line.startswith(("#", "return ", "def "))]
    assert not leaked, f"{exercise.name} shows lines of the answers: {leaked[:3]}"


def test_the_stub_rule_catches_an_answer_in_the_comment():
    """The comment lesson 08's stub had before issue 29: it spelled out the loss."""
    old = 'F.kl_div(log_softmax(student / T), softmax(teacher / T), reduction="batchmean") * T**2'
    assert stub_problems("08.distillation_loss", old, ["    return alpha * temperature**2 * soft"])
    nudge = f'{HINTS["08.distillation_loss"][0]} More: hint("08.distillation_loss")'
    assert not stub_problems("08.distillation_loss", nudge, ["    return alpha * temperature**2 * soft"])
    assert stub_problems("08.distillation_loss", nudge + " " + HINTS["08.distillation_loss"][2], [])


def test_hint_prints_once_and_returns_nothing(capsys):
    assert hint("09.patchify") is None  # a cell ending in hint(...) shows no second copy as its value
    out = capsys.readouterr().out
    assert out.count("Hint 1/3 for 09.patchify") == 1 and HINTS["09.patchify"][0] in out
    hint("09.patchify", 99)
    assert "Hint 3/3" in capsys.readouterr().out
    hint("09.no_such_task")
    assert "no hints for '09.no_such_task'" in capsys.readouterr().out


def _failure(task: str, answer) -> str:
    with pytest.raises(CheckFailed) as failed:
        check(task, answer)
    return str(failed.value)


def test_a_wrong_monthly_cost_is_not_answered_with_the_formula():
    message = _failure("10.monthly_cost", lambda volume, rate, price: 123.0)
    assert "expected" in message and "730-hour month" in message
    assert "ceil" not in message and "max(1" not in message
    exact = _failure("10.monthly_cost", lambda volume, rate, price: volume / (86400 * rate) * price * 730)
    assert "round the count up" in exact and "ceil" not in exact


def _rank_n(timings, q):
    ordered = sorted(timings)
    rank = min(q / 100 * len(ordered), len(ordered) - 1)
    low, high = math.floor(rank), min(math.ceil(rank), len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


def test_a_percentile_at_rank_q_n_is_named_as_such():
    message = _failure("08.latency_percentile", _rank_n)
    assert "q/100 * n" in message, message  # never only "nearest-rank" for this mistake


def test_invalid_comparison_names_the_test_set_it_means():
    def misses_test_set(run, reference):
        return {"tuned on test"} if run["selected_on"] == "test" else set()

    message = _failure("10.invalid_comparison", misses_test_set)
    assert "different test set" in message and "reference 'c0ffee0123456789'" in message and "test_sha" in message
