"""What a check says, in the learner's language: ``tr(template, **fields)``.

Every message a learner reads from a check (a failure, its hint, the pass line, a staged hint) is an English
template with named fields, ``tr("the shape should be {shape}", shape=...)``; the English template is the key of
its translation in a gettext catalog shipped with the package (``grading/locales/ja/LC_MESSAGES/checks.po``,
compiled to ``checks.mo``; ``python -m attention_course.tools.check_messages update`` extracts and compiles).
English output is the template itself, formatted: the same text the checks printed before they were templates.

The language is the one the widgets speak (``core.language.language``: ``$ATTENTION_COURSE_LANG``, else the folder
of the running notebook, so a notebook in ``exercises-ja/`` gets Japanese checks with the English code cells).
A template without a translation, or a language setting the course does not know, gives English: a check never
fails because of its own message.
"""

from __future__ import annotations

import gettext
from pathlib import Path

from ..core.language import DEFAULT, LANGUAGES, language

DOMAIN = "checks"
LOCALE_DIR = Path(__file__).resolve().parent / "locales"

# Loaded once, at import, before any learner code runs (the sandbox of a check never has to open a file).
_CATALOGS: dict[str, gettext.NullTranslations] = {
    lang: gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)
    for lang in LANGUAGES if lang != DEFAULT
}


def check_language() -> str:
    """The language of the checks' messages now; English when the setting is not one the course speaks."""
    try:
        return language()
    except ValueError:  # a bad $ATTENTION_COURSE_LANG must not turn a check's verdict into a crash
        return DEFAULT


def translate(template: str, lang: str | None = None) -> str:
    """The template in ``lang`` (default: ``check_language()``), or the English template where none is known."""
    lang = check_language() if lang is None else lang
    catalog = _CATALOGS.get(lang)
    return template if catalog is None else catalog.gettext(template)


def tr(template: str, /, **fields: object) -> str:
    """``template`` translated into the learner's language and filled with ``fields`` (``str.format`` syntax:
    ``{name}``, ``{value:.3g}``; a literal brace is written ``{{``)."""
    return translate(template).format(**fields)


class Deferred(str):
    """An English message (it *is* the English text) that remembers its template and fields, for code that must not
    look up a language where it runs (the sandbox's audit hook): ``localised`` translates it later."""

    template: str
    fields: dict


def deferred(template: str, /, **fields: object) -> Deferred:
    """The English text of ``template`` with ``fields`` now, its translation later (``localised``)."""
    text = Deferred(template.format(**fields))
    text.template, text.fields = template, fields
    return text


def localised(text: str) -> str:
    """A ``Deferred`` message in the learner's language; any other text as it is."""
    return translate(text.template).format(**text.fields) if isinstance(text, Deferred) else text
