"""Lessons as slides: slide metadata added without touching sources or outputs, and a deck with a live widget
rendering in JupyterLab (jupyterlab-slideshow) in headless Chromium."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from browser import chromium, require_chromium

from attention_course.tools import slides

ROOT = Path(__file__).resolve().parent.parent
MARKED = [f"{n:02d}" for n in range(11)]  # every lesson carries slide metadata


def cells_without_slides(path: Path) -> list[dict]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        cell.get("metadata", {}).pop("slideshow", None)
    return notebook["cells"]


@pytest.mark.parametrize("lesson", sorted((ROOT / "notebooks").glob("*.ipynb"))[:3], ids=lambda p: p.stem)
def test_marking_touches_only_slide_metadata_and_is_idempotent(tmp_path, lesson):
    copy = tmp_path / lesson.name
    shutil.copy(lesson, copy)
    slides.mark_slides(copy)
    assert cells_without_slides(copy) == cells_without_slides(lesson)  # sources, outputs, ids, other metadata
    once = copy.read_bytes()
    assert slides.mark_slides(copy) == 0 and copy.read_bytes() == once
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nbformat.read(copy, as_version=4).cells]
    assert kinds[0] == "slide" and kinds.count("slide") >= 2 and set(kinds) <= {"slide", "subslide", None}


def test_slide_rules():
    notebook = {"cells": [
        {"cell_type": "markdown", "source": "# Title"}, {"cell_type": "code", "source": "x = 1"},
        {"cell_type": "markdown", "source": ["## Section\n", "text"]}, {"cell_type": "markdown", "source": "prose"},
        {"cell_type": "code", "source": "a"}, {"cell_type": "code", "source": "b"}, {"cell_type": "raw", "source": ""},
    ]}
    assert slides.slide_types(notebook) == ["slide", None, "slide", "subslide", None, "subslide", None]


def test_marking_keeps_an_authors_fragments_and_drops_stale_types(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("a"), nbformat.v4.new_code_cell("b")]
    notebook.cells[1].metadata["slideshow"] = {"slide_type": "-"}
    notebook.cells[2].metadata["slideshow"] = {"slide_type": "fragment"}
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    assert slides.mark_slides(path) == 3
    kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nbformat.read(path, as_version=4).cells]
    assert kinds == ["slide", None, "subslide"]


@pytest.mark.parametrize("number", MARKED)
def test_lessons_are_marked_as_slides(number):
    """The stored lessons carry the metadata (run `attention-course classroom slides notebooks/NN_*.ipynb`)."""
    (path,) = (ROOT / "notebooks").glob(f"{number}_*.ipynb")
    notebook = json.loads(path.read_text(encoding="utf-8"))
    present = [c.get("metadata", {}).get("slideshow", {}).get("slide_type") for c in notebook["cells"]]
    for wanted, found in zip(slides.slide_types(notebook), present, strict=True):
        assert found == wanted if wanted else found not in slides.OWNED


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_command(page, command: str) -> None:
    """Start a JupyterLab command without waiting for its promise (some settle only when the command ends)."""
    page.evaluate(f"() => {{ window.jupyterapp.commands.execute({command!r}); return true; }}")


@pytest.mark.slow
def test_a_deck_renders_a_live_widget_in_jupyterlab(tmp_path):
    require_chromium()  # before starting JupyterLab

    deck = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    deck.cells = [nbformat.v4.new_markdown_cell("# A deck with a live widget"),
                  nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider(value=7, description='live')"),
                  nbformat.v4.new_markdown_cell("## The next slide")]
    nbformat.write(deck, tmp_path / "deck.ipynb")
    slides.mark_slides(tmp_path / "deck.ipynb")
    token, port = secrets.token_hex(16), free_port()
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = open(tmp_path / "lab.log", "wb")
    lab = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
         "--LabApp.expose_app_in_browser=True"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert lab.poll() is None and time.monotonic() < deadline, (tmp_path / "lab.log").read_text()[-2000:]
                time.sleep(0.5)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(90_000)
            page.goto(f"http://127.0.0.1:{port}/lab/tree/deck.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            page.wait_for_function("window.jupyterapp && window.jupyterapp.commands.hasCommand('deck:start')", timeout=60_000)
            page.wait_for_function(  # the kernel (the course environment's) is up
                "window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'")
            run_command(page, "notebook:run-all-cells")
            page.wait_for_selector(".jp-OutputArea .widget-slider", state="attached")
            page.evaluate("() => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = 0; return true; }")
            run_command(page, "deck:start")
            page.wait_for_selector(".jp-Deck", state="attached", timeout=30_000)
            slider = page.wait_for_selector(".jp-Deck .widget-slider", state="visible", timeout=30_000)
            assert "live" in slider.inner_text()  # the widget's own label: a live view, not its text fallback
            assert page.locator(".jp-Deck .widget-slider .noUi-handle, .jp-Deck .widget-slider input").count() > 0
    finally:
        os.killpg(lab.pid, signal.SIGTERM)  # the lab and the kernel it started (its own session)
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
        log.close()
