"""``attention-course doctor``: check a seat and print one fix line for each problem.

The checks fall in three groups, by what needs them:

- ``open``: opening the lessons in JupyterLab (JupyterLab, its widget extension, notebooks trusted so their
  stored outputs show, JupyterLab set to save widget state so widgets survive a restart);
- ``run``: running the lessons in a kernel (Python, the libraries, every data file non-empty and parsing, the
  model folder loading and tokenising a plain sentence into known tokens, the scripts the attention views
  inline, the device and the size profile);
- ``test``: the course's test suite (pytest, nbval, xdist, Chromium).

The whole report is always printed: a check that fails (even with a bad ``ATTENTION_COURSE_PROFILE`` or an
``ATTENTION_COURSE_DEVICE`` that is not there) becomes a FIX line, never a traceback. Inside a notebook
kernel ``run_doctor()`` checks only the ``run`` group: the kernel cannot tell what the machine that shows
the notebook has installed (run ``attention-course doctor`` in a terminal for that).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

GROUPS = {"open": "Needed to open the lessons (JupyterLab)",
          "run": "Needed to run the lessons (in the kernel)",
          "test": "Needed to run the course's tests"}
SETUP_FIX = "run `make setup` in the course folder (or `pip install -r requirements.txt`)"

# (distribution, why the course needs it, group)
PACKAGES = [
    ("jupyterlab", "the lessons' editor", "open"), ("jupyterlab_widgets", "the explorers' widgets in JupyterLab", "open"),
    ("torch", "tensors, models, training", "run"), ("transformers", "the pretrained MiniLM encoder", "run"),
    ("matplotlib", "plots", "run"), ("ipywidgets", "the interactive explorers", "run"),
    ("bertviz", "attention views", "run"), ("scikit-learn", "baselines", "run"), ("tqdm", "progress bars", "run"),
    ("pytest", "the test suite", "test"), ("pytest-xdist", "tests on several cores", "test"),
    ("nbval", "notebook tests", "test"),
]


@dataclass
class Check:
    check: str          # what was checked, with what was found
    ok: bool
    detail: str = ""    # why the course needs it, or what is wrong
    fix: str = ""       # one line: what to do (empty when ok)
    needed_for: str = "run"


def _guarded(group: str, label: str, probe: Callable[[], tuple[str, str]], fix: str) -> Check:
    """Run ``probe`` (returns (found, detail)); any exception becomes a failed check with ``fix``."""
    try:
        found, detail = probe()
        return Check(f"{label}: {found}" if found else label, True, detail, "", group)
    except Exception as error:  # every problem is reported, none stops the report
        message = " ".join(str(error).split()) or type(error).__name__
        return Check(label, False, message[:600], fix, group)


IMPORT_NAMES = {"scikit-learn": "sklearn"}  # run-group packages whose module name differs from the distribution


def _package(dist: str, why: str, group: str) -> Check:
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return Check(dist, False, f"not installed ({why})", SETUP_FIX, group)
    if group == "run":  # the lessons import it: installed is not enough
        try:
            importlib.import_module(IMPORT_NAMES.get(dist, dist))
        except Exception as error:
            return Check(f"{dist} {version}", False, f"installed but does not import ({type(error).__name__}: "
                         f"{' '.join(str(error).split())[:300]})", SETUP_FIX, group)
    return Check(f"{dist} {version}", True, why, "", group)


def _python() -> Check:
    version = sys.version_info
    ok = version >= (3, 11)
    return Check(f"Python {version.major}.{version.minor}", ok, "the course needs 3.11+",
                 "" if ok else "install Python 3.11 or newer, then run `make setup`", "run")


def _device() -> list[Check]:
    from ..core.device import device_name, pick_device
    from ..core.profiles import PROFILE_ENV, PROFILES, pick_profile

    checks, device = [], None
    try:
        device = pick_device()
        hint = "GPU lessons run their full size" if device.type == "cuda" else "no GPU: the cpu profile suits this machine"
        checks.append(Check(f"device {device.type}: {device_name(device)}", True, hint))
    except Exception as error:
        wanted = os.environ.get("ATTENTION_COURSE_DEVICE")
        checks.append(Check(f"device {wanted or ''}".strip(), False, str(error),
                            "unset ATTENTION_COURSE_DEVICE (or set it to cpu) to use what this machine has"))
    try:
        import torch

        profile = pick_profile(device if device is not None else torch.device("cpu"))
        if profile == "gpu" and (device is None or device.type != "cuda"):  # forced: the GPU sizes on a CPU take hours
            checks.append(Check(f"size profile {profile!r}", False,
                                f"{PROFILE_ENV}=gpu asks for the GPU sizes, but this machine has no CUDA GPU: "
                                "the lessons would run for hours",
                                f"unset {PROFILE_ENV} (this machine gets the cpu profile), or run on a GPU"))
        else:
            checks.append(Check(f"size profile {profile!r}", True, f"torch {torch.__version__}"))
    except Exception as error:
        checks.append(Check(f"size profile {os.environ.get(PROFILE_ENV)!r}", False, str(error),
                            f"unset {PROFILE_ENV}, or set it to one of: {', '.join(PROFILES)}"))
    return checks


def _data_checks() -> list[Check]:
    from ..core import data

    def rotten_tomatoes():
        return f"{sum(len(data.rotten_tomatoes(split)) for split in ('train', 'validation', 'test')):,} sentences", "offline"

    def shakespeare():
        return f"{len(data.shakespeare_text()):,} characters", "offline"

    def mnist():
        return f"{len(data.mnist_digits()[1]):,} images", "offline"

    checks = [_guarded("run", "Rotten Tomatoes sentences", rotten_tomatoes, data.ROTTEN_TOMATOES_INSTALL),
              _guarded("run", "Shakespeare text", shakespeare, data.SHAKESPEARE_INSTALL),
              _guarded("run", "MNIST digits", mnist, data.MNIST_INSTALL)]
    if hasattr(data, "elnino_monthly"):  # lesson 09's series, read from statsmodels' data folder
        def elnino():
            years, table = data.elnino_monthly()
            return f"{table.size:,} months ({years[0]}-{years[-1]})", "offline"

        checks.append(_guarded("run", "El Nino sea temperatures (statsmodels)", elnino,
                               getattr(data, "STATSMODELS_INSTALL", SETUP_FIX)))
    return checks


def _model() -> Check:
    from ..inside import pretrained

    def probe():
        return str(pretrained.model_folder()), pretrained.smoke_test()

    return _guarded("run", "pretrained MiniLM", probe, f"reinstall it with `{pretrained.REINSTALL}`")


def _view_scripts() -> Check:
    from ..inside import viz

    def probe():
        folder = viz._node_modules()
        sizes = {}
        for name, parts in viz._SCRIPT_FILES.items():
            file = folder.joinpath(*parts)
            if not file.is_file() or file.stat().st_size < 1000:
                raise FileNotFoundError(f"{file} is missing or empty")
            sizes[name] = file.stat().st_size
        return str(folder), ", ".join(f"{name} {size // 1024} KB" for name, size in sizes.items())

    return _guarded("run", "scripts the attention views inline (d3, jQuery)", probe,
                    "run `make setup` (npm installs them into book/offline/node_modules)")


def _trusted_notebooks() -> Check:
    def probe():
        from nbformat import read
        from nbformat.sign import NotebookNotary

        from ..core.course import course

        try:
            root = course().root
        except FileNotFoundError:  # the library used outside a checkout: no shipped notebooks to check
            return "no course checkout here", "run the doctor inside the course folder to check its notebooks"
        notary = NotebookNotary()
        untrusted = []
        for folder in ("notebooks", "solutions"):
            for path in sorted((root / folder).glob("*.ipynb")):
                notebook = read(path, as_version=4)
                has_outputs = any(cell.get("outputs") for cell in notebook.cells)
                if has_outputs and not notary.check_signature(notebook):
                    untrusted.append(f"{folder}/{path.name}")
        if untrusted:
            named = ", ".join(untrusted[:3]) + (f" and {len(untrusted) - 3} more" if len(untrusted) > 3 else "")
            raise RuntimeError(f"{len(untrusted)} not trusted, so their stored attention views and widgets "
                               f"stay blank: {named}")
        return "all trusted", "their stored outputs show when opened"

    return _guarded("open", "the course's notebooks", probe,
                    "run `make trust` (or `attention-course trust`)")


TRUSTED_FOLDERS = ("notebooks", "solutions", "exercises")


def trust_notebooks(root=None) -> tuple[list[str], dict[str, str]]:
    """Sign (trust) every notebook of the course, as ``jupyter trust`` does, so JupyterLab shows their stored
    outputs; a file that is not a readable notebook is skipped and named. Returns (signed, {odd file: why})."""
    from nbformat.sign import NotebookNotary

    from ..core.course import course
    from .exercises import OddNotebook, read_notebook

    root = course(root).root
    notary, signed, odd = NotebookNotary(), [], {}
    for folder in TRUSTED_FOLDERS:
        for path in sorted((root / folder).glob("*.ipynb")):
            name = f"{folder}/{path.name}"
            try:
                notary.sign(read_notebook(path))
                signed.append(name)
            except (OddNotebook, OSError) as why:
                odd[name] = str(why)
    return signed, odd


def run_trust(root=None) -> int:
    """``attention-course trust``: sign the course's notebooks; name any odd file; never fail because of one."""
    signed, odd = trust_notebooks(root)
    for name, why in odd.items():
        print(f"note: {name} is not a readable notebook ({why}): not trusted, left as it is.")
    print(f"trusted {len(signed)} notebooks: JupyterLab shows their stored outputs when they open.")
    return 0


def _lab_settings() -> Check:
    def probe():
        from . import lab_settings

        found = lab_settings.problems()
        if found:
            raise RuntimeError("JupyterLab will not save widget state in notebooks, so after a restart the widgets "
                               "say 'model not found': " + "; ".join(found))
        return "widget state saved with notebooks", "widgets survive a kernel restart"

    return _guarded("open", "JupyterLab settings", probe,
                    "run `make setup` (or `python -m attention_course.tools.lab_settings`); undo saveState: false "
                    "in your own settings")


def _chromium() -> Check:
    found = shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium")
    return Check(f"Chromium {found}" if found else "Chromium", bool(found), "the browser tests of the site and views",
                 "" if found else "run `make browser` (installs Debian's chromium)", "test")


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where only the ``run`` checks mean something)."""
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return bool(shell) and "IPKernelApp" in getattr(shell, "config", {})


def _safe(group: str, label: str, make: Callable[[], Check | list[Check]]) -> list[Check]:
    """The checks ``make`` returns; if it cannot even run (e.g. torch does not import), one failed check."""
    try:
        made = make()
        return made if isinstance(made, list) else [made]
    except Exception as error:
        return [Check(label, False, f"{type(error).__name__}: {' '.join(str(error).split())}"[:600], SETUP_FIX, group)]


def doctor_checks(groups: tuple[str, ...] = ("open", "run", "test")) -> list[Check]:
    """Every check of ``groups``, in report order; never raises."""
    checks: list[Check] = []
    for group in GROUPS:
        if group not in groups:
            continue
        if group == "run":
            checks.append(_python())
        checks.extend(_package(dist, why, g) for dist, why, g in PACKAGES if g == group)
        if group == "open":
            checks += _safe(group, "the course's notebooks", _trusted_notebooks)
            checks += _safe(group, "JupyterLab settings", _lab_settings)
        elif group == "run":
            checks += _safe(group, "data sets", _data_checks)
            checks += _safe(group, "pretrained MiniLM", _model)
            checks += _safe(group, "scripts the attention views inline (d3, jQuery)", _view_scripts)
            checks += _safe(group, "device and size profile", _device)
        else:
            checks.append(_chromium())
    return checks


def run_doctor(as_json: bool = False, scope: str | None = None) -> int:
    """Print the report (text or JSON); return the number of problems (0: all good).

    ``scope`` is ``"all"``, or one group (``"open"``, ``"run"``, ``"test"``); by default ``"run"`` inside a
    notebook kernel and ``"all"`` elsewhere.
    """
    scope = scope or ("run" if in_kernel() else "all")
    if scope != "all" and scope not in GROUPS:
        raise ValueError(f"scope must be 'all' or one of {', '.join(GROUPS)}, got {scope!r}")
    checks = doctor_checks(tuple(GROUPS) if scope == "all" else (scope,))
    problems = sum(not check.ok for check in checks)
    if as_json:
        print(json.dumps([asdict(check) for check in checks], indent=1))
        return problems
    group = None
    for check in checks:
        if check.needed_for != group:
            group = check.needed_for
            print(f"{GROUPS[group]}:")
        if check.ok:
            print(f"  ok   {check.check}" + (f"  ({check.detail})" if check.detail else ""))
        else:
            print(f"  FIX  {check.check}: {check.detail}\n       -> {check.fix}")
    if scope == "run" and in_kernel():
        print("(Checked from this kernel: what opening the lessons and the tests need is checked by "
              "`attention-course doctor` in a terminal.)")
    print("All good: open the lessons with `make lab`." if not problems else f"{problems} problem(s) to fix.")
    return problems
