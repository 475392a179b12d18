"""Generate exercise notebooks from their solutions: the solution notebooks are the single source.

In a solution's code cell, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become a
stub that raises NotImplementedError (text after BEGIN SOLUTION becomes the stub's hint). Markdown
between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` is dropped. Outputs, execution counts
and cell metadata are cleared, so nothing of the solution survives.

A learner's edits are never overwritten, and never an error: each generated notebook records a hash of its
cells' sources, and a file whose sources no longer match that hash is "edited by you": reported, skipped
unless ``force`` is given. Only a stale course copy is an error for ``--check``: a file still as generated
(its stamp matches its sources) whose sources differ from what the solution generates now. Whatever
regeneration replaces is first kept as a timestamped ``.bak`` copy, outputs included. A file that cannot
be read as a notebook (empty, ``[]``, not UTF-8, not JSON, a folder) is named with the reason, and every
other notebook is still processed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .code_messages import HINT_COMMENT

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?P<hint>.*)$")
END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
MARKDOWN_SOLUTION = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->\n?", re.DOTALL)
STAMP = "attention_course"


class SolutionFormatError(ValueError):
    """A solution notebook's markers are unbalanced or nested."""


def strip_solution_code(source: str, where: str = "cell") -> str:
    """Replace every BEGIN/END SOLUTION region of a code cell by a NotImplementedError stub."""
    out, inside = [], False
    for number, line in enumerate(source.splitlines(), 1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise SolutionFormatError(f"{where}, line {number}: BEGIN SOLUTION inside another solution region")
            inside = True
            indent, hint = begin["indent"], begin["hint"].strip(" :-")
            if hint:
                out.append(f"{indent}{HINT_COMMENT}{hint}")
            out.append(f'{indent}raise NotImplementedError("your code here")')
        elif END.match(line):
            if not inside:
                raise SolutionFormatError(f"{where}, line {number}: END SOLUTION without a BEGIN SOLUTION")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise SolutionFormatError(f"{where}: BEGIN SOLUTION is never closed by ### END SOLUTION")
    return "\n".join(out)


def sources_hash(notebook: nbformat.NotebookNode) -> str:
    """A hash of the cells' types and sources: what a learner changes when they edit."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        digest.update(cell.cell_type.encode() + b"\0" + cell.source.encode() + b"\0")
    return digest.hexdigest()


def make_exercise(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student version of a solution notebook."""
    exercise = nbformat.v4.new_notebook()
    exercise.metadata = {key: solution.metadata[key] for key in ("kernelspec", "language_info") if key in solution.metadata}
    for index, cell in enumerate(solution.cells):
        where = f"{name}, cell {index}"
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(strip_solution_code(cell.source, where))
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(MARKDOWN_SOLUTION.sub("", cell.source))
        else:
            new = nbformat.v4.new_raw_cell(cell.source)
        new.id = f"ex-{index:03d}"
        exercise.cells.append(new)
    exercise.metadata[STAMP] = {"generated_from": f"solutions/{name}", "sources_sha256": sources_hash(exercise)}
    return exercise


class OddNotebook(ValueError):
    """A path that cannot be read as a notebook; the message says why in plain words."""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read ``path`` as a version-4 notebook, or raise OddNotebook saying what is wrong with it."""
    path = Path(path)
    if path.is_dir():
        raise OddNotebook("a folder, not a notebook file")
    if not path.is_file():
        raise OddNotebook("not a regular file" if path.exists() or path.is_symlink() else "missing")
    raw = path.read_bytes()
    if not raw.strip():
        raise OddNotebook("empty file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise OddNotebook(f"not UTF-8 text (bad byte at position {error.start})") from None
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise OddNotebook(f"not valid JSON (line {error.lineno}: {error.msg})") from None
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list):
        raise OddNotebook(f"JSON {type(content).__name__}, but not a notebook (no list of cells)")
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat's own complaints about a malformed notebook
        raise OddNotebook(f"not a valid notebook ({type(error).__name__}: {str(error)[:120]})") from None


def render(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook) + "\n"


def stamp_of(notebook: nbformat.NotebookNode) -> str | None:
    """The sources hash recorded when the notebook was generated (None: not generated by this tool)."""
    stamp = notebook.metadata.get(STAMP)
    return stamp.get("sources_sha256") if isinstance(stamp, dict) else None


def was_edited(path: Path) -> bool:
    """True if a generated exercise on disk has sources that differ from what was generated."""
    try:
        notebook = read_notebook(path)
    except OddNotebook:
        return True  # unreadable: never treated as a course copy
    recorded = stamp_of(notebook)
    return recorded is None or recorded != sources_hash(notebook)


def has_outputs(notebook: nbformat.NotebookNode) -> bool:
    return any(cell.get("outputs") or cell.get("execution_count") for cell in notebook.cells)


@dataclass
class SyncReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)          # course copies behind their solution: an error for --check
    missing: list[str] = field(default_factory=list)        # no exercise file for a solution: an error for --check
    edited: list[str] = field(default_factory=list)         # the learner's: reported, never an error
    edited_behind: list[str] = field(default_factory=list)  # edited, and the course's version changed since
    skipped_edited: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)    # exercise files that are not notebooks: name -> why
    bad_solutions: dict[str, str] = field(default_factory=dict)  # solution files that cannot be used: an error
    backups: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def errors(self) -> bool:
        """What makes ``--check`` fail: stale or missing course copies, broken solutions. Never a learner's edit."""
        return bool(self.stale or self.missing or self.bad_solutions)


def keep_copy(target: Path) -> Path:
    """Move or copy ``target`` (a file, or a folder in its way) to a fresh timestamped ``.bak`` beside it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = target.with_name(f"{target.name}.{stamp}.bak")
    number = 1
    while backup.exists():
        number += 1
        backup = target.with_name(f"{target.name}.{stamp}-{number}.bak")
    if target.is_dir():
        target.rename(backup)
    else:
        shutil.copy2(target, backup)
    return backup


def _classify(target: Path, generated: nbformat.NotebookNode, report: SyncReport) -> str:
    """One of: missing, unreadable, unchanged, outputs (the course's sources, saved or run by the learner), stale,
    edited."""
    if not target.exists() and not target.is_symlink():
        return "missing"
    try:
        current = read_notebook(target)
    except OddNotebook as why:
        report.unreadable[target.name] = str(why)
        return "unreadable"
    wanted = stamp_of(generated)
    recorded = stamp_of(current)
    if recorded is None or recorded != sources_hash(current):
        if recorded != wanted:
            report.edited_behind.append(target.name)
        return "edited"
    if recorded != wanted:
        return "stale"
    # Same sources as the course's version: up to date, whatever JupyterLab's saving or a run changed around them.
    return "unchanged" if target.read_text(encoding="utf-8") == render(generated) else "outputs"


def sync_exercises(solutions: Path, exercises: Path, check_only: bool = False, force: bool = False) -> SyncReport:
    """Regenerate exercises/ from solutions/ (or, with ``check_only``, report what is stale); never raises on a file."""
    report = SyncReport()
    sources = sorted(Path(solutions).glob("*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no solution notebooks found in {solutions}")
    exercises = Path(exercises)
    if not check_only:
        exercises.mkdir(parents=True, exist_ok=True)
    for source in sources:
        target = exercises / source.name
        try:
            generated = make_exercise(read_notebook(source), source.name)
        except (OddNotebook, SolutionFormatError) as why:
            report.bad_solutions[source.name] = str(why)
            continue
        state = _classify(target, generated, report)
        if state in ("unchanged", "outputs"):
            report.unchanged.append(target.name)
            continue
        if state == "edited":
            report.edited.append(target.name)
            if not force:
                if not check_only:
                    report.skipped_edited.append(target.name)
                continue
        elif state == "unreadable" and not force:
            continue
        elif state in ("stale", "missing"):
            getattr(report, state).append(target.name)
        if check_only:
            continue
        if target.exists():
            report.backups.append(keep_copy(target).name)
        target.write_text(render(generated), encoding="utf-8")
        report.written.append(target.name)
    names = {source.name for source in sources}
    if exercises.is_dir():
        report.orphans = sorted(p.name for p in exercises.glob("*.ipynb") if p.name not in names)
    return report
