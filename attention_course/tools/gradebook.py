"""Grade a room with nbgrader (``attention-course classroom grade``): every submission autograded, one student's broken,
empty, corrupt or never-ending notebook costing that student the points that failed, never the run.

``grade_course`` writes ``grades_by_task.csv`` (student, assignment, task, points, max_points, message: the check's own
message) beside nbgrader's gradebook and its ``grades.csv``. Submissions are read, never written: nbgrader grades
copies. The learners' code runs in the isolated grader (``grade_sandbox``), never in nbgrader's kernel.
"""

from __future__ import annotations

import csv
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..core.language import check_language
from .assignments import DEFAULT_TIMEOUT, nbgrader_api, tasks_of

TASK_CSV = "grades_by_task.csv"


@dataclass
class TaskGrade:
    student: str
    assignment: str
    task: str
    points: float
    max_points: float
    message: str


def one_line(text: str, limit: int = 2000) -> str:
    """``text`` on one line, without terminal colours, cut to ``limit`` characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # ANSI colours in tracebacks
    text = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell_message(cell, timeout: int) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output.get("ename") == "CellTimeoutError":
                return f"stopped: the cell ran longer than the {timeout} s limit (an endless loop?)"
            return one_line(f"{output.get('ename')}: {output.get('evalue')}")
    streams = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    return one_line(streams) or "passed"


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
        return f"{path.name} is not a readable notebook ({type(error).__name__}: {one_line(str(error), 160)})"
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
                 timeout: int = DEFAULT_TIMEOUT, progress=print, lang: str | None = None) -> list[TaskGrade]:
    """Autograde every student in ``folder``/submitted (after copying ``submissions`` there, if given).

    Writes ``grades_by_task.csv`` and nbgrader's ``grades.csv`` into ``folder`` and returns the rows. ``lang``
    ("en" or "ja"): the language of the checks' messages in the feedback; by default each assignment's own (Japanese
    for a course made from the Japanese edition's solutions, else English). The points never depend on it.
    """
    if lang is not None:
        check_language(lang)
    folder = Path(folder).resolve()
    if not (folder / "nbgrader_config.py").exists():
        raise FileNotFoundError(f"{folder} is not a course folder: run `attention-course classroom init {folder}` first")
    if submissions is not None:
        copy_submissions(submissions, folder)
    sources = {p.parent.name: p for p in sorted((folder / "source").glob("*/*.ipynb"))}
    submitted = folder / "submitted"
    students = sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []
    wanted = assignments or sorted({a.name for s in students for a in (submitted / s).iterdir() if a.name in sources})
    api = nbgrader_api(folder, timeout, lang or "")
    _precompute_verdicts(folder, students, wanted, sources, timeout, progress, lang)
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
                    problem = "autograding failed: " + one_line(result.get("error") or result.get("log") or "", 300)
            if problem is None:
                try:
                    rows += _graded_rows(api, folder, student, assignment, source.name, tasks, timeout)
                    continue
                except Exception as error:  # whatever nbgrader left behind, the next student is still graded
                    problem = f"could not read nbgrader's result: {type(error).__name__}: {one_line(str(error), 200)}"
            rows += [TaskGrade(student, assignment, task, 0.0, points, problem) for _, task, points in tasks]
    write_task_csv(rows, folder / TASK_CSV)
    _export_gradebook(api, folder / "grades.csv")
    return rows


def _precompute_verdicts(folder: Path, students: list[str], wanted: list[str], sources: dict, timeout: int,
                         progress, lang: str | None = None) -> None:
    """Every notebook's verdicts from one isolated grading run (one PyTorch import for the class, one throwaway
    user per notebook); nbgrader's autograde then writes them into each test cell (grade_sandbox). Each job
    carries its language (``lang``, else the assignment's), so no setting of the instructor's shell leaks in."""
    from .grade_sandbox import PRECOMPUTED, job_from_notebook, notebook_language, run_jobs

    jobs = []
    for assignment in wanted:
        source = nbformat.read(sources[assignment], as_version=4)
        language = lang or notebook_language(source)
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
                jobs.append(dict(job, key=f"{student}/{assignment}", lang=language))
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
