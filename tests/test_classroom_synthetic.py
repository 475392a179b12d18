"""A synthetic class of 16 learners on lessons 02 and 08 (32 notebooks), graded by `attention-course classroom
grade`: right, stubs, partial, plausible mistakes, worked in exercises/ without nbgrader metadata, a dead kernel
(os._exit), a deleted, a copied and a re-labelled test cell, a passing check beside a stderr warning, and
cheaters: the course library's own implementation, the solutions read from disk, a checker patched at the top of
the notebook, frames read from the answer, hostile code writing to others' files. Each notebook has its expected
score; a hostile submission changes nobody's grade or files.
"""

import csv
import hashlib
import json
import os
from pathlib import Path

import nbformat
import pytest

from attention_course.tools import assignments, gradebook
from attention_course.tools.cli import main

ROOT = Path(__file__).resolve().parent.parent
# The class holds hostile code that tries to overwrite a classmate's file, the gradebook and the library: only
# the sandboxed grader (root: throwaway users, namespaces) may run it; elsewhere it would damage the checkout.
pytestmark = pytest.mark.skipif(not __import__("attention_course.tools.grade_sandbox", fromlist=["x"])
                                .sandbox_available(), reason="needs root, unshare and useradd (the sandboxed grader)")
NAMES = {"02": "02_self_attention.ipynb", "08": "08_serving.ipynb"}

FULL = {"02": 6, "08": 6}  # points of a full score (08 gained task 6, the static cache's update)


def _solution_answers(lesson: str) -> dict[str, str]:
    """The worked answers (function name -> cell source) of a lesson's solution notebook."""
    answers = {}
    for cell in nbformat.read(ROOT / "solutions" / NAMES[lesson], as_version=4).cells:
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            answers[cell.source.split("(")[0].removeprefix("def ").strip()] = cell.source
    return answers


WRONG = {
    "attention_scores": "def attention_scores(q, k):\n    return q @ k.transpose(-2, -1)",
    "softmax": "def softmax(scores):\n    e = scores.exp()\n    return e / e.sum(dim=0, keepdim=True)",
    "padding_mask": "def padding_mask(lengths, max_len):\n    return torch.arange(int(lengths.max()))[None, :] < lengths[:, None]",
    "distillation_loss": ("def distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):\n"
                          "    s = student_logits.detach()\n"
                          "    soft = F.kl_div(F.log_softmax(s / temperature, -1), F.softmax(teacher_logits / temperature, -1),"
                          " reduction='batchmean')\n"
                          "    return (alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(s, labels)).requires_grad_()"),
    "latency_percentile": "def latency_percentile(timings, q):\n    return sum(timings) / len(timings)",
    "cheapest_variant": ("def cheapest_variant(rows, min_accuracy, max_p95_ms):\n"
                         "    ok = [r for r in rows if r['accuracy'] > min_accuracy and r['p95_ms'] < max_p95_ms]\n"
                         "    return min(ok, key=lambda r: r['cost_per_million'])['variant'] if ok else None"),
}
LIBRARY = {  # the course's own implementation, imported
    "softmax": "def softmax(scores):\n    return scores.softmax(dim=-1)",
    "causal_mask": "from attention_course.core.attention import causal_mask",
    "scaled_dot_product_attention": "from attention_course.core.attention import scaled_dot_product_attention",
    "distillation_loss": "from attention_course.deploy.distill import distillation_loss",
    "cost_per_million": "from attention_course.deploy.cost import cost_per_million",
    "latency_percentile": "import numpy as np\ndef latency_percentile(timings, q):\n    return float(np.percentile(timings, q))",
}
FROM_SOLUTIONS = ("import json, pathlib\nfor folder in ('solutions', '../solutions', '/work/main/solutions', {root!r}):\n"
                  "    path = pathlib.Path(folder) / {name!r}\n    if path.exists():\n"
                  "        for c in json.loads(path.read_text())['cells']:\n"
                  "            if c['cell_type'] == 'code' and 'BEGIN SOLUTION' in ''.join(c['source']):\n"
                  "                exec(''.join(c['source']))\n        break\n")
PATCH_CHECKER = ("import attention_course.grading as g, attention_course.grading._core as core, torch\n"
                 "from attention_course.grading import _compare\n"
                 "def _quiet(*a, **k):\n    print('passed')\n"
                 "g.check = core.check = check = _quiet\n"
                 "_compare.fail.__code__ = (lambda *a, **k: None).__code__\n"
                 "core.TASKS.clear()\n"
                 "torch.allclose = lambda *a, **k: True\n")
READ_FRAMES = {  # answers that take the expected value from the checker's frame
    "attention_scores": ("def attention_scores(q, k):\n    import sys\n    f = sys._getframe(1)\n"
                         "    while f and 'expected' not in f.f_locals:\n        f = f.f_back\n"
                         "    return f.f_locals['expected'] if f else q"),
    "cost_per_million": ("def cost_per_million(predictions_per_s, hourly_price):\n    import inspect\n"
                         "    for info in inspect.stack():\n        if 'expected' in info.frame.f_locals:\n"
                         "            return info.frame.f_locals['expected']\n    return 0.0"),
}
HOSTILE = ("import os, pathlib\nfor target in {targets!r}:\n    try:\n"
           "        pathlib.Path(target).write_text('{{}}')\n    except Exception:\n        pass\n"
           "try:\n    os.system('rm -rf ' + ' '.join({targets!r}))\nexcept BaseException:\n    pass\n")


def notebook(release: nbformat.NotebookNode, answers: dict[str, str], extra: list[tuple[str, str]] = (),
             drop_tests=(), copy_test=None, relabel=False, plain=False) -> nbformat.NotebookNode:
    """A learner's notebook: answers in the release's cells, extra cells after the named answer ("" = first)."""
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    cells, first = [], True
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            name = cell.source.split("(")[0].split("\n")[-1].removeprefix("def ").strip()
            name = next((n for n in answers if f"def {n}(" in cell.source), name)
            if name in answers:
                cell.source = answers[name]
            cells += [nbformat.v4.new_code_cell(s) for after, s in extra if after == "" and first]
            first = False
            cells.append(cell)
            cells += [nbformat.v4.new_code_cell(s) for after, s in extra if after == name]
            continue
        task = assignments.CHECK_CALL.search(cell.source)
        if task and task["task"] in drop_tests:
            continue
        cells.append(cell)
        if task and task["task"] == copy_test:
            cells.append(nbformat.from_dict(json.loads(json.dumps(cell))))
        if relabel and meta.get("grade"):
            cell.metadata["nbgrader"].update(grade=False, points=100, grade_id="mine")
    nb.cells = cells
    if plain:  # saved from exercises/: no nbgrader metadata at all
        for cell in nb.cells:
            cell.metadata.pop("nbgrader", None)
    return nb


def learners(releases, root: Path, course: Path, submissions: Path):
    right = {lesson: _solution_answers(lesson) for lesson in NAMES}
    stderr = ("import sys\nprint('warning: this is slow', file=sys.stderr)\n")
    targets = [str(submissions / "alice_right" / NAMES["02"]), str(course / "gradebook.db"),
               str(course / "source" / "lesson02" / NAMES["02"]), str(ROOT / "attention_course" / "grading" / "_core.py")]
    cls = {}  # learner -> lesson -> (notebook, expected points)
    for lesson in NAMES:
        r, rel = right[lesson], releases[lesson]
        wrong = {k: v for k, v in WRONG.items() if k in r}
        first = next(iter(r))
        plan = {
            "alice_right": (notebook(rel, r), FULL[lesson]),
            "bob_stubs": (notebook(rel, {}), 0),
            "carol_partial": (notebook(rel, {first: r[first]}), 1),
            "dan_mistakes": (notebook(rel, {**r, **wrong}), FULL[lesson] - {"02": 5, "08": 3}[lesson]),
            "erin_exercises": (_from_exercises(lesson, r), FULL[lesson]),
            "fay_exits": (notebook(rel, r, extra=[(list(r)[1], "import os\nos._exit(0)")]), 1),
            "gus_deleted_test": (notebook(rel, r, drop_tests={f"{lesson}.{list(r)[1]}"}), FULL[lesson]),
            "hal_copied_test": (notebook(rel, r, copy_test=f"{lesson}.{first}"), FULL[lesson]),
            "ida_relabelled": (notebook(rel, r, relabel=True), FULL[lesson]),
            "jon_stderr": (notebook(rel, r, extra=[(first, stderr)]), FULL[lesson]),
            "kim_library": (notebook(rel, {**r, **{k: v for k, v in LIBRARY.items() if k in r}}),
                            FULL[lesson] - {"02": 4, "08": 3}[lesson]),
            "lou_solutions": (notebook(rel, {}, extra=[("", FROM_SOLUTIONS.format(root=str(ROOT / "solutions"),
                                                                                 name=NAMES[lesson]))]), 0),
            "max_patches_checker": (notebook(rel, wrong, extra=[("", PATCH_CHECKER)]), 0),
            "nia_reads_frames": (notebook(rel, {**r, **{k: v for k, v in READ_FRAMES.items() if k in r}}),
                                 FULL[lesson] - {"02": 3, "08": 1}[lesson]),
            "oli_hostile": (notebook(rel, r, extra=[(first, HOSTILE.format(targets=targets))]), FULL[lesson]),
            "pat_sleeps": (notebook(rel, {**r, first: r[first].replace("):\n", "):\n    import time\n    time.sleep(1000)\n", 1)}),
                           FULL[lesson] - {"02": 3, "08": 1}[lesson]),
        }
        for student, (nb, points) in plan.items():
            cls.setdefault(student, {})[lesson] = (nb, points)
    return cls


def _from_exercises(lesson: str, answers: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "exercises" / NAMES[lesson], as_version=4)
    for cell in nb.cells:
        for name, source in answers.items():
            if cell.cell_type == "code" and cell.source.lstrip().startswith(f"def {name}("):
                cell.source = source
    return nb


def _digest(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    submissions = tmp_path_factory.mktemp("submissions")
    assert assignments.init_course(course, ROOT / "solutions", ["02", "08"], timeout=20) == ["lesson02", "lesson08"]
    releases = {lesson: nbformat.read(course / "release" / f"lesson{lesson}" / NAMES[lesson], as_version=4)
                for lesson in NAMES}
    cls = learners(releases, ROOT, course, submissions)
    for student, lessons in cls.items():
        (submissions / student).mkdir()
        for lesson, (nb, _) in lessons.items():
            nbformat.write(nb, submissions / student / NAMES[lesson])
    library = _digest(ROOT / "attention_course")
    before = _digest(submissions)
    assert main(["classroom", "grade", str(course), "--submissions", str(submissions), "--timeout", "20"]) == 0
    return course, cls, before, _digest(submissions), library


def test_the_class_has_32_notebooks_of_every_kind(graded):
    _, cls, before, _, _ = graded
    assert len(cls) == 16 and len(before) == 32


def test_every_notebook_gets_its_expected_score(graded):
    course, cls, _, _, _ = graded
    with open(course / gradebook.TASK_CSV, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    got = {}
    for row in rows:
        key = (row["student"], row["assignment"][-2:])
        got[key] = got.get(key, 0) + float(row["points"])
    expected = {(student, lesson): points for student, lessons in cls.items() for lesson, (_, points) in lessons.items()}
    wrong = {key: (got.get(key), points) for key, points in expected.items() if got.get(key) != points}
    assert not wrong, f"{32 - len(wrong)} of 32 as expected; (got, expected): {wrong}"


def test_messages_say_why(graded):
    course, _, _, _, _ = graded
    with open(course / gradebook.TASK_CSV, newline="", encoding="utf-8") as handle:
        rows = {(r["student"], r["task"]): r["message"] for r in csv.DictReader(handle)}
    assert "course library's own attention_course.core.attention.causal_mask" in rows[("kim_library", "02.causal_mask")]
    assert "numpy.percentile" in rows[("kim_library", "08.latency_percentile")]
    assert "reads the checker's frames" in rows[("nia_reads_frames", "02.attention_scores")]
    assert "ended the grading process" in rows[("fay_exits", "02.softmax")]
    assert rows[("fay_exits", "02.attention_scores")].startswith("✅")
    assert "sqrt" in rows[("dan_mistakes", "02.attention_scores")].lower()
    assert "refused" in rows[("max_patches_checker", "02.softmax")]
    assert "`attention_scores` is not defined" not in rows[("lou_solutions", "02.attention_scores")]
    assert "not done yet" in rows[("lou_solutions", "02.attention_scores")]  # the solutions were out of reach
    assert "passed" in rows[("jon_stderr", "02.softmax")]
    assert all(len(message) > 0 and "Traceback" not in message for message in rows.values())


def test_no_submission_changed_anyones_files(graded):
    course, _, before, after, library = graded
    assert before == after
    assert library == _digest(ROOT / "attention_course")
    assert (course / "gradebook.db").stat().st_size > 0 and "lesson02" in os.listdir(course / "source")
