"""Lessons open as a learner expects before anything runs: saved widget state is complete, and in JupyterLab
(headless Chromium) a trusted lesson 06 shows its attention views and its explorer from the stored outputs."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_FLAGS, require_chromium

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"


def _shown_models(notebook: dict) -> set[str]:
    return {output["data"][VIEW]["model_id"] for cell in notebook["cells"] for output in cell.get("outputs", [])
            if VIEW in output.get("data", {}) and output["data"][VIEW].get("model_id")}


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_saved_widget_state_holds_every_model_the_outputs_show(lesson):
    notebook = json.loads(lesson.read_text(encoding="utf-8"))
    shown = _shown_models(notebook)
    if not shown:
        return
    saved = notebook["metadata"].get("widgets", {}).get(STATE)
    assert saved, f"{lesson.name}: widgets are shown but no widget state is saved (execute with store_widget_state)"
    state = saved["state"]
    assert shown <= state.keys(), f"{lesson.name}: shown but not saved: {shown - state.keys()}"
    referenced = set(re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(state)))
    assert referenced <= state.keys(), f"{lesson.name}: models refer to unsaved models {referenced - state.keys()}"
    modules = {(m["model_module"], m["model_module_version"]) for m in state.values()}
    assert modules <= {("@jupyter-widgets/controls", "2.0.0"), ("@jupyter-widgets/base", "2.0.0"),
                       ("@jupyter-widgets/output", "1.0.0")}, modules  # what ipywidgets 8's JupyterLab manager loads


def _installed_kernel() -> dict:
    """The kernel `make setup` installs (its `ipykernel install` line), as a notebook's kernelspec names it."""
    line = next(line for line in (ROOT / "Makefile").read_text().splitlines() if "ipykernel install" in line)
    name, display = re.search(r'--name (\S+) --display-name "([^"]+)"', line).groups()
    return {"display_name": display, "language": "python", "name": name}


@pytest.mark.parametrize("notebook", sorted(ROOT.glob("notebooks/*.ipynb")) + sorted(ROOT.glob("solutions/*.ipynb"))
                         + sorted(ROOT.glob("exercises/*.ipynb")) + sorted(ROOT.glob("classroom/**/*.ipynb")),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebooks_name_the_kernel_setup_installs(notebook):
    """JupyterLab writes the running kernel's name into a notebook it opens: a different name there marks the
    learner's untouched notebook as modified (and asks to save it on closing)."""
    spec = json.loads(notebook.read_text(encoding="utf-8"))["metadata"].get("kernelspec")
    assert spec == _installed_kernel(), f"{notebook.name}: kernelspec {spec}, setup installs {_installed_kernel()}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_trusted_lesson_06_opens_with_its_views_and_explorer_drawn(tmp_path):
    require_chromium()
    from nbformat import read
    from nbformat.sign import NotebookNotary
    from playwright.sync_api import sync_playwright

    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    folder = tmp_path / "lessons"
    folder.mkdir()
    lesson = folder / "06_attention_maps.ipynb"
    shutil.copy(ROOT / "notebooks" / lesson.name, lesson)
    os.environ["JUPYTER_DATA_DIR"], previous = env["JUPYTER_DATA_DIR"], os.environ.get("JUPYTER_DATA_DIR")
    try:  # what `make setup` does with `jupyter trust`, in this test's own signature database
        NotebookNotary().sign(read(lesson, as_version=4))
    finally:
        os.environ.pop("JUPYTER_DATA_DIR") if previous is None else os.environ.update(JUPYTER_DATA_DIR=previous)
    port = _free_port()
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", f"--notebook-dir={folder}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2)
                break
            except OSError:
                time.sleep(1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{lesson.name}?reset", timeout=180_000)
            page.wait_for_selector(".jp-Notebook .widget-textarea", state="attached", timeout=180_000)
            page.wait_for_timeout(2000)
            seen = page.evaluate("""() => ({
                text: Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(o => o.innerText).join('\\n'),
                textareas: Array.from(document.querySelectorAll('.jp-Notebook .widget-textarea textarea')).map(t => t.value),
                views: document.querySelectorAll('.jp-OutputArea-output svg').length})""")
            browser.close()
    finally:
        lab.terminate()
        lab.wait(30)
    assert "model not found" not in seen["text"] and "Error displaying widget" not in seen["text"]
    assert "VBox(" not in seen["text"]  # the widget, not its text repr (what an untrusted notebook shows)
    assert seen["textareas"] and seen["textareas"][0].strip()  # the explorer's saved sentence
    assert seen["views"] > 0  # bertviz's stored views drew (their scripts ran)
