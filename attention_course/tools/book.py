"""Build the course website (Jupyter Book 1) from the repository, entirely offline.

The book's sources are staged into ``_build/book-source``: the pages in book/, the notebooks, exercises
and solutions, and the scripts that pages would otherwise load from CDNs (MathJax, require.js, the
ipywidgets HTML manager), taken from the npm packages that ``make setup`` installs in book/offline.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from ..course import course

ROOT = course().root
NODE_MODULES = course().node_modules
CONTENT_FOLDERS = ("notebooks", "exercises", "solutions")
BOOK_SKIP = ("offline", "_build", "__pycache__", ".ipynb_checkpoints")
COURSE_ARCHIVE = "attention-in-parallel.zip"
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


def stage(source: Path) -> Path:
    """Assemble the book's source folder and return it."""
    if source.exists():
        shutil.rmtree(source)
    # Every page, folder of pages, image and the site's extension (book/_ext); not the npm folder or old builds.
    shutil.copytree(ROOT / "book", source, ignore=shutil.ignore_patterns(*BOOK_SKIP))
    for folder in CONTENT_FOLDERS:
        (source / folder).mkdir(exist_ok=True)
        for notebook in sorted((ROOT / folder).glob("*.ipynb")):
            shutil.copy2(notebook, source / folder / notebook.name)
    stage_offline_assets(source / "_offline")
    stage_course_archive(source / COURSE_ARCHIVE)
    return source


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


def build(output: Path | None = None, strict: bool = True) -> Path:
    """Stage and build the HTML site; return the folder holding index.html."""
    output = output or ROOT / "_build"
    source = stage(output / "book-source")
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(source), "--path-output", str(output / "site"),
               "--builder", "html"]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    subprocess.run(command, check=True)
    return output / "site" / "_build" / "html"


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
