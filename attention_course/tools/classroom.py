"""Classroom kit: grade a room with nbgrader, rank team challenges, mark lessons as slides.

``init`` turns each notebook of solutions/ into an nbgrader assignment: the solution cells become
nbgrader answer cells, every ``check("NN.task", fn)`` cell becomes a locked autograded test cell worth
``POINTS`` (with hidden extra cases from ``HIDDEN_CASES`` where a task deserves them), and the student
versions come from nbgrader's own ``generate_assignment``. ``grade`` autogrades every submission with
nbgrader (a per-cell time limit; one student's broken, empty, corrupt or never-ending notebook costs
that student the points that failed, never the run) and writes ``grades_by_task.csv`` (student,
assignment, task, points, max_points, message: the check's own message) beside nbgrader's gradebook
and its ``grades.csv``. Submissions are read, never written: nbgrader grades copies.

Layout of a course folder (nbgrader's): ``nbgrader_config.py``, ``source/lessonNN/``, ``release/``
(what students get), ``submitted/<student>/lessonNN/`` (what ``grade`` reads), ``autograded/``,
``gradebook.db``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..course import find_root

CHECK_CALL = re.compile(r"""^\s*check(?:_challenge)?\(\s*["'](?P<task>[\w.]+)["']\s*,""", re.MULTILINE)
BEGIN_WITH_HINT = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?P<hint>.*)$", re.MULTILINE)
MARKDOWN_SOLUTION = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->\n?", re.DOTALL)
STUB = 'raise NotImplementedError("your code here")'
COURSE_ID = "attention-course"
TASK_CSV = "grades_by_task.csv"
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


def nbgrader_settings(root: Path, timeout: int = DEFAULT_TIMEOUT) -> dict[str, dict[str, object]]:
    """The nbgrader configuration of a course folder (written to nbgrader_config.py and used in-process)."""
    return {
        "CourseDirectory": {"root": str(Path(root).resolve()), "course_id": COURSE_ID},
        "ClearSolutions": {"code_stub": {"python": STUB}},
        "Execute": {"timeout": int(timeout), "interrupt_on_timeout": True},
        # The learner's code never runs in nbgrader's kernel: each test cell's verdict comes from
        # grading.isolated, as a throwaway user (tools/grade_sandbox.py); nbgrader scores the outputs as usual.
        "Autograde": {"autograde_preprocessors": AUTOGRADE_PREPROCESSORS},
        "IsolatedVerdicts": {"timeout": int(timeout), "hide": str(Path(root).resolve())},
    }


def _config(root: Path, timeout: int):
    from traitlets.config import Config

    config = Config()
    for section, values in nbgrader_settings(root, timeout).items():
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


def source_notebook(solution: nbformat.NotebookNode, lock_setup: bool = True) -> nbformat.NotebookNode:
    """An nbgrader source notebook made from one of the course's solution notebooks (or a team challenge:
    ``lock_setup=False`` leaves every cell but the scored one free for the team to change)."""
    notebook = nbformat.v4.new_notebook(metadata=dict(solution.metadata))
    for index, cell in enumerate(solution.cells):
        if cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(MARKDOWN_SOLUTION.sub("", cell.source))
        elif cell.cell_type != "code":
            new = nbformat.v4.new_raw_cell(cell.source)
        elif "### BEGIN SOLUTION" in cell.source:  # the learner's answer; the hint stays visible
            source = BEGIN_WITH_HINT.sub(
                lambda m: (f"{m['indent']}# Hint: {m['hint'].strip(' :-')}\n" if m["hint"].strip(" :-") else "")
                + f"{m['indent']}### BEGIN SOLUTION", cell.source)
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


def _quiet_api(root: Path, timeout: int):
    import logging

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    # nbgrader runs the `alembic` command beside its Python when it creates a gradebook: put that folder on PATH.
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
    config = _config(root, timeout)
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
    api = _quiet_api(folder, timeout)
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


@dataclass
class TaskGrade:
    student: str
    assignment: str
    task: str
    points: float
    max_points: float
    message: str


def _one_line(text: str, limit: int = 2000) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # ANSI colours in tracebacks
    text = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell_message(cell, timeout: int) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output.get("ename") == "CellTimeoutError":
                return f"stopped: the cell ran longer than the {timeout} s limit (an endless loop?)"
            return _one_line(f"{output.get('ename')}: {output.get('evalue')}")
    streams = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    return _one_line(streams) or "passed"


def _unreadable(path: Path) -> str | None:
    """Why a submitted notebook cannot be graded, or None if it reads as a notebook."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        return f"could not read {path.name}: {error}"
    if not raw.strip():
        return f"{path.name} is an empty file"
    try:
        notebook = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as error:  # corrupt JSON, not a notebook, wrong encoding
        return f"{path.name} is not a readable notebook ({type(error).__name__}: {_one_line(str(error), 160)})"
    if not notebook.cells:
        return f"{path.name} has no cells"
    return None


def copy_submissions(submissions: Path, folder: Path) -> list[str]:
    """Copy ``submissions/<student>/[lessonNN/]NN_name.ipynb`` into nbgrader's submitted/ (originals untouched)."""
    known = {p.name: p.parent.name for p in (Path(folder) / "source").glob("*/*.ipynb")}
    students = []
    for student_dir in sorted(p for p in Path(submissions).iterdir() if p.is_dir() and not p.name.startswith(".")):
        (Path(folder) / "submitted" / student_dir.name).mkdir(parents=True, exist_ok=True)  # listed even with nothing to grade
        for path in sorted(student_dir.rglob("*.ipynb")):
            if path.name in known and ".ipynb_checkpoints" not in path.parts:
                target = Path(folder) / "submitted" / student_dir.name / known[path.name] / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                release = Path(folder) / "release" / known[path.name] / path.name
                if _unreadable(path) is None and release.exists():  # answers into the release's cells and metadata
                    from .grade_sandbox import adopt

                    adopted = adopt(nbformat.read(path, as_version=4), nbformat.read(release, as_version=4))
                    nbformat.write(adopted, target)
                else:
                    shutil.copyfile(path, target)
        students.append(student_dir.name)
    return students


def grade_course(folder: Path, submissions: Path | None = None, assignments: list[str] | None = None,
                 timeout: int = DEFAULT_TIMEOUT, progress=print) -> list[TaskGrade]:
    """Autograde every student in ``folder``/submitted (after copying ``submissions`` there, if given).

    Writes ``grades_by_task.csv`` and nbgrader's ``grades.csv`` into ``folder`` and returns the rows.
    """
    folder = Path(folder).resolve()
    if not (folder / "nbgrader_config.py").exists():
        raise FileNotFoundError(f"{folder} is not a course folder: run `attention-course classroom init {folder}` first")
    if submissions is not None:
        copy_submissions(submissions, folder)
    sources = {p.parent.name: p for p in sorted((folder / "source").glob("*/*.ipynb"))}
    submitted = folder / "submitted"
    students = sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []
    wanted = assignments or sorted({a.name for s in students for a in (submitted / s).iterdir() if a.name in sources})
    api = _quiet_api(folder, timeout)
    _precompute_verdicts(folder, students, wanted, sources, timeout, progress)
    with api.gradebook as gradebook:  # every student appears in nbgrader's export, graded or not
        for student in students:
            gradebook.update_or_create_student(student)
    rows: list[TaskGrade] = []
    for assignment in wanted:
        source = sources[assignment]
        tasks = tasks_of(nbformat.read(source, as_version=4))
        for student in students:
            progress(f"grading {student} / {assignment}")
            path = submitted / student / assignment / source.name
            problem = f"no submission of {source.name}" if not path.exists() else _unreadable(path)
            if problem is None:
                result = api.autograde(assignment, student, force=True, create=True)
                if not result["success"]:
                    problem = "autograding failed: " + _one_line(result.get("error") or result.get("log") or "", 300)
            if problem is None:
                try:
                    rows += _graded_rows(api, folder, student, assignment, source.name, tasks, timeout)
                    continue
                except Exception as error:  # whatever nbgrader left behind, the next student is still graded
                    problem = f"could not read nbgrader's result: {type(error).__name__}: {_one_line(str(error), 200)}"
            rows += [TaskGrade(student, assignment, task, 0.0, points, problem) for _, task, points in tasks]
    write_task_csv(rows, folder / TASK_CSV)
    _export_gradebook(api, folder / "grades.csv")
    return rows


def _precompute_verdicts(folder: Path, students: list[str], wanted: list[str], sources: dict, timeout: int,
                         progress) -> None:
    """Every notebook's verdicts from one isolated grading run (one PyTorch import for the class, one throwaway
    user per notebook); nbgrader's autograde then writes them into each test cell (grade_sandbox)."""
    from .grade_sandbox import PRECOMPUTED, job_from_notebook, run_jobs

    jobs = []
    for assignment in wanted:
        source = nbformat.read(sources[assignment], as_version=4)
        hidden = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                  if c.metadata.get("nbgrader", {}).get("grade")}
        for student in students:
            path = folder / "submitted" / student / assignment / sources[assignment].name
            if not path.exists() or _unreadable(path) is not None:
                continue
            notebook = nbformat.read(path, as_version=4)
            for cell in notebook.cells:  # what nbgrader restores: the source's locked test cells, hidden cases too
                grade = cell.metadata.get("nbgrader", {}).get("grade_id")
                if cell.metadata.get("nbgrader", {}).get("grade") and grade in hidden:
                    cell.source = hidden[grade]
            job = job_from_notebook(notebook, timeout)
            if job["tasks"]:
                jobs.append(dict(job, key=f"{student}/{assignment}"))
    if not jobs:
        return
    progress(f"running {len(jobs)} notebooks in the isolated grader")
    results, mode = run_jobs(jobs, [folder])
    for job in jobs:
        student, assignment = job["key"].split("/")
        PRECOMPUTED[(student, assignment)] = (results[job["key"]], mode)


def _graded_rows(api, folder: Path, student: str, assignment: str, name: str, tasks, timeout: int) -> list[TaskGrade]:
    autograded = nbformat.read(folder / "autograded" / student / assignment / name, as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in autograded.cells}
    with api.gradebook as gradebook:
        notebook = gradebook.find_submission_notebook(Path(name).stem, assignment, student)
        scores = {grade.name: (grade.score, grade.max_score) for grade in notebook.grades}
    stopped = [f"cell {index + 1}" for index, cell in enumerate(autograded.cells)
               if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", []))]
    rows = []
    for cell_id, task, points in tasks:
        score, max_score = scores.get(cell_id, (0.0, points))
        cell = cells.get(cell_id)
        message = _cell_message(cell, timeout) if cell is not None else "the test cell is missing from the submission"
        if score < max_score and stopped:  # a failure may come from a cell that never finished
            message += f" | note: {', '.join(stopped)} stopped at the {timeout} s limit (an endless loop?)"
        rows.append(TaskGrade(student, assignment, task, float(score), float(max_score), message))
    return rows


def _export_gradebook(api, target: Path) -> None:
    from nbgrader.plugins import CsvExportPlugin

    with api.gradebook as gradebook:
        CsvExportPlugin(to=str(target)).export(gradebook)


def write_task_csv(rows: list[TaskGrade], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", "task", "points", "max_points", "message"])
        for row in rows:
            writer.writerow([row.student, row.assignment, row.task, f"{row.points:g}", f"{row.max_points:g}", row.message])


def read_task_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def summary(rows: list[TaskGrade]) -> str:
    totals: dict[str, list[float]] = {}
    for row in rows:
        got = totals.setdefault(row.student, [0.0, 0.0])
        got[0] += row.points
        got[1] += row.max_points
    return "\n".join(f"{student:24s} {got:g} / {out_of:g}" for student, (got, out_of) in sorted(totals.items()))


# --- team challenges: a leaderboard from the grading CSV ------------------------------------------------

# A challenge is a graded task whose check prints "score=<number>"; its rows in grades_by_task.csv rank the teams.
CHALLENGES = {
    "challenge.val_loss_5min": {"better": "lower", "what": "validation loss (nats/char) after 5 minutes on the cpu profile"},
    "challenge.accuracy_200_labels": {"better": "higher", "what": "test accuracy of a classifier trained on 200 labels"},
}
SCORE = re.compile(r"score=(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def leaderboard(rows: list[dict[str, str]]) -> dict[str, list[dict[str, object]]]:
    """For each challenge in the rows: teams ranked by their score (a failed check has no score and ranks last)."""
    boards: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        task = row["task"]
        if not task.startswith("challenge."):
            continue
        verdict = f"\N{WHITE HEAVY CHECK MARK} {task}: "  # the grader's own line starts so; a team's print cannot
        message = row.get("message", "")
        match = SCORE.match(message[len(verdict):]) if message.startswith(verdict) else None
        passed = float(row.get("points") or 0) > 0 and match is not None
        boards.setdefault(task, []).append({"team": row["student"], "score": float(match["value"]) if passed else None,
                                            "message": row.get("message", "")})
    for task, entries in boards.items():
        sign = -1.0 if CHALLENGES.get(task, {}).get("better", "higher") == "higher" else 1.0
        entries.sort(key=lambda e: (e["score"] is None, sign * e["score"] if e["score"] is not None else 0.0, e["team"]))
        for rank, entry in enumerate(entries, 1):
            entry["rank"] = rank if entry["score"] is not None else None
    return boards


def format_leaderboard(boards: dict[str, list[dict[str, object]]]) -> str:
    if not boards:
        return "no challenge rows (tasks named challenge.*) in this CSV"
    lines = []
    for task, entries in sorted(boards.items()):
        what = CHALLENGES.get(task, {})
        lines.append(f"{task}: {what.get('what', '')} ({what.get('better', 'higher')} is better)")
        for entry in entries:
            if entry["score"] is None:
                lines.append(f"   -  {entry['team']:20s} no score: {_one_line(str(entry['message']), 100)}")
            else:
                lines.append(f"  {entry['rank']:2d}. {entry['team']:20s} {entry['score']:.4g}")
    return "\n".join(lines)


# --- slides: jupyterlab-slideshow reads each cell's slideshow.slide_type ---------------------------------

def slide_types(notebook: dict) -> list[str | None]:
    """One slide per section and per step: '#'/'##' headings start a slide, other prose a sub-slide; a code
    cell stays on the slide of the prose before it (None: no slide type, which jupyterlab-slideshow reads as
    "continue"), and a code cell after another code cell starts a sub-slide of its own."""
    types: list[str | None] = []
    previous = None
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        kind = None
        if cell["cell_type"] == "markdown":
            kind = "slide" if re.match(r"#{1,2} ", source.lstrip()) or previous is None else "subslide"
        elif cell["cell_type"] == "code" and previous == "code":
            kind = "subslide"
        types.append(kind)
        previous = cell["cell_type"]
    return types


OWNED = {"slide", "subslide", "-"}  # slide types this tool sets; an author's fragment, notes or skip stay


def mark_slides(path: Path) -> int:
    """Set ``slideshow.slide_type`` on a notebook's cells; sources, outputs and other metadata stay as they were.

    Idempotent: a second run changes nothing and leaves the file byte for byte the same. Returns the number of
    cells whose slide type changed.
    """
    path = Path(path)
    notebook = json.loads(path.read_text(encoding="utf-8"))
    changed = 0
    for cell, kind in zip(notebook["cells"], slide_types(notebook), strict=True):
        metadata = cell.setdefault("metadata", {})
        current = metadata.get("slideshow", {}).get("slide_type")
        if kind is not None and current != kind:
            metadata.setdefault("slideshow", {})["slide_type"] = kind
            changed += 1
        elif kind is None and current in OWNED:  # a continuation: no slide type ("-" is nbconvert's, not the deck's)
            del metadata["slideshow"]["slide_type"]
            if not metadata["slideshow"]:
                del metadata["slideshow"]
            changed += 1
    if changed:  # nbformat's own layout (what Jupyter writes), so a diff shows only the new metadata
        path.write_text(json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


# --- command line (wired into `attention-course classroom ...`) --------------------------------------------

def add_parser(commands) -> None:
    room = commands.add_parser("classroom", help="grade a room with nbgrader, team leaderboards, slides")
    sub = room.add_subparsers(dest="classroom_command", required=True)
    init = sub.add_parser("init", help="write an nbgrader course from solutions/ and release the student versions")
    init.add_argument("folder", type=Path)
    init.add_argument("--lessons", nargs="+", metavar="NN", help="only these lessons, e.g. 01 02 (default: all)")
    init.add_argument("--solutions", type=Path, help="solutions folder (default: the course repository's)")
    init.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds a cell may run when grading")
    init.add_argument("--challenges", action="store_true",
                      help="also the team challenges of classroom/challenges/ (grade them with --timeout 600)")
    grade = sub.add_parser("grade", help="autograde submissions into grades_by_task.csv and nbgrader's gradebook")
    grade.add_argument("folder", type=Path, help="the course folder made by `classroom init`")
    grade.add_argument("--submissions", type=Path,
                       help="a folder of <student>/NN_name.ipynb to grade (copied; default: the course's submitted/)")
    grade.add_argument("--assignment", nargs="+", help="only these assignments, e.g. lesson02")
    grade.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds a cell may run (default %(default)s)")
    board = sub.add_parser("leaderboard", help="rank teams from a grading CSV's challenge scores")
    board.add_argument("csv", type=Path)
    board.add_argument("--json", action="store_true")
    slides = sub.add_parser("slides", help="mark slide cells in lessons (idempotent; sources and outputs untouched)")
    slides.add_argument("notebooks", nargs="+", type=Path)


def run(args) -> int:
    if args.classroom_command == "init":
        root = None if args.solutions and not args.challenges else find_root()
        solutions = args.solutions or root / "solutions"
        made = init_course(args.folder, solutions, args.lessons, args.timeout,
                           challenges=root / "classroom" / "challenges" if args.challenges else None)
        print(f"wrote the nbgrader course {args.folder}: {', '.join(made)}; student versions in {args.folder / 'release'}")
        return 0
    if args.classroom_command == "grade":
        rows = grade_course(args.folder, args.submissions, args.assignment, args.timeout)
        print(summary(rows))
        print(f"wrote {args.folder / TASK_CSV} and nbgrader's {args.folder / 'grades.csv'}")
        return 0
    if args.classroom_command == "leaderboard":
        boards = leaderboard(read_task_csv(args.csv))
        print(json.dumps(boards, indent=1) if args.json else format_leaderboard(boards))
        return 0
    for path in args.notebooks:
        print(f"{path}: {mark_slides(path)} cell(s) changed")
    return 0
