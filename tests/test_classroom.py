"""Classroom grading end to end: a synthetic class of lesson 02 submissions autograded with nbgrader, offline.

Every kind of submission a room produces is in the class: all right, plausibly wrong, raising, untouched
stubs, an endless loop, a tampered test cell, corrupt JSON, an empty file, a notebook without cells, a
missing notebook. The run must finish, grade each as expected with the check's own message, and never
modify a submitted file.
"""

import csv
import hashlib
import json
from pathlib import Path

import nbformat
import pytest

from attention_course.tools import assignments, gradebook

ROOT = Path(__file__).resolve().parent.parent
NAME = "02_self_attention.ipynb"
TIMEOUT = 15  # seconds a cell may run; the endless loop costs this once

RIGHT = {
    "attention_scores": "def attention_scores(q, k):\n    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])",
    "softmax": ("def softmax(scores):\n    e = (scores - scores.amax(dim=-1, keepdim=True)).exp()\n"
                "    return e / e.sum(dim=-1, keepdim=True)"),
    "causal_mask": "def causal_mask(T):\n    return torch.ones(T, T, dtype=torch.bool).tril()",
    "padding_mask": "def padding_mask(lengths, max_len):\n    return torch.arange(max_len)[None, :] < lengths[:, None]",
    "scaled_dot_product_attention": (
        "def scaled_dot_product_attention(q, k, v, mask=None):\n    scores = attention_scores(q, k)\n"
        "    if mask is not None:\n        scores = scores.masked_fill(~mask, float('-inf'))\n"
        "    weights = softmax(scores)\n    return weights @ v, weights"),
}
WRONG = {  # plausible mistakes
    "attention_scores": "def attention_scores(q, k):\n    return q @ k.transpose(-2, -1)",
    "softmax": "def softmax(scores):\n    e = scores.exp()\n    return e / e.sum(dim=0, keepdim=True)",
    "causal_mask": "def causal_mask(T):\n    return torch.ones(T, T, dtype=torch.bool).triu()",
}
TASKS = ["02.attention_scores", "02.softmax", "02.causal_mask", "02.padding_mask", "02.scaled_dot_product_attention"]


def student_notebook(release: nbformat.NotebookNode, answers: dict[str, str], tamper: bool = False) -> str:
    notebook = nbformat.from_dict(json.loads(json.dumps(release)))
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            name = cell.source.split("(")[0].removeprefix("def ").strip()
            cell.source = answers.get(name, cell.source)
        if tamper and meta.get("grade"):
            cell.source = "print('passed')"  # nbgrader restores locked test cells before grading
    return nbformat.writes(notebook)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    assert assignments.init_course(course, ROOT / "solutions", ["02"], timeout=TIMEOUT) == ["lesson02"]
    release = nbformat.read(course / "release" / "lesson02" / NAME, as_version=4)
    looping = dict(RIGHT, softmax="while True:  # never reaches the definition below\n    pass\n" + RIGHT["softmax"])
    raising = {"attention_scores": "def attention_scores(q, k):\n    raise ValueError('shapes?')"}
    texts = {
        "alice_right": student_notebook(release, RIGHT),
        "bob_wrong": student_notebook(release, {**RIGHT, **WRONG}),
        "carol_raises": student_notebook(release, raising),  # and the other four stubs untouched
        "dave_loops": student_notebook(release, looping),
        "erin_tampers": student_notebook(release, WRONG, tamper=True),
        "frank_corrupt": student_notebook(release, RIGHT)[:300],
        "gina_empty_file": "",
        "hank_no_cells": nbformat.writes(nbformat.v4.new_notebook()),
    }
    submissions = tmp_path_factory.mktemp("submissions")
    for student, text in texts.items():
        (submissions / student).mkdir()
        (submissions / student / NAME).write_text(text, encoding="utf-8")
    (submissions / "ivan_wrong_file").mkdir()
    (submissions / "ivan_wrong_file" / "notes.txt").write_text("I forgot to upload my notebook")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in submissions.rglob("*") if p.is_file()}
    rows = gradebook.grade_course(course, submissions, timeout=TIMEOUT, progress=lambda _: None)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in submissions.rglob("*") if p.is_file()}
    return course, rows, before, after


def by_student(rows):
    table = {}
    for row in rows:
        table.setdefault(row.student, {})[row.task] = row
    return table


def test_submissions_are_never_modified(graded):
    _, _, before, after = graded
    assert before == after and len(before) == 9


def test_every_student_gets_a_row_per_task(graded):
    course, rows, _, _ = graded
    table = by_student(rows)
    assert sorted(table) == ["alice_right", "bob_wrong", "carol_raises", "dave_loops", "erin_tampers",
                             "frank_corrupt", "gina_empty_file", "hank_no_cells", "ivan_wrong_file"]
    assert all(sorted(tasks) == sorted(TASKS) for tasks in table.values())
    with open(course / gradebook.TASK_CSV, newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [(r["student"], r["task"], float(r["points"])) for r in written] == \
        [(r.student, r.task, r.points) for r in rows]
    assert set(written[0]) == {"student", "assignment", "task", "points", "max_points", "message"}


def test_points(graded):
    _, rows, _, _ = graded
    points = {student: [tasks[t].points for t in TASKS] for student, tasks in by_student(rows).items()}
    assert points == {
        "alice_right": [1, 1, 1, 1, 2],
        "bob_wrong": [0, 0, 0, 1, 0],  # attention builds on the wrong scores and softmax
        "carol_raises": [0, 0, 0, 0, 0],
        "dave_loops": [1, 0, 1, 1, 0],  # the endless softmax is cut; later cells still run
        "erin_tampers": [0, 0, 0, 0, 0],  # her print('passed') cells were replaced by the real checks
        "frank_corrupt": [0] * 5, "gina_empty_file": [0] * 5, "hank_no_cells": [0] * 5, "ivan_wrong_file": [0] * 5,
    }
    assert {r.max_points for r in rows if r.task == "02.scaled_dot_product_attention"} == {2}


def test_messages_are_the_checks_own(graded):
    _, rows, _, _ = graded
    table = by_student(rows)
    assert "passed" in table["alice_right"]["02.softmax"].message
    assert "sqrt" in table["bob_wrong"]["02.attention_scores"].message.lower()
    assert table["bob_wrong"]["02.causal_mask"].message.startswith("CheckFailed: 02.causal_mask")
    assert "ValueError: shapes?" in table["carol_raises"]["02.attention_scores"].message
    assert "not done yet" in table["carol_raises"]["02.softmax"].message
    assert "`softmax` is not defined" in table["dave_loops"]["02.softmax"].message
    assert "stopped at the time limit (an endless loop?)" in table["dave_loops"]["02.softmax"].message
    assert "CheckFailed" in table["erin_tampers"]["02.softmax"].message
    assert "not a readable notebook" in table["frank_corrupt"]["02.softmax"].message
    assert "empty file" in table["gina_empty_file"]["02.softmax"].message
    assert "no cells" in table["hank_no_cells"]["02.softmax"].message
    assert "no submission of 02_self_attention.ipynb" in table["ivan_wrong_file"]["02.softmax"].message


def test_nbgrader_gradebook_and_export(graded):
    course, _, _, _ = graded
    with open(course / "grades.csv", newline="") as handle:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert exported["alice_right"] == 6 and exported["bob_wrong"] == 1 and exported["dave_loops"] == 3


def test_hidden_cases_stay_out_of_the_student_version(graded):
    course, _, _, _ = graded
    released = (course / "release" / "lesson02" / NAME).read_text()
    source = (course / "source" / "lesson02" / NAME).read_text()
    assert "HIDDEN TESTS" in source and "HIDDEN TESTS" not in released
    assert "BEGIN SOLUTION" not in released and "shifted.exp()" not in released and "shifted.exp()" in source
    assert "# Hint:" in released and 'raise NotImplementedError(\\"your code here\\")' in released


def test_source_notebook_marks_every_check_as_a_graded_cell():
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        checks = [c for c in solution.cells if c.cell_type == "code" and assignments.CHECK_CALL.search(c.source)]
        tasks = assignments.tasks_of(assignments.source_notebook(solution))
        assert len(tasks) == len(checks) > 0, path.name


def test_hidden_cases_pass_on_the_solutions():
    """Every hidden case holds for the course's own solution (else the right answer would lose points)."""
    from attention_course.grading import TASKS as REGISTERED

    for task in assignments.HIDDEN_CASES:
        assert task in REGISTERED, task
    namespace = {}
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        lesson = path.name[:2]
        if not any(task.startswith(lesson + ".") for task in assignments.HIDDEN_CASES):
            continue
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and not assignments.CHECK_CALL.search(cell.source):
                exec(cell.source, namespace)  # definitions only: imports and the solution functions
        for task, cases in assignments.HIDDEN_CASES.items():
            if task.startswith(lesson + "."):
                for expression, why in cases:
                    assert eval(expression, namespace), f"{task}: {why}"


def test_feedback_speaks_the_class_language(tmp_path):
    """`classroom grade --lang ja` gives a Japanese class Japanese feedback; by default a course speaks its
    assignments' language: English from solutions/, Japanese from the Japanese edition's solutions-ja/."""
    import re

    from attention_course.tools import i18n

    kana = re.compile(r"[ぁ-んァ-ン]")
    english = tmp_path / "course-en"
    assignments.init_course(english, ROOT / "solutions", ["02"], timeout=TIMEOUT)
    i18n.write_notebooks(tmp_path, folders=("solutions",))  # tmp_path/solutions-ja, as `i18n notebooks` writes it
    japanese = tmp_path / "course-ja"
    assignments.init_course(japanese, tmp_path / "solutions-ja", ["02"], timeout=TIMEOUT)
    release = nbformat.read(english / "release" / "lesson02" / NAME, as_version=4)
    submissions = tmp_path / "submissions"
    (submissions / "bob_wrong").mkdir(parents=True)
    (submissions / "bob_wrong" / NAME).write_text(student_notebook(release, {**RIGHT, **WRONG}), encoding="utf-8")

    def feedback(course, **options):
        rows = gradebook.grade_course(course, submissions, timeout=TIMEOUT, progress=lambda _: None, **options)
        with open(course / gradebook.TASK_CSV, newline="", encoding="utf-8") as handle:  # the report an instructor reads
            report = {row["task"]: row for row in csv.DictReader(handle)}
        assert {row.task: row.points for row in rows} == {t: float(r["points"]) for t, r in report.items()}
        return report

    default = feedback(english)
    assert "sqrt" in default["02.attention_scores"]["message"].lower()
    assert not any(kana.search(row["message"]) for row in default.values())
    in_japanese = feedback(english, lang="ja")
    failed = [task for task, row in in_japanese.items() if row["points"] == "0"]
    assert failed == ["02.attention_scores", "02.softmax", "02.causal_mask", "02.scaled_dot_product_attention"]
    assert all(kana.search(in_japanese[task]["message"]) for task in failed), in_japanese
    assert {t: r["points"] for t, r in in_japanese.items()} == {t: r["points"] for t, r in default.items()}
    # a course made from the Japanese solutions is told by its notebooks' metadata
    from_japanese = feedback(japanese)
    assert all(kana.search(from_japanese[task]["message"]) for task in failed)
    overridden = feedback(japanese, lang="en")
    assert "hint: you forgot to divide by sqrt(d)" in overridden["02.attention_scores"]["message"]
    assert "hint: you forgot to divide by sqrt(d)" in default["02.attention_scores"]["message"]
    assert not any(kana.search(row["message"]) for row in overridden.values())
    with pytest.raises(ValueError, match="lang must be one of"):
        gradebook.grade_course(english, lang="fr")


def test_classroom_grade_takes_a_language(monkeypatch, tmp_path):
    import argparse

    from attention_course.tools import classroom

    parser = argparse.ArgumentParser()
    classroom.add_parser(parser.add_subparsers(dest="command"))
    seen = {}
    monkeypatch.setattr(classroom, "grade_course", lambda *args, **options: seen.update(options) or [])
    for argv, lang in ((["classroom", "grade", str(tmp_path)], None), (["classroom", "grade", str(tmp_path), "--lang", "ja"], "ja")):
        assert classroom.run(parser.parse_args(argv)) == 0 and seen["lang"] == lang
    with pytest.raises(SystemExit):
        parser.parse_args(["classroom", "grade", str(tmp_path), "--lang", "fr"])


def test_a_japanese_class_gets_its_hint_lines_in_japanese(tmp_path):
    from attention_course.tools import i18n

    i18n.write_notebooks(tmp_path, folders=("solutions",))
    for folder, expected in (("solutions", "# Hint: "), (tmp_path / "solutions-ja", "# ヒント：")):
        source = assignments.source_notebook(nbformat.read(Path(ROOT / folder) / NAME, as_version=4))
        answers = [c.source for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")]
        hints = [line.strip() for answer in answers for line in answer.splitlines() if line.strip().startswith("#")
                 and ("Hint" in line or "ヒント" in line)]
        assert len(hints) == 5 and all(line.startswith(expected) for line in hints), hints
        assert all("### BEGIN SOLUTION" in answer for answer in answers)

