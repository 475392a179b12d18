"""Sphinx extension of the course website (loaded through ``local_extensions`` in book/_config.yml).

What Jupyter Book 1 does not do for this course, and what its defaults get wrong offline:
- serves one stylesheet (static/course.css): nothing scrolls the page sideways on a phone, code wraps, print
  keeps every line;
- drops sphinx-thebe's scripts (the course has no live kernels; they were also added twice per page, an error);
- tells the ipywidgets manager where its fonts are (it otherwise asks for them beside each page);
- gives the theme a valid colour mode before the reader picks one (the theme logs an error otherwise);
- titles solution pages as solutions and links each to its exercise notebook;
- turns every mention of a notebook in the book, such as ``exercises/01_recurrence_to_attention.ipynb``,
  into a link to its page;
- hides the test runner's ``# NBVAL_...`` marker lines in code cells (the notebooks keep them);
- adds the ``{repository}`` role: a link to ``repository.url`` of the book config;
- links every figure to its image file, so a phone reader can open it at full size and zoom, and on a narrow
  screen shows each figure at no less than 1/1.6 of its drawn size, scrolling in its own box (shrunk further,
  tick labels drawn at 10 pt fall below reading size).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform

STATIC = Path(__file__).parent / "static"
NOTEBOOK_MENTION = re.compile(r"^(?:\.\./|\./)?((?:notebooks|exercises|solutions)/[\w.-]+)\.ipynb$")
NBVAL_LINE = re.compile(r"^[ \t]*# NBVAL_[A-Z_]+[ \t]*(?:\n|$)", re.MULTILINE)
# The widget manager loads its fonts from window.__jupyter_widgets_assets_path__ (else from beside the page).
WIDGET_ASSETS = ("window.__jupyter_widgets_assets_path__ = new URL("
                 "(document.documentElement.dataset.content_root || '') + '_static/offline/html-manager/', "
                 "document.baseURI).href;")


class SolutionTitle(SphinxTransform):
    """A page under solutions/ whose title starts "Exercises" is titled "Solutions" and links its exercises."""

    default_priority = 200

    def apply(self, **kwargs) -> None:
        docname = self.env.docname
        if not docname.startswith("solutions/"):
            return
        section = next(iter(self.document.findall(nodes.section)), None)
        if section is None or not section.children or not isinstance(section[0], nodes.title):
            return
        title = section[0]
        first = title[0] if len(title) else None
        japanese = self.config.language == "ja"  # the Japanese site (its titles come translated from book/locales)
        for exercises, solutions in (("Exercises", "Solutions"), ("演習", "解答")):  # a title not translated yet too
            if isinstance(first, nodes.Text) and first.astext().startswith(exercises):
                title.replace(first, nodes.Text(solutions + first.astext()[len(exercises):]))
        exercise = "exercises/" + docname.split("/", 1)[1] + ".ipynb"
        note = nodes.paragraph()
        note += nodes.Text("解答例です。すべてのチェックに合格します。先に演習に取り組んでください：" if japanese else
                           "Worked solutions, every check passing. Try the exercises first: ")
        note += nodes.literal(exercise, exercise)
        note += nodes.Text("" if japanese else ".")
        section.insert(1, note)


def link_notebook_mentions(app, doctree, docname) -> None:
    """Replace ``folder/name.ipynb`` literals with links to that notebook's page, where the book has one."""
    for literal in list(doctree.findall(nodes.literal)):
        if isinstance(literal.parent, nodes.reference):
            continue
        match = NOTEBOOK_MENTION.match(literal.astext().strip())
        if not match or match.group(1) not in app.env.found_docs or match.group(1) == docname:
            continue
        uri = app.builder.get_relative_uri(docname, match.group(1))
        reference = nodes.reference("", "", internal=True, refuri=uri)
        literal.replace_self(reference)
        reference += literal


def strip_test_markers(app, doctree, docname) -> None:
    """Drop ``# NBVAL_...`` lines from code cells (test-runner markers mean nothing to a reader)."""
    for block in doctree.findall(nodes.literal_block):
        parent = block.parent
        if not (isinstance(parent, nodes.container) and "cell_input" in parent.get("classes", [])):
            continue
        text = block.astext()
        if "NBVAL_" not in text:
            continue
        text = NBVAL_LINE.sub("", text)
        block.rawsource = text
        block.children = []
        block += nodes.Text(text)


def repository_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{repository}`text``` links to the book config's repository.url (the URL is the text when text is "url")."""
    config = inliner.document.settings.env.config
    url = (config.html_theme_options or {}).get("repository_url") or ""
    if not url:
        message = inliner.reporter.error("set repository.url in book/_config.yml", line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    label = url if text.strip() in ("", "url") else text
    return [nodes.reference(rawtext, label, refuri=url)], []


def drop_thebe(app, pagename, templatename, context, doctree) -> None:
    """Remove sphinx-thebe's scripts and style (no live kernels here; they loaded twice and from a CDN)."""
    scripts = context.get("script_files")
    if scripts is not None:
        scripts[:] = [js for js in scripts
                      if "thebe" not in str(getattr(js, "filename", "") or "")
                      and "THEBE" not in str(getattr(js, "attributes", {}).get("body", ""))]
    styles = context.get("css_files")
    if styles is not None:
        styles[:] = [css for css in styles if "thebe" not in str(getattr(css, "filename", "") or "")]


# The widget manager typesets with MathJax 2's ``MathJax.Hub.Queue`` whenever a MathJax is on the page; the site
# serves MathJax 3, which has no Hub, so pages with both math and widgets threw "reading 'Queue'". Whatever object
# becomes ``window.MathJax`` (MathJax 3 replaces its config object when it loads) gets a Hub that hands the
# element to MathJax 3's typesetPromise.
MATHJAX2_BRIDGE = """(function () {
  var current = window.MathJax;
  function withHub(m) {
    if (m && typeof m === "object" && !m.Hub) {
      m.Hub = {Queue: function (job) {
        var element = job && job[2];
        if (current && current.typesetPromise) { current.typesetPromise(element ? [element] : undefined).catch(function () {}); }
      }};
    }
    return m;
  }
  current = withHub(current);
  Object.defineProperty(window, "MathJax", {configurable: true, get: function () { return current; },
                                            set: function (value) { current = withHub(value); }});
})();"""


def point_widgets_at_their_files(app, pagename, templatename, context, doctree) -> None:
    """On pages with saved widgets, tell require.js where the widget modules live.

    The widget modules find their fonts beside their own module URL; named inline, they would otherwise
    resolve beside the page (``notebooks/@jupyter-widgets/...``, a 404 for every font).
    """
    scripts = context.get("script_files") or []
    if not any(str(getattr(js, "filename", "") or "").endswith("offline/require.js") for js in scripts):
        return
    folder = context.get("content_root", "") + "_static/offline/html-manager"
    paths = {"@jupyter-widgets/html-manager/dist": folder, "@jupyter-widgets": folder}
    # A global `require` object defined before require.js loads is its configuration.
    app.add_js_file(None, body=f"var require = {{paths: {json.dumps(paths)}}};", priority=100)
    app.add_js_file(None, body=MATHJAX2_BRIDGE, priority=100)


FULL_SIZE_TITLE = {"en": "Open the figure at full size", "ja": "図を元の大きさで開く"}
# An image not already inside a link (Sphinx links scaled images itself), with the file it shows.
UNLINKED_IMAGE = re.compile(r'(<a\b[^>]*>\s*)?(<img\b[^>]*\bsrc="([^"]+\.(?:png|jpe?g|gif|svg))"[^>]*>)')


def link_figures_to_full_size(app, pagename, templatename, context, doctree) -> None:
    """Wrap each image of the page body in a link to its file: shrunk to a phone's width, tick labels are too small
    to read, and the file opens at the size it was drawn."""
    title = FULL_SIZE_TITLE.get(app.config.language, FULL_SIZE_TITLE["en"])

    def wrap(match: re.Match) -> str:
        if match.group(1):
            return match.group(0)
        return f'<a class="full-size-figure" href="{match.group(3)}" title="{title}">{match.group(2)}</a>'

    if "body" in context:
        context["body"] = UNLINKED_IMAGE.sub(wrap, context["body"])


# The same limit as the desktop check in tests/test_book.py: matplotlib draws 10 pt labels 14 px high.
FIGURE_SHRINK_LIMIT = 1.6
# Figures: a notebook output's, or any image of the page linked to its file (the book's own figures too).
FIGURES = ".bd-article div.cell_output img, .bd-article a.full-size-figure img"
FIT_FIGURES = (  # an image wider than its box then scrolls in it; images a widget draws later are fitted as they load
    f"(() => {{ const fit = (img) => {{ if (img.naturalWidth && img.matches('{FIGURES}')) "
    f"img.style.minWidth = Math.ceil(img.naturalWidth / {FIGURE_SHRINK_LIMIT}) + 'px'; }}; "
    "document.addEventListener('load', (event) => { if (event.target.tagName === 'IMG') fit(event.target); }, true); "
    f"window.addEventListener('load', () => document.querySelectorAll('{FIGURES}').forEach(fit)); "
    "})();")


def configure(app, config) -> None:
    config.html_static_path.append(str(STATIC))
    # With no mode stored yet the theme reads "" and logs an error; start where it would end up: auto.
    config.html_context.setdefault("default_mode", "auto")


def setup(app):
    app.connect("config-inited", configure)
    app.add_transform(SolutionTitle)
    app.add_role("repository", repository_role)
    app.connect("doctree-resolved", strip_test_markers)
    app.connect("doctree-resolved", link_notebook_mentions)
    app.connect("html-page-context", drop_thebe, priority=900)
    app.connect("html-page-context", point_widgets_at_their_files, priority=900)
    app.connect("html-page-context", link_figures_to_full_size, priority=900)
    app.add_css_file("course.css", priority=900)
    app.add_js_file(None, body=WIDGET_ASSETS, priority=100)
    app.add_js_file(None, body=FIT_FIGURES, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
