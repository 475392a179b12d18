"""The catalog of the checks' messages: ``python -m attention_course.tools.check_messages update|check``.

The templates are the first argument of every ``tr("...")`` in ``attention_course/grading/`` and every stage of
``grading.hints.HINTS``. ``update`` writes them into ``grading/locales/<lang>/LC_MESSAGES/checks.po`` (keeping the
translations of templates that did not change, dropping those of templates that are gone) and compiles
``checks.mo``, which the checks read at run time. ``check`` lists what is missing: a template without a translation,
a translation whose ``{fields}`` differ from the English, a ``tr`` call whose template is not a literal, a ``.mo``
older than its ``.po``.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from ..core.language import DEFAULT, LANGUAGES, placeholders
from ..grading._messages import DOMAIN, LOCALE_DIR

GRADING = LOCALE_DIR.parent
TEMPLATE_FUNCTIONS = ("tr", "deferred")  # grading._messages: their first argument is a template
LANGS = tuple(lang for lang in LANGUAGES if lang != DEFAULT)


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _tr_calls(path: Path) -> tuple[list[tuple[str, int]], list[int]]:
    """The literal templates of ``tr(...)`` in one module (with their lines), and the lines of non-literal ones."""
    found, dynamic = [], []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TEMPLATE_FUNCTIONS \
                and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((first.value, node.lineno))
            else:
                dynamic.append(node.lineno)
    return found, dynamic


def templates() -> dict[str, list[str]]:
    """Every template of the checks, in source order, with where it is used (``lesson02.py:41``)."""
    from ..grading.hints import HINTS

    result: dict[str, list[str]] = {}
    for path in sorted(GRADING.glob("*.py")):
        for template, line in _tr_calls(path)[0]:
            result.setdefault(template, []).append(f"{path.name}:{line}")
    for task_id, stages in HINTS.items():
        for number, stage in enumerate(stages, 1):
            result.setdefault(stage, []).append(f"hints.py:{task_id}/{number}")
    return result


def dynamic_calls() -> list[str]:
    """``tr`` calls whose template is not a string literal (they could not be extracted, so never translated)."""
    return [f"{path.name}:{line}" for path in sorted(GRADING.glob("*.py")) for line in _tr_calls(path)[1]]


def read_catalog(lang: str) -> Catalog:
    path = po_path(lang)
    if not path.exists():
        return Catalog(locale=lang, domain=DOMAIN)
    with path.open("rb") as handle:
        return read_po(handle, locale=lang, domain=DOMAIN)


def update(lang: str) -> tuple[int, int]:
    """Rewrite the ``lang`` catalog from the code's templates and compile it; returns (templates, translated)."""
    old = read_catalog(lang)
    known = {message.id: message.string for message in old if message.id}
    catalog = Catalog(locale=lang, domain=DOMAIN, project="attention-course",
                      header_comment="# The checks' messages (attention_course.grading), English -> " + lang + ".\n"
                      "# Regenerate with: python -m attention_course.tools.check_messages update")
    translated = 0
    for template, where in templates().items():
        string = known.get(template, "")
        translated += bool(string)
        catalog.add(template, string, locations=[(place.rsplit(":", 1)[0], None) for place in where[:1]])
    path = po_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=0, omit_header=False, sort_output=False, include_lineno=False)
    path.write_bytes(buffer.getvalue())
    compile_catalog(lang)
    return len(catalog), translated


def compile_catalog(lang: str) -> Path:
    """``checks.po`` -> ``checks.mo`` (translated entries only: an empty one falls back to English)."""
    catalog = read_catalog(lang)
    target = po_path(lang).with_suffix(".mo")
    with target.open("wb") as handle:
        write_mo(handle, catalog, use_fuzzy=False)
    return target


def problems(lang: str, catalog: Catalog | None = None, wanted: dict[str, list[str]] | None = None) -> list[str]:
    """What keeps the ``lang`` catalog (default: the shipped one) from being complete and current for the templates
    ``wanted`` (default: the code's); empty when nothing does."""
    shipped = catalog is None
    catalog = read_catalog(lang) if shipped else catalog
    wanted = templates() if wanted is None else wanted
    entries = {message.id: message for message in catalog if message.id}
    found = [f"tr() without a literal template at {place}" for place in dynamic_calls()] if shipped else []
    for template, where in wanted.items():
        message = entries.get(template)
        if message is None:
            found.append(f"not in {po_path(lang).name}: {template!r} ({where[0]})")
        elif not message.string:
            found.append(f"no translation: {template!r} ({where[0]})")
        elif message.fuzzy:
            found.append(f"fuzzy translation: {template!r}")
        elif placeholders(message.string) != placeholders(template):
            found.append(f"fields differ: {template!r} has {sorted(placeholders(template))}, the translation "
                         f"{sorted(placeholders(message.string))}")
    found += [f"obsolete entry: {msgid!r}" for msgid in entries if msgid not in wanted]
    if not shipped:
        return found
    mo = po_path(lang).with_suffix(".mo")
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    if not mo.exists() or mo.read_bytes() != buffer.getvalue():
        found.append(f"{mo.name} is not compiled from the current {po_path(lang).name} (run update)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_course.tools.check_messages", description=__doc__)
    parser.add_argument("action", choices=("update", "check"))
    args = parser.parse_args(argv)
    status = 0
    for lang in LANGS:
        if args.action == "update":
            total, translated = update(lang)
            print(f"{po_path(lang).relative_to(GRADING.parent.parent)}: {translated}/{total} templates translated")
        found = problems(lang)
        for line in found:
            print(f"{lang}: {line}", file=sys.stderr)
        status |= bool(found)
    return status


if __name__ == "__main__":
    sys.exit(main())
