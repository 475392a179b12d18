"""Generate exercise notebooks from their solutions: the solution notebooks are the single source.

In a solution's code cell, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become a
stub that raises NotImplementedError (text after BEGIN SOLUTION becomes the stub's hint). Markdown
between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` is dropped. Outputs, execution counts
and cell metadata are cleared, so nothing of the solution survives.

A learner's edits are never overwritten: each generated notebook records a hash of its cells' sources,
and a file whose sources no longer match that hash is skipped unless ``force`` is given (then it is
first copied to a timestamped ``.bak``).
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
                out.append(f"{indent}# Hint: {hint}")
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


def render(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook) + "\n"


def was_edited(path: Path) -> bool:
    """True if a generated exercise on disk has sources that differ from what was generated."""
    try:
        notebook = nbformat.read(path, as_version=4)
        recorded = notebook.metadata[STAMP]["sources_sha256"]
    except (KeyError, json.JSONDecodeError, nbformat.reader.NotJSONError):
        return True  # not ours or unreadable: treat as the learner's
    return recorded != sources_hash(notebook)


@dataclass
class SyncReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    skipped_edited: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


def sync_exercises(solutions: Path, exercises: Path, check_only: bool = False, force: bool = False) -> SyncReport:
    """Regenerate exercises/ from solutions/ (or, with ``check_only``, report what is stale)."""
    report = SyncReport()
    sources = sorted(Path(solutions).glob("*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no solution notebooks found in {solutions}")
    exercises = Path(exercises)
    exercises.mkdir(parents=True, exist_ok=True)
    for source in sources:
        target = exercises / source.name
        text = render(make_exercise(nbformat.read(source, as_version=4), source.name))
        if target.exists() and target.read_text(encoding="utf-8") == text:
            report.unchanged.append(target.name)
            continue
        report.stale.append(target.name)
        if check_only:
            continue
        if target.exists() and was_edited(target):
            if not force:
                report.skipped_edited.append(target.name)
                continue
            backup = target.with_name(f"{target.name}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
            shutil.copy2(target, backup)
            report.backups.append(backup.name)
        target.write_text(text, encoding="utf-8")
        report.written.append(target.name)
    names = {source.name for source in sources}
    report.orphans = sorted(p.name for p in exercises.glob("*.ipynb") if p.name not in names)
    return report
