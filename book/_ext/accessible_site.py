"""Sphinx extension: the course website for every reader (WCAG 2.1 AA, checked by axe-core in tests/test_book.py).

What it fixes in Jupyter Book 1's output (loaded through ``local_extensions`` in book/_config.yml):
- Japanese: a line break inside a Japanese sentence of the source is not a space on the page (the source pages
  wrap long lines; Japanese puts no space between words), pages under ``ja/`` are ``lang="ja"``, and Japanese
  words on other pages sit in ``<span lang="ja">`` so a screen reader switches voice;
- the theme's chrome: every sidebar expander is named after the section it opens, the search button's name holds
  its visible text, the colour-mode button's icons add no hidden words to its name;
- weight: the theme's 1.5 MB fontawesome.js (it blocked drawing every page) is not loaded: the 16 icons the pages
  use are drawn inline as SVG at build (their shapes read from that same file), so neither the script nor the
  270 KB of icon fonts is downloaded; scripts in the head are deferred (they no longer hold back the first paint);
  the site's root is the home page itself rather than a redirect to it (one round trip less on a slow phone);
- every table scrolls in its own box, named for a screen reader and reachable by keyboard (static/course-a11y.js
  does the same for tables and scroll boxes that widgets draw later, and names the widgets' controls and images).
"""

from __future__ import annotations

import functools
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


def outside_raw_elements(page: str, change) -> str:
    """Apply ``change`` to the page outside scripts, styles and text-only elements (widget state and bertviz's
    scripts hold HTML as data: changing it there breaks them)."""
    out, last = [], 0
    for raw in RAW_ELEMENTS.finditer(page):
        out += [change(page[last:raw.start()]), raw.group(0)]
        last = raw.end()
    out.append(change(page[last:]))
    return "".join(out)


def mark_japanese(segment: str) -> str:
    """Wrap each run of Japanese text outside tags in a lang span."""
    parts = re.split(r"(<[^>]*>)", segment)
    return "".join(part if part.startswith("<") else CJK_RUN.sub(lambda m: f'<span lang="ja">{m.group(0)}</span>', part)
                   for part in parts)


def name_sidebar_expanders(page: str, japanese: bool) -> str:
    def named(match: re.Match) -> str:
        section = html.unescape(re.sub(r"<[^>]+>", "", match.group(2))).strip()
        label = f"{section} のページを表示" if japanese else f"Show the pages of {section}"
        return f'{match.group(1)}<details{match.group("open")}><summary aria-label="{html.escape(label, quote=True)}">'

    return SIDEBAR_EXPANDER.sub(named, page)


# --- icons: Font Awesome's shapes, inline -------------------------------------------------------------------------
ICON_ELEMENT = re.compile(r'<(i|span) class="([^"]*)"([^>]*)>\s*</\1>')
ICON_PACKS = {"fa-solid": "fas", "fas": "fas", "fa-regular": "far", "far": "far", "fa-brands": "fab", "fab": "fab"}
ICON_MODIFIERS = {"fa-lg", "fa-fw", "fa-xs", "fa-sm", "fa-xl", "fa-2x", "fa-3x"}


@functools.lru_cache(maxsize=1)
def _fontawesome_source() -> str:
    import pydata_sphinx_theme

    script = Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme" / "static" / "scripts" / "fontawesome.js"
    return script.read_text(encoding="utf-8")


@functools.cache
def icon_shape(pack: str, name: str) -> tuple[int, int, str] | None:
    """(width, height, SVG path) of a Font Awesome icon, from the theme's bundled fontawesome.js; None if absent.

    The bundle defines each pack as an object of ``name: [width, height, aliases, unicode, path]`` followed by the
    call that registers it under its prefix ("fab", "far", "fas")."""
    source = _fontawesome_source()
    calls = sorted((m.start(), m.group(1)) for m in re.finditer(r'\("(fa[brs])",', source))
    start = 0
    for position, prefix in calls:
        if prefix == pack:
            pattern = r'(?<![\w-])"?' + re.escape(name) + r'"?:\[(\d+),(\d+),\[[^\]]*\],"[0-9a-f]+","([^"]+)"\]'
            found = re.search(pattern, source[start:position])
            if found:
                return int(found.group(1)), int(found.group(2)), found.group(3)
        start = position
    return None


def inline_icons(segment: str) -> str:
    """Draw each Font Awesome ``<i class="fa-solid fa-bars">`` as an inline SVG of that icon (hidden from screen
    readers, as the icons are decoration beside a named control); an unknown icon is left to the web font."""
    def svg(match: re.Match) -> str:
        classes = match.group(2).split()
        pack = next((ICON_PACKS[c] for c in classes if c in ICON_PACKS), None)
        names = [c[3:] for c in classes if c.startswith("fa-") and c not in ICON_PACKS and c not in ICON_MODIFIERS]
        shape = next((shape for name in names if pack and (shape := icon_shape(pack, name))), None)
        if shape is None:
            return match.group(0)
        width, height, path = shape
        kept = " ".join(["svg-inline--fa", *(c for c in classes if c not in ICON_PACKS)])
        attributes = re.sub(r'\s*aria-hidden="[^"]*"', "", match.group(3))
        return (f'<svg class="{kept}"{attributes} aria-hidden="true" focusable="false" '
                f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"><path fill="currentColor" d="{path}"></path></svg>')

    return ICON_ELEMENT.sub(svg, segment)


# Scripts in the head that may wait until the page is parsed (order among them is kept); documentation_options.js
# stays (an inline script right after the head uses it). require.js and the widget manager are deferred too: UMD
# scripts (clipboard.js) must still run before require.js defines `define`, so the order must stay as written.
KEEP_BLOCKING = r"documentation_options"
BLOCKING_SCRIPT = re.compile(r'<script (?![^>]*\b(?:defer|async)\b)([^>]*\bsrc="(?![^"]*(?:' + KEEP_BLOCKING + r'))[^"]*"[^>]*)></script>')


def defer_scripts(page: str) -> str:
    head_end = page.find("</head>")
    return BLOCKING_SCRIPT.sub(r'<script defer="defer" \1></script>', page[:head_end]) + page[head_end:]


def finish_page(page: str, japanese: bool) -> str:
    """Everything this extension changes in one written page (idempotent: a second pass changes nothing)."""
    if 'class="course-table-scroll"' in page:
        return page
    page = defer_scripts(FONTAWESOME_JS.sub("", page))
    if japanese:
        page = HTML_LANG.sub('<html lang="ja"', page, count=1)

    def change(segment: str) -> str:
        segment = SEARCH_FIELD.sub(r"\1", segment)
        segment = MODE_ICON_TITLE.sub(r'\1 aria-hidden="true"', segment)
        segment = name_sidebar_expanders(segment, japanese)
        segment = boxed_tables(segment, japanese)
        segment = inline_icons(segment)
        return segment if japanese else mark_japanese(segment)

    return outside_raw_elements(page, change)


def finish_pages(app, exception) -> None:
    """After the build, finish every page (the theme's template writes the chrome, so it is changed here)."""
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    root = out / "index.html"
    redirect = re.fullmatch(r'<meta http-equiv="Refresh" content="0; url=([\w-]+\.html)" />\s*',
                            root.read_text(encoding="utf-8")) if root.exists() else None
    if redirect and (out / redirect.group(1)).exists():  # the root shows the home page (same folder, same links)
        home = (out / redirect.group(1)).read_text(encoding="utf-8")
        root.write_text(home.replace("<head>", f'<head>\n  <link rel="canonical" href="{redirect.group(1)}" />', 1),
                        encoding="utf-8")
    for path in out.rglob("*.html"):
        relative = path.relative_to(out).as_posix()
        if relative.startswith(("_static/", "_sources/", "_images/")):
            continue
        page = path.read_text(encoding="utf-8")
        japanese = app.config.language == "ja" or relative.startswith(JAPANESE_PAGES)  # the Japanese site, or its pages
        finished = finish_page(page, japanese)
        if finished != page:
            path.write_text(finished, encoding="utf-8")


def setup(app):
    app.add_transform(JoinJapaneseLines)
    app.connect("build-finished", finish_pages)
    app.add_js_file("course-a11y.js", priority=900, defer="defer")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
