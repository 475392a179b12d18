"""Where the course lives: its root folder and the folders in it. The one way tooling finds them.

Only a real course checkout counts: a folder whose pyproject.toml names the ``attention-course`` project
and that holds ``solutions/`` and ``notebooks/``. Any other folder that happens to have a ``solutions/``
is not mistaken for the course.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_NAME = re.compile(r'^name\s*=\s*"attention-course"\s*$', re.MULTILINE)
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the checkout this library was installed from (core/course.py)


def is_course_root(folder: Path) -> bool:
    """True if ``folder`` is a course checkout (marker: pyproject.toml naming attention-course)."""
    marker = folder / "pyproject.toml"
    try:
        named = bool(PROJECT_NAME.search(marker.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return False
    return named and (folder / "solutions").is_dir() and (folder / "notebooks").is_dir()


def find_root(start: Path | None = None) -> Path:
    """The course checkout at or above ``start`` (default: the current folder)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_course_root(folder):
            return folder
    raise FileNotFoundError(
        f"no course checkout at or above {here}: expected a folder whose pyproject.toml names "
        "'attention-course', with notebooks/ and solutions/ in it. Run the command inside the course folder, "
        "or pass --root.")


@dataclass(frozen=True)
class CourseFolders:
    """The folders of a course checkout."""

    root: Path

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def exercises(self) -> Path:
        return self.root / "exercises"

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def book(self) -> Path:
        return self.root / "book"

    @property
    def build(self) -> Path:
        return self.root / "_build"

    @property
    def node_modules(self) -> Path:
        return self.root / "book" / "offline" / "node_modules"


def course(start: Path | None = None) -> CourseFolders:
    """The folders of the course found from ``start``; falls back to the checkout the library lives in."""
    try:
        return CourseFolders(find_root(start))
    except FileNotFoundError:
        if start is None and is_course_root(PACKAGE_ROOT):
            return CourseFolders(PACKAGE_ROOT)
        raise
