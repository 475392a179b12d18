"""Solutions turned into an nbgrader course (``attention-course classroom init``).

``init_course`` turns each notebook of solutions/ into an nbgrader assignment: the solution cells become
nbgrader answer cells, every ``check("NN.task", fn)`` cell becomes a locked autograded test cell worth
``POINTS`` (with hidden extra cases from ``HIDDEN_CASES`` where a task deserves them), and the student
versions come from nbgrader's own ``generate_assignment``.

Layout of a course folder (nbgrader's): ``nbgrader_config.py``, ``source/lessonNN/``, ``release/``
(what students get), ``submitted/<student>/lessonNN/`` (what ``gradebook.grade_course`` reads), ``autograded/``,
``gradebook.db``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat

from .code_messages import HINT_COMMENT

CHECK_CALL = re.compile(r"""^\s*check(?:_challenge)?\(\s*["'](?P<task>[\w.]+)["']\s*,""", re.MULTILINE)
BEGIN_WITH_HINT = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?P<hint>.*)$", re.MULTILINE)
MARKDOWN_SOLUTION = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->\n?", re.DOTALL)
STUB = 'raise NotImplementedError("your code here")'
COURSE_ID = "attention-course"
DEFAULT_TIMEOUT = 60  # seconds per task; lesson checks take a second or two; build tasks get their own limit
AUTOGRADE_PREPROCESSORS = [
    "attention_course.tools.grade_sandbox.IsolatedVerdicts", "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata"]

# Tasks worth more than one point: those that assemble several earlier pieces.
POINTS = {
    "02.scaled_dot_product_attention": 2, "03.multi_head_attention": 2, "05.sample_next": 2,
    "06.attention_rollout": 2, "04.gpu_timer": 2,
}

# Extra cases the students do not see (nbgrader removes them from the release and restores them when
# grading): edge cases a function can get wrong while passing the visible check.
HIDDEN_CASES = {
    "01.path_length": [
        ('path_length("rnn", 7, 7) == 0', "a position reaches itself in 0 steps"),
        ('path_length("attention", 0, 500) == 1', "attention connects any two positions in one step, however far apart"),
    ],
    "02.causal_mask": [
        ("causal_mask(1).tolist() == [[True]]", "with T = 1 the only position may attend to itself"),
    ],
    "02.padding_mask": [
        ("padding_mask(torch.tensor([0, 3]), 3).tolist() == [[False] * 3, [True] * 3]",
         "a sequence of length 0 has no real tokens; one of full length has no padding"),
    ],
    "02.softmax": [
        ("torch.allclose(softmax(torch.tensor([[-1000.0, 0.0, 1000.0]])), torch.tensor([[0.0, 0.0, 1.0]]))",
         "scores spread from -1000 to 1000 must give finite weights that sum to 1"),
    ],
    "04.block_flops": [("block_flops(1, 1) == 28", "T = 1, d = 1: 8 (projections) + 16 (MLP) + 4 (attention)")],
    "05.shift_targets": [
        ("[t.tolist() for t in shift_targets(torch.tensor([[5, 6]]))] == [[[5]], [[6]]]",
         "a window of 2 tokens gives one input and one target"),
    ],
    "05.warmup_cosine_lr": [
        ("abs(warmup_cosine_lr(10, 10, 100, 1.0, 0.1) - 1.0) < 1e-9", "the first step after warm-up uses max_lr"),
        ("abs(warmup_cosine_lr(1000, 10, 100, 1.0, 0.1) - 0.1) < 1e-9", "long after the end the rate stays at min_lr"),
    ],
    "07.select_by_validation": [
        ('select_by_validation([{"val_accuracy": 0.5, "test_accuracy": 0.7}]) == 0.7', "a single run is the best run"),
    ],
}


def assignment_id(notebook_name: str) -> str:
    """'02_self_attention.ipynb' -> 'lesson02'."""
    return f"lesson{notebook_name[:2]}"


def grade_id(task: str) -> str:
    """nbgrader's id for a task's test cell: '02.softmax' -> 'task_02_softmax'."""
    return "task_" + task.replace(".", "_")


def nbgrader_settings(root: Path, timeout: int = DEFAULT_TIMEOUT, lang: str = "") -> dict[str, dict[str, object]]:
    """The nbgrader configuration of a course folder (written to nbgrader_config.py and used in-process); ``lang``:
    the language of the checks' messages when grading (empty: each notebook's own, see ``IsolatedVerdicts``)."""
    return {
        "CourseDirectory": {"root": str(Path(root).resolve()), "course_id": COURSE_ID},
        "ClearSolutions": {"code_stub": {"python": STUB}},
        "Execute": {"timeout": int(timeout), "interrupt_on_timeout": True},
        # The learner's code never runs in nbgrader's kernel: each test cell's verdict comes from
        # grading.isolated, as a throwaway user (tools/grade_sandbox.py); nbgrader scores the outputs as usual.
        "Autograde": {"autograde_preprocessors": AUTOGRADE_PREPROCESSORS},
        "IsolatedVerdicts": {"timeout": int(timeout), "hide": str(Path(root).resolve()), "lang": lang},
    }


def _config(root: Path, timeout: int, lang: str = ""):
    from traitlets.config import Config

    config = Config()
    for section, values in nbgrader_settings(root, timeout, lang).items():
        for key, value in values.items():
            setattr(config[section], key, value)
    return config


def _nbgrader_meta(cell_id: str, *, solution=False, grade=False, locked=False, points=0) -> dict:
    meta = {"grade": grade, "grade_id": cell_id, "locked": locked, "schema_version": 3, "solution": solution}
    if grade:
        meta["points"] = points
    return meta


def _hidden_block(task: str) -> str:
    cases = HIDDEN_CASES.get(task)
    if not cases:
        return ""
    lines = ["", "### BEGIN HIDDEN TESTS"]
    lines += [f"assert {expr}, {f'{task} (hidden case): {why}'!r}" for expr, why in cases]
    lines.append("### END HIDDEN TESTS")
    return "\n".join(lines)


def _hint_translations(solution: nbformat.NotebookNode) -> dict[str, str]:
    """For a solution notebook of the Japanese edition (``attention-course i18n notebooks``), the Japanese of its
    stubs' hint lines (its exercise's catalog, as the Japanese exercise notebook shows them); else {}."""
    from ..core.language import GENERATED_METADATA, metadata_language

    if metadata_language(solution.metadata) != "ja":
        return {}
    from .i18n import CATALOGS, translations

    source = Path(solution.metadata[GENERATED_METADATA].get("source", ""))
    return translations(CATALOGS / "exercises" / f"{source.stem}.po")


def source_notebook(solution: nbformat.NotebookNode, lock_setup: bool = True) -> nbformat.NotebookNode:
    """An nbgrader source notebook made from one of the course's solution notebooks (or a team challenge:
    ``lock_setup=False`` leaves every cell but the scored one free for the team to change). A Japanese-edition
    solution gives its learners the hint lines in Japanese."""
    notebook = nbformat.v4.new_notebook(metadata=dict(solution.metadata))
    hints = _hint_translations(solution)
    for index, cell in enumerate(solution.cells):
        if cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(MARKDOWN_SOLUTION.sub("", cell.source))
        elif cell.cell_type != "code":
            new = nbformat.v4.new_raw_cell(cell.source)
        elif "### BEGIN SOLUTION" in cell.source:  # the learner's answer; the hint stays visible
            source = BEGIN_WITH_HINT.sub(
                lambda m: (f"{m['indent']}{HINT_COMMENT}{m['hint'].strip(' :-')}\n" if m["hint"].strip(" :-") else "")
                + f"{m['indent']}### BEGIN SOLUTION", cell.source)
            if hints:
                from .i18n import translate_code

                source = translate_code(source, hints)
            new = nbformat.v4.new_code_cell(source)
            new.metadata["nbgrader"] = _nbgrader_meta(f"answer_{index:02d}", solution=True)
        elif (match := CHECK_CALL.search(cell.source)):
            task = match["task"]
            new = nbformat.v4.new_code_cell(cell.source.rstrip() + _hidden_block(task))
            new.metadata["nbgrader"] = _nbgrader_meta(grade_id(task), grade=True, locked=True, points=POINTS.get(task, 1))
        else:  # imports and set-up: locked, so grading restores them if a learner deleted a line
            new = nbformat.v4.new_code_cell(cell.source)
            if lock_setup:
                new.metadata["nbgrader"] = _nbgrader_meta(f"setup_{index:02d}", locked=True)
        new.id = f"c{index:03d}"
        notebook.cells.append(new)
    return notebook


def tasks_of(notebook: nbformat.NotebookNode) -> list[tuple[str, str, float]]:
    """(grade_id, task, points) of every autograded cell of a source notebook, in order."""
    found = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and (match := CHECK_CALL.search(cell.source)):
            found.append((meta["grade_id"], match["task"], float(meta.get("points", 0))))
    return found


def nbgrader_api(root: Path, timeout: int, lang: str = ""):
    """nbgrader's API on the course folder ``root``, quiet (warnings only), with its own command-line tools on PATH;
    ``lang``: the language of the checks' messages when it grades (empty: each notebook's own)."""
    import logging

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    # nbgrader runs the `alembic` command beside its Python when it creates a gradebook: put that folder on PATH.
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
    config = _config(root, timeout, lang)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    api.log_level = logging.WARNING
    return api


def init_course(folder: Path, solutions: Path, lessons: list[str] | None = None, timeout: int = DEFAULT_TIMEOUT,
                challenges: Path | None = None) -> list[str]:
    """Write an nbgrader course into ``folder`` from ``solutions`` and release it; returns the assignment ids.

    ``challenges``: a folder of team-challenge notebooks (classroom/challenges/), each its own assignment.
    """
    folder, solutions = Path(folder), Path(solutions)
    names = sorted(p.name for p in solutions.glob("[0-9][0-9]_*.ipynb") if not lessons or p.name[:2] in lessons)
    sources = [(solutions / name, assignment_id(name), True) for name in names]
    if challenges is not None:
        sources += [(path, path.stem, False) for path in sorted(Path(challenges).glob("challenge_*.ipynb"))]
    if not sources:
        raise FileNotFoundError(f"no solution notebooks{' for lessons ' + ', '.join(lessons) if lessons else ''} in {solutions}")
    folder.mkdir(parents=True, exist_ok=True)
    settings = nbgrader_settings(folder, timeout)
    del settings["CourseDirectory"]["root"]  # nbgrader's default, the current folder: the course folder can move
    lines = ["# nbgrader configuration written by `attention-course classroom init`.", "c = get_config()  # noqa: F821"]
    lines += [f"c.{section}.{key} = {value!r}" for section, values in settings.items() for key, value in values.items()]
    (folder / "nbgrader_config.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    api = nbgrader_api(folder, timeout)
    assignments = []
    for path, assignment, lock_setup in sources:
        target = folder / "source" / assignment / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(nbformat.read(path, as_version=4), lock_setup), target)
        result = api.generate_assignment(assignment, force=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result.get('log')}\n{result.get('error')}")
        assignments.append(assignment)
    return assignments
