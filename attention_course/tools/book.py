"""Build the course website (Jupyter Book 1) from the repository, entirely offline.

The book's sources are staged into ``_build/book-source``: the pages in book/, the notebooks, exercises
and solutions, and the scripts that pages would otherwise load from CDNs (MathJax, require.js, the
ipywidgets HTML manager), taken from the npm packages that ``make setup`` installs in book/offline.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from ..core.course import course
from .widget_state import WIDGET_STATE, WIDGET_VIEW, widget_tree

ROOT = course().root
NODE_MODULES = course().node_modules
CONTENT_FOLDERS = ("notebooks", "exercises", "solutions")
BOOK_SKIP = ("offline", "_build", "__pycache__", ".ipynb_checkpoints")
COURSE_ARCHIVE = "attention-in-parallel.zip"
LANGUAGES = ("en", "ja")
JAPANESE_SITE = "ja"  # the Japanese site's folder inside the English one
ARCHIVE_PATHS = ("README.md", "LICENSE", "Makefile", "pyproject.toml", "requirements.txt", "requirements-nodeps.txt",
                 "attention_course", "notebooks", "exercises", "solutions", "results", "tests", "book")


def _copy_tree(source: Path, target: Path, ignore: tuple[str, ...] = ("*.map",)) -> None:
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing: run `make setup` (it installs book/offline with npm)")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*ignore), dirs_exist_ok=True)


def stage_offline_assets(static: Path) -> None:
    """Copy MathJax, require.js and the widget manager under ``static/offline`` (served as _static/offline)."""
    offline = static / "offline"
    mathjax = NODE_MODULES / "mathjax" / "es5"
    for part in ("input", "output", "ui", "a11y", "adaptors"):  # what tex-mml-chtml.js may load lazily
        _copy_tree(mathjax / part, offline / "mathjax" / part, ignore=("*.map", "svg", "svg.js"))
    shutil.copy2(mathjax / "tex-mml-chtml.js", offline / "mathjax" / "tex-mml-chtml.js")
    _copy_tree(NODE_MODULES / "@jupyter-widgets" / "html-manager" / "dist", offline / "html-manager")
    shutil.copy2(NODE_MODULES / "requirejs" / "require.js", offline / "require.js")


def stage(source: Path, language: str = "en") -> Path:
    """Assemble the book's source folder for one language ("en" or "ja") and return it.

    The Japanese book is the same source: Sphinx reads its prose from book/locales (gettext catalogs) and the
    code and outputs from the English notebooks. Files that code writes in both languages (lesson 10's memo and
    cost table: ``memo.md`` and ``memo.ja.md``) are the one exception to the catalogs: the Japanese build includes
    the Japanese file in place of the English one (book/_ext/bilingual_site.py keeps them out of the catalogs),
    and a figure's Japanese (``poc_candidates.ja.png``) is found by Sphinx's ``figure_language_filename``."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    if source.exists():
        shutil.rmtree(source)
    # Every page, folder of pages, image and the site's extension (book/_ext); not the npm folder or old builds.
    shutil.copytree(ROOT / "book", source, ignore=shutil.ignore_patterns(*BOOK_SKIP))
    if language != "en":
        for localised in sorted(source.rglob(f"*.{language}.md")):
            shutil.copy2(localised, localised.with_name(localised.name.replace(f".{language}.md", ".md")))
        config = (source / "_config.yml").read_text(encoding="utf-8")
        japanese = '  config:\n    language: "ja"\n    course_site_language: "ja"\n'
        config = config.replace("  config:\n", japanese, 1)
        (source / "_config.yml").write_text(config, encoding="utf-8")
    for folder in CONTENT_FOLDERS:
        (source / folder).mkdir(exist_ok=True)
        for notebook in sorted((ROOT / folder).glob("*.ipynb")):
            stage_notebook(notebook, source / folder / notebook.name, language)
    stage_offline_assets(source / "_offline")
    stage_course_archive(source / COURSE_ARCHIVE)
    return source


# --- Saved widgets on a static page -----------------------------------------------------------------------------
# A page with saved widgets loads the 3.6 MB widget manager. Progress bars need none of it: they become plain HTML
# (a <progress> element; a bar tqdm hid when it finished is dropped). Widgets whose controls only Python can
# answer say so on the page and are shown disabled; widgets wired in the browser (jslink) stay live.
PROGRESS_PARTS = {"HTMLModel", "FloatProgressModel", "IntProgressModel"}
CONTROLS = re.compile(r"(Dropdown|Textarea|Text|Slider|LogSlider|RangeSlider|Checkbox|Button|ToggleButtons?|RadioButtons|"
                      r"Select|SelectMultiple|SelectionSlider|Play|Combobox|ColorPicker|DatePicker|BoundedFloatText|"
                      r"BoundedIntText|FloatText|IntText)Model$")
MODEL_REF = re.compile(r"IPY_MODEL_([0-9a-f]+)")
NEEDS_KERNEL_NOTES = {"ja": ("このウィジェットは Python のカーネルが動いているときに使えます。"
                             "このページでは、ページを作成したときに保存した状態を表示しており、操作部品は無効にしてあります。"
                             "使うには JupyterLab でノートブックを開いてください"
                             "（<code>make lab</code>）。")}
NEEDS_KERNEL_NOTE = ("This widget needs a running Python kernel: here it shows the state saved when the page was built, "
                     "and its controls are switched off. Open the notebook in JupyterLab (<code>make lab</code>) to use it.")


def _hidden(state: dict, model: dict) -> bool:
    layout = state.get(MODEL_REF.sub(r"\1", model["state"].get("layout", "")), {}).get("state", {})
    return layout.get("visibility") == "hidden" or layout.get("display") == "none"


def progress_html(state: dict, model_id: str) -> str | None:
    """Static HTML for a saved progress bar (an HBox of labels and one progress bar): "" if it was hidden, None if
    the widget is something else."""
    box = state.get(model_id, {})
    children = [MODEL_REF.sub(r"\1", child) for child in box.get("state", {}).get("children", [])]
    parts = [state.get(child, {}) for child in children]
    kinds = [part.get("model_name") for part in parts]
    if box.get("model_name") != "HBoxModel" or not set(kinds) <= PROGRESS_PARTS or \
            sum(kind.endswith("ProgressModel") for kind in kinds) != 1:
        return None
    if _hidden(state, box):
        return ""
    pieces, label = [], ""
    for part in parts:
        values = part["state"]
        if part["model_name"] == "HTMLModel":
            pieces.append(f'<span class="course-progress__text">{values.get("value", "")}</span>')
            text = html.unescape(re.sub(r"<[^>]+>", "", values.get("value", ""))).replace("\u2007", " ")
            label = label or text.split(":")[0].strip()  # tqdm writes "description: 42%"
        else:
            value, top = float(values.get("value", 0)), float(values.get("max", 100)) or 1.0
            style = values.get("bar_style") or "info"
            pieces.append(f'<progress class="course-progress__bar course-progress--{html.escape(style)}" '
                          f'value="{value:g}" max="{top:g}" aria-label="{html.escape(label or "progress", quote=True)}">'
                          f'{100 * value / top:.0f}%</progress>')
    return f'<div class="course-progress">{"".join(pieces)}</div>'


def _kernel_bound_controls(state: dict, tree: set[str]) -> list[str]:
    """Controls in a widget tree whose changes no browser-side link (jslink) answers: they need Python."""
    linked = {MODEL_REF.sub(r"\1", model["state"]["source"][0]) for model in state.values()
              if model.get("model_name") in ("LinkModel", "DirectionalLinkModel")}
    return [model_id for model_id in tree if CONTROLS.search(state[model_id].get("model_name", "")) and model_id not in linked]


def prepare_widgets(notebook: dict, language: str = "en") -> dict:
    """Freeze progress bars into HTML, mark and switch off kernel-bound widgets, and drop the saved widget state
    when no widget is left (then the page loads no widget manager). Returns the notebook, changed in place."""
    state = notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    kept = set()
    for cell in notebook.get("cells", []):
        outputs = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                outputs.append(output)
                continue
            static = progress_html(state, view["model_id"])
            if static is not None:
                if static:
                    outputs.append({"output_type": "display_data", "metadata": {},
                                    "data": {"text/html": static, "text/plain": output["data"].get("text/plain", "")}})
                continue
            tree = widget_tree(state, [view["model_id"]])
            if (controls := _kernel_bound_controls(state, tree)):
                for control in controls:
                    state[control]["state"]["disabled"] = True
                note = NEEDS_KERNEL_NOTES.get(language, NEEDS_KERNEL_NOTE)
                outputs.append({"output_type": "display_data", "metadata": {},
                                "data": {"text/html": f'<p class="widget-needs-kernel" role="note">{note}</p>'}})
            alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
            if alt:  # the site's script names the widget's images with it (a widget's <img> has no alt of its own)
                outputs.append({"output_type": "display_data", "metadata": {},
                                "data": {"text/html": f'<div class="widget-alt" hidden data-alt="{html.escape(alt, quote=True)}"></div>'}})
            kept |= tree
            outputs.append(output)
        if "outputs" in cell:
            cell["outputs"] = outputs
    if state:
        links = {model_id for model_id, model in state.items() if model.get("model_name") in ("LinkModel", "DirectionalLinkModel")
                 and MODEL_REF.sub(r"\1", model["state"]["source"][0]) in kept}
        for link in links:
            kept |= widget_tree(state, [link])
        if kept:
            notebook["metadata"]["widgets"][WIDGET_STATE]["state"] = {key: state[key] for key in state if key in kept}
        else:
            del notebook["metadata"]["widgets"]
    return notebook


def stage_notebook(notebook: Path, target: Path, language: str = "en") -> None:
    """Copy a notebook into the book's source, its saved widgets prepared for a static page; on the Japanese site,
    the figures ``japanese_figures`` draws again in Japanese take the place of the English ones (the others get a
    caption that translates their labels), the saved
    widgets and bertviz views speak Japanese (``widget_state.localise_widgets``), and so do the exercises' hint
    lines (``i18n.translate_code_cell``: the rest of each code cell is the English one)."""
    content = json.loads(notebook.read_text(encoding="utf-8"))
    if language == "ja":
        from .code_messages import CATALOGS, translate_code_cell, translations
        from .japanese_figures import caption_figures, replace_figures
        from .widget_state import localise_widgets

        replace_figures(f"{notebook.parent.name}/{notebook.stem}", content)
        caption_figures(f"{notebook.parent.name}/{notebook.stem}", content)
        localise_widgets(content, language)
        catalog = translations(CATALOGS / notebook.parent.name / f"{notebook.stem}.po")
        for cell in content["cells"]:
            if cell["cell_type"] == "code":
                cell["source"] = translate_code_cell(cell["source"], catalog)
    target.write_text(json.dumps(prepare_widgets(content, language), ensure_ascii=False, indent=1), encoding="utf-8")


def stage_course_archive(target: Path) -> Path:
    """Zip what a reader needs to run the course (the "Run it yourself" page offers it for download)."""
    skip = {"__pycache__", ".ipynb_checkpoints", "node_modules", "_build", ".pytest_cache"}
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ARCHIVE_PATHS:
            path = ROOT / name
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
            for file in files:
                relative = file.relative_to(ROOT)
                if skip.isdisjoint(relative.parts) and file.suffix != ".pyc":
                    archive.write(file, f"attention-in-parallel/{relative.as_posix()}")
    return target


def build_language(output: Path, language: str, strict: bool = True) -> Path:
    """Stage and build one language's HTML site; return the folder holding its index.html."""
    suffix = "" if language == "en" else f"-{language}"
    source = stage(output / f"book-source{suffix}", language)
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(source), "--path-output",
               str(output / f"site{suffix}"), "--builder", "html"]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    subprocess.run(command, check=True)
    return output / f"site{suffix}" / "_build" / "html"


def build(output: Path | None = None, strict: bool = True) -> Path:
    """Build the English site, and the Japanese one into its ``ja/`` folder; return the folder holding index.html."""
    output = output or ROOT / "_build"
    html_folder = build_language(output, "en", strict)
    japanese = build_language(output, "ja", strict)
    if (html_folder / JAPANESE_SITE).exists():
        shutil.rmtree(html_folder / JAPANESE_SITE)
    shutil.copytree(japanese, html_folder / JAPANESE_SITE)
    return html_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_course.tools.book", description=__doc__)
    parser.add_argument("command", choices=["build", "stage"])
    parser.add_argument("--output", type=Path, help="build folder (default: _build/)")
    parser.add_argument("--no-strict", action="store_true", help="don't turn warnings into errors")
    args = parser.parse_args(argv)
    if args.command == "stage":
        print(stage((args.output or ROOT / "_build") / "book-source"))
        return 0
    html = build(args.output, strict=not args.no_strict)
    print(f"The site is in {html}; open {html / 'index.html'} in a browser.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
