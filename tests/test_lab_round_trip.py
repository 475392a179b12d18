"""A learner's round trip in JupyterLab (headless Chromium): open, Run All, save, shut the kernel down, reopen.

Lessons 08-10 and exercises 08-10 on the smoke profile, in a JupyterLab that has the settings `make setup`
writes (tools/lab_settings.py: widget state saved with the notebook). After reopening, every widget the
outputs show draws ("Error displaying widget: model not found" is what a learner saw before); opening an
untouched notebook does not mark it modified; an exercise's Run All stops at the first stub with
NotImplementedError (its imports, ``hint`` included, ran).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_FLAGS, require_chromium

from attention_course.tools import lab_settings

ROOT = Path(__file__).resolve().parent.parent
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
LESSONS = ["08_serving.ipynb", "09_beyond_text.ipynb", "10_proof_of_concept.ipynb"]
WIDGET_ERRORS = ("model not found", "Error displaying widget", "Could not find model")

pytestmark = pytest.mark.slow

_BUSY = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
    const prompts = Array.from(panel.node.querySelectorAll('.jp-InputArea-prompt')).map(p => p.textContent);
    return {status: kernel ? kernel.status : 'none', running: prompts.filter(p => p.includes('*')).length,
            dirty: panel.context.model.dirty};
}"""

_OPENED = """() => {
    const model = window.jupyterapp.shell.currentWidget.context.model;
    return {dirty: model.dirty, kernelspec: model.getMetadata('kernelspec'), model: model.toJSON()};
}"""

_SEEN = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const outputs = Array.from(panel.node.querySelectorAll('.jp-OutputArea-output'));
    const widgetOutputs = outputs.filter(o => o.dataset.mimeType === 'application/vnd.jupyter.widget-view+json'
                                             || o.querySelector('.jupyter-widgets'));
    return {text: outputs.map(o => o.innerText).join('\\n'),
            widgets: widgetOutputs.length,
            drawn: widgetOutputs.filter(o => o.querySelector('.jupyter-widgets, .widget-box, .widget-inline-hbox')).length,
            dirty: panel.context.model.dirty, model: panel.context.model.toJSON()};
}"""


def _joined(value):
    """nbformat's multi-line strings (a list of lines on disk, one string in JupyterLab) as one string."""
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "".join(value)
    if isinstance(value, dict):
        return {key: _joined(item) for key, item in value.items() if key != "transient"}
    if isinstance(value, list):
        return [_joined(item) for item in value]
    return value


def _changes(saved: dict, model: dict) -> list[str]:
    """What JupyterLab's copy of an opened notebook has that the file does not (metadata keys, cells): what a
    save would write. Lines joined on both sides, so only content counts, not JSON layout."""
    before, after = _joined(saved), _joined(model)
    found = [f"metadata {key}: {json.dumps(before['metadata'].get(key))[:200]} -> "
             f"{json.dumps(after['metadata'].get(key))[:200]}"
             for key in sorted(set(before["metadata"]) | set(after["metadata"]))
             if before["metadata"].get(key) != after["metadata"].get(key)]
    if len(before["cells"]) != len(after["cells"]):
        found.append(f"{len(before['cells'])} cells -> {len(after['cells'])}")
    for index, (old, new) in enumerate(zip(before["cells"], after["cells"], strict=False)):
        for key in ("source", "outputs", "execution_count"):
            if old.get(key) != new.get(key):
                found.append(f"cell {index} {key}: {json.dumps(old.get(key))[:300]} -> {json.dumps(new.get(key))[:300]}")
    return found


def _shown_models(notebook: dict) -> list[str]:
    return [output["data"][VIEW]["model_id"] for cell in notebook["cells"] for output in cell.get("outputs", [])
            if VIEW in output.get("data", {})]


def _first_task(notebook) -> str:
    return next(re.finditer(r'check\("([0-9a-z_.]+)"', "\n".join(cell.source for cell in notebook.cells)))[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab on a free port, with the course's settings, over a folder of copies of the six notebooks."""
    require_chromium()
    from nbformat import read, write
    from nbformat.sign import NotebookNotary
    from nbformat.v4 import new_code_cell

    home = tmp_path_factory.mktemp("lab")
    folder = home / "course"
    folder.mkdir()
    other_kernel = read(ROOT / "exercises" / LESSONS[-1], as_version=4)  # as the notebooks were before issue 29
    other_kernel.metadata["kernelspec"]["display_name"] = "Python 3"
    write(other_kernel, folder / "other_kernel_name.ipynb")
    for name in LESSONS:
        shutil.copy(ROOT / "notebooks" / name, folder / name)
        exercise = read(ROOT / "exercises" / name, as_version=4)  # a learner who asks for a hint first
        exercise.cells.insert(2, new_code_cell(f'hint("{_first_task(exercise)}")'))
        write(exercise, folder / f"exercise_{name}")
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(home / "user-settings"),
               ATTENTION_COURSE_PROFILE="smoke", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    settings = home / "settings"
    lab_settings.install(settings)  # what `make setup` writes into the venv's JupyterLab settings
    previous = os.environ.get("JUPYTER_DATA_DIR")
    os.environ["JUPYTER_DATA_DIR"] = env["JUPYTER_DATA_DIR"]
    try:  # what `make setup` does with `jupyter trust`, in this test's own signature database
        for path in folder.glob("*.ipynb"):
            NotebookNotary().sign(read(path, as_version=4))
    finally:
        os.environ.pop("JUPYTER_DATA_DIR") if previous is None else os.environ.update(JUPYTER_DATA_DIR=previous)
    from test_lab_opens import _free_port

    port = _free_port()
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", f"--notebook-dir={folder}",
         f"--LabApp.app_settings_dir={settings}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                time.sleep(1)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            yield url, folder, browser
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def _open(browser, url: str, name: str):
    """A fresh page (a fresh widget manager) with ``name`` open and its kernel idle."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{url}/lab/tree/{name}?reset", timeout=180_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.context && window.jupyterapp.shell.currentWidget.context.isReady",
                           timeout=180_000)
    page.wait_for_function(f"() => {{ const s = ({_BUSY})(); return s.status === 'idle'; }}", timeout=180_000)
    page.wait_for_timeout(1500)  # JupyterLab writes the kernel's name and language into the model now, if at all
    return page


def _shut_down_and_close(page) -> None:
    """Shut every kernel down (as the Running panel does), then close the page."""
    page.evaluate("async () => { await window.jupyterapp.serviceManager.sessions.shutdownAll(); }")
    page.close()


def _round_trip(lab, name: str) -> tuple[dict, dict, dict]:
    """Open (state on opening), Run All, save, shut down, reopen (state after reopening); and the saved file."""
    url, folder, browser = lab
    stored = json.loads((folder / name).read_text(encoding="utf-8"))
    page = _open(browser, url, name)
    opened = page.evaluate(_OPENED)
    opened["renamed"] = opened["kernelspec"] != stored["metadata"]["kernelspec"]
    # JupyterLab also writes the running Python's version into language_info: a notebook executed on another
    # Python (the lessons' outputs come from the GPU machine's) then differs on opening, whatever its kernel
    opened["changes"] = [change for change in _changes(stored, opened.pop("model"))
                         if not change.startswith("metadata language_info")]
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_timeout(2000)
    page.wait_for_function(f"() => {{ const s = ({_BUSY})(); return s.status === 'idle' && s.running === 0; }}",
                           timeout=900_000, polling=1000)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(f"() => !({_BUSY})().dirty", timeout=60_000)
    _shut_down_and_close(page)
    saved = json.loads((folder / name).read_text(encoding="utf-8"))
    page = _open(browser, url, name)
    page.wait_for_timeout(3000)  # widgets draw from the saved state
    seen = page.evaluate(_SEEN)
    _shut_down_and_close(page)
    return opened, saved, seen


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_widgets_survive_run_all_save_and_restart(lab, name):
    opened, saved, seen = _round_trip(lab, name)
    assert not opened["renamed"], f"{name}: opening it renamed its kernel {opened['kernelspec']}"
    assert not opened["changes"], f"{name}: opening it changed {opened['changes']}"
    errors = [cell for cell in saved["cells"] for output in cell.get("outputs", []) if output["output_type"] == "error"]
    assert not errors, f"{name}: Run All failed: {errors[0]['outputs']}"
    shown = _shown_models(saved)
    assert shown, f"{name}: no widget shown after Run All"
    state = saved["metadata"].get("widgets", {}).get(STATE, {}).get("state", {})
    assert set(shown) <= state.keys(), f"{name}: saved without the state of {len(set(shown) - state.keys())} shown widgets"
    assert not any(error in seen["text"] for error in WIDGET_ERRORS), f"{name}: {seen['text'][:2000]}"
    assert seen["widgets"] >= len(shown) and seen["drawn"] >= len(shown), (name, seen["widgets"], seen["drawn"], len(shown))
    # with saveState on, the widget manager flags a notebook modified as it restores each widget; the content
    # must still be what was saved (saving again writes the same notebook)
    assert not _changes(saved, seen["model"]), f"{name}: reopening it changed {_changes(saved, seen['model'])}"


@pytest.mark.parametrize("name", [f"exercise_{name}" for name in LESSONS])
def test_exercise_runs_to_its_first_stub_and_reopens_clean(lab, name):
    opened, saved, seen = _round_trip(lab, name)
    assert not opened["renamed"], f"{name}: opening it renamed its kernel {opened['kernelspec']}"
    assert not opened["changes"], f"{name}: opening it changed {opened['changes']}"
    outputs = [output for cell in saved["cells"] for output in cell.get("outputs", [])]
    hint_cell = saved["cells"][2]
    assert "hint(" in "".join(hint_cell["source"]), name
    printed = "".join("".join(output.get("text", "")) for output in hint_cell["outputs"])
    assert printed.count("Hint 1/") == 1 and len(hint_cell["outputs"]) == 1, f"{name}: hint() printed {hint_cell['outputs']}"
    errors = [output for output in outputs if output["output_type"] == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "CheckFailed" and "not done yet" in errors[0]["evalue"], \
        f"{name}: Run All should stop at the first check, on its stub: {errors}"
    assert not any(error in seen["text"] for error in WIDGET_ERRORS) and not _changes(saved, seen["model"]), name


def test_a_notebook_naming_another_kernel_is_marked_modified_on_opening(lab):
    """The control for the 'not modified on opening' assertions above: they can fail."""
    url, _, browser = lab
    page = _open(browser, url, "other_kernel_name.ipynb")
    opened = page.evaluate(_OPENED)
    _shut_down_and_close(page)
    assert opened["dirty"] and opened["kernelspec"]["display_name"] != "Python 3"
