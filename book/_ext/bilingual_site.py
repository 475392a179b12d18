"""The site in two languages from one source (a Sphinx extension; book/locales/README.md tells the whole story).

The English book is built as it is; the Japanese book is the same sources built with ``language = "ja"``, which
makes Sphinx read each paragraph's Japanese from book/locales (gettext catalogs), and is copied into the English
site's ``ja/`` folder by attention_course/tools/book.py. This extension
- puts a language switch on every page, in the header beside the page's buttons, that lands on the same page in
  the other language (the two builds have the same page names), and names the other page for search engines;
- on the Japanese site, marks every paragraph the catalogs do not translate yet as ``lang="en"`` (a screen reader
  then reads it with an English voice, and tests/test_i18n.py can find it); the page itself is ``lang="ja"``;
- keeps out of the catalogs what is written in each language: an included ``memo.md`` beside a ``memo.ja.md``
  (lesson 10's memo and cost table, which attention_course/proof/memo.py writes in both). The Japanese build
  includes the Japanese file in its place (attention_course/tools/book.py): its text is neither a message nor
  untranslated.
"""

from __future__ import annotations

import glob
import re
from functools import cache
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform
from sphinx.util.nodes import extract_messages

SWITCH_ANCHOR = '<div class="article-header-buttons">'
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
NOT_WORDS = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|\]\([^)]*\)|<[^>]+>|https?://\S+", re.DOTALL)  # math, code, links
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
OTHER = {  # this site's language: (the other language, its label, where its site lies from this site's root)
    "en": ("ja", "日本語", "ja/"),
    "ja": ("en", "English", "../"),
}


@cache
def written_in_each_language(source: str) -> bool:
    """Whether ``source`` is a file that code writes in each language: ``memo.md`` with a ``memo.ja.md`` beside it."""
    path = Path(source)
    return path.suffix == ".md" and any(path.parent.glob(f"{glob.escape(path.stem)}.*.md"))


class KeepGeneratedTextOutOfCatalogs(SphinxTransform):
    """Paragraphs included from a file written in each language (``{include} memo.md``) are not messages: the
    gettext builder leaves them out of the page's catalog, and on the Japanese site they are the Japanese file's."""

    default_priority = 15  # before Sphinx's Locale transform (20) looks for messages

    def apply(self, **kwargs) -> None:
        for node in self.document.findall(nodes.TextElement):
            if any(written_in_each_language(source) for source in _sources(node)):
                node["translatable"] = False


def _sources(node: nodes.Node):
    """The files a node and its ancestors within its section name as their source. An included table names the
    included file only on its table node (docutils gives the cells' text the page's own name as they are appended);
    sections are not followed, since the page's text after an included heading lies in the included section."""
    while node is not None and not isinstance(node, (nodes.section, nodes.document)):
        if node.source:
            yield node.source
        node = node.parent


class MarkUntranslated(SphinxTransform):
    """On the Japanese site, an untranslated paragraph (or heading, list item, cell) keeps its English words:
    mark it ``lang="en"`` (docutils writes a ``language-en`` class as that attribute)."""

    default_priority = 960  # after Sphinx's Locale (20) and translation progress classes (950)

    def apply(self, **kwargs) -> None:
        if self.config.course_site_language == "en" or getattr(self.app.builder, "format", "") != "html":
            return
        for node, message in list(extract_messages(self.document)):
            words = NOT_WORDS.sub(" ", message)  # as attention_course.tools.i18n.needs_translation
            if isinstance(node, nodes.math_block) or node.get("translated") or not LATIN_WORD.search(words):
                continue  # math reads the same in both languages
            if isinstance(node, nodes.image) and JAPANESE.search(node.get("alt", "")):
                continue  # its description was translated (Sphinx marks only text nodes as translated)
            if isinstance(node, nodes.caption) and JAPANESE.search(message):
                continue  # a figure's caption the Japanese build writes in Japanese (japanese_figures.CAPTIONS)
            if "language-en" not in node["classes"]:
                node["classes"].append("language-en")


# The theme's words that it ships no Japanese for (attribute values and a few visible words), on the Japanese site.
THEME_WORDS_JA = {
    '"Search this book..."': '"このサイトを検索…"',
    '"Color mode"': '"カラーモード"',
    '"Toggle primary sidebar"': '"ナビゲーションの表示を切り替え"',
    '"Toggle secondary sidebar"': '"ページ内の目次の表示を切り替え"',
    'aria-label="Main"': 'aria-label="メイン"',
    '"Link to this heading"': '"この見出しへのリンク"',
    'aria-label="Page"': 'aria-label="ページ"',
    # the search button's name must hold its visible text (axe: label-content-name-mismatch), as on the English site
    'title="検索" aria-label="検索"': 'title="検索"',
}


class TranslateTocCaptions(SphinxTransform):
    """Translate the captions of the table of contents on the Japanese site.

    Jupyter Book's table of contents (sphinx-external-toc) inserts its toctrees at priority 100, after Sphinx's
    Locale transform (20) has translated the page: the gettext builder still extracts the captions into the root
    page's catalog (book/locales/ja/LC_MESSAGES/intro.po), and this transform applies those translations."""

    default_priority = 110

    def apply(self, **kwargs) -> None:
        from sphinx.locale import init as init_locale
        from sphinx.util.i18n import docname_to_domain

        if self.config.course_site_language == "en" or not self.config.language:
            return
        toctrees = list(self.document.findall(addnodes.toctree))
        if not any(toctree.get("caption") for toctree in toctrees):
            return
        directories = [str(Path(self.env.srcdir) / folder) for folder in self.config.locale_dirs]
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        catalog, found = init_locale(directories, self.config.language, domain)
        if not found:
            return
        for toctree in toctrees:
            caption = toctree.get("caption")
            if caption and catalog.gettext(caption) != caption:
                toctree["caption"] = toctree["rawcaption"] = catalog.gettext(caption)


def switch_html(relative: str, language: str) -> tuple[str, str]:
    """(the link in the header, the alternate link for the head) for the page at ``relative`` of this site."""
    other, label, root = OTHER[language]
    up = "../" * relative.count("/")
    href = f"{up}{root}{relative}"
    # the label is marked with its own language (the English site marks every Japanese word so)
    link = (f'<a class="btn btn-sm course-language-switch" href="{href}" hreflang="{other}" title="{label}" lang="{other}">'
            f'<span lang="{other}">{label}</span></a>')
    return link, f'<link rel="alternate" hreflang="{other}" href="{href}" />'


def add_language_switch(app, exception) -> None:
    """After the build (and the home page's finishing), a language switch on every page."""
    if exception is not None or app.builder.format != "html":
        return
    out, language = Path(app.outdir), app.config.course_site_language
    for path in out.rglob("*.html"):
        relative = path.relative_to(out).as_posix()
        if relative.startswith(("_static/", "_sources/", "_images/", "_downloads/")):
            continue
        page = path.read_text(encoding="utf-8")
        if "course-language-switch" in page or page.startswith('<meta http-equiv="Refresh"') or SWITCH_ANCHOR not in page:
            continue
        link, alternate = switch_html(relative, language)
        if language == "ja":
            for english, japanese in THEME_WORDS_JA.items():
                page = page.replace(english, japanese)
        page = page.replace(SWITCH_ANCHOR, SWITCH_ANCHOR + "\n" + link, 1).replace("</head>", f"  {alternate}\n</head>", 1)
        path.write_text(page, encoding="utf-8")


def setup(app):
    app.add_config_value("course_site_language", "en", "env", types=[str])
    app.add_transform(KeepGeneratedTextOutOfCatalogs)
    app.add_transform(MarkUntranslated)
    app.add_transform(TranslateTocCaptions)
    app.connect("build-finished", add_language_switch, priority=600)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
