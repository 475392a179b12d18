"""The Japanese catalogs as the site and the classroom read them, and the one kind of prose inside code: the hint line.

Kept apart from ``tools.i18n`` (which extracts and updates the catalogs, and imports ``tools.book`` to do so) and free
of the Jupyter stack, so that the book's staging, the classroom's assignments and the exercise generator can use it
without an import circle and where nbformat is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.course import course

LOCALES = course().root / "book" / "locales"
LANGUAGE = "ja"
CATALOGS = LOCALES / LANGUAGE / "LC_MESSAGES"
HINT_COMMENT = "# Hint: "  # the line above each stub; a learner reads it (the Japanese edition translates it)


def read_catalog(path: Path):
    """A .po file as a babel Catalog (fuzzy entries kept: they are stale translations)."""
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        return read_po(handle, locale=LANGUAGE)


def translations(path: Path) -> dict[str, str]:
    """{English message: Japanese} for the current (not fuzzy, not empty) entries of a catalog; {} if none."""
    if not path.exists():
        return {}
    return {m.id: m.string for m in read_catalog(path) if m.id and m.string and not m.fuzzy}


# The hint line the exercise generator writes above each stub is prose a learner reads; only that line is a message.
HINT_LINE = re.compile(rf"^(?P<indent>[ \t]*)# (?P<message>{re.escape(HINT_COMMENT[2:])}.*?)[ \t]*$")


def code_messages(source: str) -> list[str]:
    """The messages of a code cell: each hint line's text after ``# `` ("Hint: ..."), in order."""
    return [match["message"] for line in source.split("\n") if (match := HINT_LINE.match(line))]


def translate_code(source: str, catalog: dict[str, str], used: set[str] | None = None) -> str:
    """A code cell with each hint line the catalog translates replaced by its translation (same indent, still a
    comment); every other line, and the line ends, exactly as they were."""
    lines = source.split("\n")
    for number, line in enumerate(lines):
        match = HINT_LINE.match(line)
        if match and match["message"] in catalog:
            lines[number] = f"{match['indent']}# {' '.join(catalog[match['message']].split())}"
            if used is not None:
                used.add(match["message"])
    return "\n".join(lines)


def translate_code_cell(source: str | list[str], catalog: dict[str, str], used: set[str] | None = None) -> str | list[str]:
    """``translate_code`` on a cell's source as the notebook stores it (one string, or a list of lines)."""
    joined = source if isinstance(source, str) else "".join(source)
    text = translate_code(joined, catalog, used)
    if text == joined or isinstance(source, str):
        return source if text == joined else text
    return text.splitlines(keepends=True)
