"""Sphinx extension: the course website for every reader (WCAG 2.1 AA, checked by axe-core in tests/test_book.py).

What it fixes in Jupyter Book 1's output (loaded through ``local_extensions`` in book/_config.yml):
- Japanese: a line break inside a Japanese sentence of the source is not a space on the page (the source pages
  wrap long lines; Japanese puts no space between words), pages under ``ja/`` are ``lang="ja"``, and Japanese
  words on other pages sit in ``<span lang="ja">`` so a screen reader switches voice;
- the theme's chrome: every sidebar expander is named after the section it opens, the search button's name holds
  its visible text, the colour-mode button's icons add no hidden words to its name;
- weight: the theme's 1.5 MB fontawesome.js (it blocked drawing every page) is not loaded; the theme's stylesheet
  already draws the same icons from its web fonts;
- every table scrolls in its own box, named for a screen reader and reachable by keyboard (static/course-a11y.js
  does the same for tables and scroll boxes that widgets draw later, and names the widgets' controls and images).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform

# Han, kana, CJK punctuation and full-width forms; a line break also joins them to the dashes and ellipsis that
# Japanese sentences use (English pages use the same dashes, so those alone never make a Japanese run).
CJK = "\u2e80-\u2fdf\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
CJK_OR_DASH = CJK + "\u2014\u2015\u2026"
CJK_CHAR = re.compile(f"[{CJK}]")
CJK_OR_DASH_CLASS = f"[{CJK_OR_DASH}]"
BREAK_IN_CJK = re.compile(f"(?<=[{CJK_OR_DASH}])[ \\t]*\\n[ \\t]*(?=[{CJK_OR_DASH}])")
CJK_RUN = re.compile(f"[{CJK}](?:[{CJK}0-9 ]*[{CJK}])?")
NOT_PROSE = (nodes.literal_block, nodes.literal, nodes.raw, nodes.math, nodes.math_block, nodes.comment)
JAPANESE_PAGES = "ja/"


class JoinJapaneseLines(SphinxTransform):
    """Drop the line breaks (and spaces around them) between two Japanese characters of a paragraph.

    MyST keeps a source line break as a newline (often a Text node of its own), which HTML shows as a space:
    wrong inside a Japanese sentence. Breaks next to a Latin word stay (the pages space Latin words)."""

    default_priority = 700

    def apply(self, **kwargs) -> None:
        for block in self.document.findall(nodes.TextElement):
            if isinstance(block, NOT_PROSE) or not CJK_CHAR.search(block.astext()):
                continue
            texts = [text for text in block.findall(nodes.Text) if not _inside(text, NOT_PROSE)]
            for index, text in enumerate(texts):
                joined = BREAK_IN_CJK.sub("", str(text))
                # the nearest non-empty texts around it (MyST leaves empty Text nodes before inline markup)
                before = next((str(t) for t in reversed(texts[:index]) if str(t)), "")
                after = next((str(t) for t in texts[index + 1:] if str(t)), "")
                # a break at the edge of this text, next to Japanese in the text before or after it
                if _ends_cjk(joined.rstrip(" \t\n") or before) and after[:1] and re.match(CJK_OR_DASH_CLASS, after[0]):
                    joined = re.sub(r"[ \t]*\n[ \t]*$", "", joined)
                if _ends_cjk(before) and re.match(CJK_OR_DASH_CLASS, (joined.lstrip(" \t\n") or after)[:1] or " "):
                    joined = re.sub(r"^[ \t]*\n[ \t]*", "", joined)
                if joined != str(text):
                    texts[index] = _replace_text(text, joined)


def _ends_cjk(text: str) -> bool:
    return bool(text) and re.match(CJK_OR_DASH_CLASS, text[-1]) is not None


def _replace_text(text: nodes.Text, value: str) -> nodes.Text:
    """Put a new Text in place of ``text`` (found by identity: Text nodes compare equal by their string)."""
    parent = text.parent
    position = next(i for i, child in enumerate(parent.children) if child is text)
    replacement = nodes.Text(value)
    parent.children[position] = replacement
    replacement.parent = parent
    return replacement


def _inside(node: nodes.Node, kinds: tuple) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, kinds):
            return True
        parent = parent.parent
    return False


# --- the written page ----------------------------------------------------------------------------------------------
FONTAWESOME_JS = re.compile(r'[ \t]*<script src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>\n?')
SIDEBAR_EXPANDER = re.compile(r'(<a class="[^"]*\breference internal\b[^"]*" href="[^"]*">(.*?)</a>)<details(?P<open>[^>]*)><summary>')
SEARCH_FIELD = re.compile(r'(<button class="btn search-button-field[^"]*" title="Search") aria-label="Search"')
MODE_ICON_TITLE = re.compile(r'(<i class="theme-switch [^"]*" data-mode="\w+")\s+title="[^"]*"')
TABLE = re.compile(r"<table\b.*?</table>", re.DOTALL)
HTML_LANG = re.compile(r'<html lang="[^"]*"')
# Where Japanese runs are not wrapped: scripts, styles, and elements that may hold only text.
RAW_ELEMENTS = re.compile(r"<(script|style|title|textarea|option)\b.*?</\1>", re.DOTALL | re.IGNORECASE)


def table_label(table: str, japanese: bool) -> str:
    """A name for a table's scroll box: its caption, else its column headings."""
    caption = re.search(r"<caption\b[^>]*>(.*?)</caption>", table, re.DOTALL)
    text = caption.group(1) if caption else " · ".join(re.findall(r"<th\b[^>]*>(.*?)</th>", table, re.DOTALL)[:4])
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text))).strip(" ·#¶")
    prefix = "表" if japanese else "Table"
    return f"{prefix}: {text}" if text else prefix


def boxed_tables(body: str, japanese: bool) -> str:
    """Put every table in its own labelled scroll box (role region, focusable, so a keyboard can scroll it)."""
    def box(match: re.Match) -> str:
        label = html.escape(table_label(match.group(0), japanese), quote=True)
        return f'<div class="course-table-scroll" role="region" tabindex="0" aria-label="{label}">{match.group(0)}</div>'

    return TABLE.sub(box, body)


def mark_japanese(page: str) -> str:
    """Wrap each run of Japanese text outside tags (and outside scripts and text-only elements) in a lang span."""
    def in_text(segment: str) -> str:
        parts = re.split(r"(<[^>]*>)", segment)
        return "".join(part if part.startswith("<") else CJK_RUN.sub(lambda m: f'<span lang="ja">{m.group(0)}</span>', part)
                       for part in parts)

    out, last = [], 0
    for raw in RAW_ELEMENTS.finditer(page):
        out += [in_text(page[last:raw.start()]), raw.group(0)]
        last = raw.end()
    out.append(in_text(page[last:]))
    return "".join(out)


def name_sidebar_expanders(page: str, japanese: bool) -> str:
    def named(match: re.Match) -> str:
        section = html.unescape(re.sub(r"<[^>]+>", "", match.group(2))).strip()
        label = f"{section} のページを表示" if japanese else f"Show the pages of {section}"
        return f'{match.group(1)}<details{match.group("open")}><summary aria-label="{html.escape(label, quote=True)}">'

    return SIDEBAR_EXPANDER.sub(named, page)


def finish_page(page: str, japanese: bool) -> str:
    """Everything this extension changes in one written page (idempotent: a second pass changes nothing)."""
    if 'class="course-table-scroll"' in page:
        return page
    page = FONTAWESOME_JS.sub("", page)
    page = SEARCH_FIELD.sub(r"\1", page)
    page = MODE_ICON_TITLE.sub(r'\1 aria-hidden="true"', page)
    page = name_sidebar_expanders(page, japanese)
    page = boxed_tables(page, japanese)
    if japanese:
        return HTML_LANG.sub('<html lang="ja"', page, count=1)
    return mark_japanese(page)


def finish_pages(app, exception) -> None:
    """After the build, finish every page (the theme's template writes the chrome, so it is changed here)."""
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    for path in out.rglob("*.html"):
        relative = path.relative_to(out).as_posix()
        if relative.startswith(("_static/", "_sources/", "_images/")):
            continue
        page = path.read_text(encoding="utf-8")
        finished = finish_page(page, relative.startswith(JAPANESE_PAGES))
        if finished != page:
            path.write_text(finished, encoding="utf-8")


def setup(app):
    app.add_transform(JoinJapaneseLines)
    app.connect("build-finished", finish_pages)
    app.add_js_file("course-a11y.js", priority=900, defer="defer")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
