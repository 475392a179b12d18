"""Old flat module paths still import (one mechanism: attention_course._moved), and the course itself uses none.

Old names are built from the table, never written out here, so this file is no exception to the scan below.
"""

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from attention_course import _moved

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = _moved.PACKAGE
SINGLE = sorted(old for old, new in _moved.MOVED.items() if isinstance(new, str))
SPLIT = sorted(old for old, new in _moved.MOVED.items() if not isinstance(new, str))


def _fresh_import(name: str):
    """Import ``name`` as a learner's first import of it would, with the warnings it raises."""
    sys.modules.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(name)
    return module, [w for w in caught if issubclass(w.category, DeprecationWarning)]


def test_every_new_path_exists_and_no_old_path_does():
    assert len(SINGLE) >= 25 and SPLIT, "the table of moves lost its entries"
    for old, new in _moved.MOVED.items():
        for target in [new] if isinstance(new, str) else new:
            assert importlib.util.find_spec(f"{PACKAGE}.{target}") is not None, f"{old} -> {target}: no such module"
        old_file = ROOT.joinpath(PACKAGE, *old.split("."))
        assert not old_file.with_suffix(".py").exists() and not old_file.is_dir(), \
            f"{old} exists again: the finder would never answer for it"


@pytest.mark.parametrize("old", SINGLE)
def test_an_old_path_is_the_new_module_with_a_warning_naming_it(old):
    new = importlib.import_module(_moved.new_path(f"{PACKAGE}.{old}"))
    module, caught = _fresh_import(f"{PACKAGE}.{old}")
    assert module is new
    assert len(caught) == 1 and new.__name__ in str(caught[0].message), [str(w.message) for w in caught]
    assert caught[0].filename == __file__, f"the warning points at {caught[0].filename}, not at the importing code"
    assert new.__spec__.name == new.__name__, "the old path's spec replaced the module's own"


def test_from_old_import_name_gives_the_same_object():
    old = "gpt" if "gpt" in SINGLE else SINGLE[0]
    new = importlib.import_module(_moved.new_path(f"{PACKAGE}.{old}"))
    public = next(name for name in vars(new) if not name.startswith("_") and callable(getattr(new, name)))
    sys.modules.pop(f"{PACKAGE}.{old}", None)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        exec(f"from {PACKAGE}.{old} import {public}\nfrom {PACKAGE} import {old} as module", namespace)
    assert namespace[public] is getattr(new, public) and namespace["module"] is new


@pytest.mark.parametrize("old", SPLIT)
def test_a_split_module_answers_each_name_from_the_part_that_defines_it(old):
    module, _ = _fresh_import(f"{PACKAGE}.{old}")
    parts = [importlib.import_module(part) for part in _moved.new_path(f"{PACKAGE}.{old}")]
    checked = 0
    for part in parts:
        for name, value in vars(part).items():
            if not (inspect.isfunction(value) or inspect.isclass(value)) or value.__module__ != part.__name__:
                continue  # only what the part itself defines
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                assert getattr(module, name) is value
            assert any(f"{part.__name__}.{name}" in str(w.message) for w in caught), (name, [str(w.message) for w in caught])
            checked += 1
    assert checked > 10
    with pytest.raises(AttributeError, match="split into"):
        module.no_such_name  # noqa: B018


def test_the_finder_answers_only_for_old_paths():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"{PACKAGE}.no_such_module")
    assert sum(isinstance(finder, _moved.MovedFinder) for finder in sys.meta_path) == 1
    _moved.install()
    assert sum(isinstance(finder, _moved.MovedFinder) for finder in sys.meta_path) == 1


@pytest.mark.slow
def test_python_dash_m_with_an_old_path_runs_the_new_module():
    old = next(old for old in SINGLE if _moved.MOVED[old].endswith(".train"))
    done = subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-m", f"{PACKAGE}.{old}", "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]
    assert _moved.MOVED[old] in done.stderr, "no warning named the new path"


# ------------------------------------------------------------------ the course itself uses no old path

def old_references(text: str) -> list[str]:
    """The old paths a text names: dotted (imports, strings, ``python -m``) or as files."""
    olds = "|".join(re.escape(old) for old in sorted(_moved.MOVED, key=len, reverse=True))
    found = re.findall(rf"(?<![\w.]){PACKAGE}\.(?:{olds})(?![\w])", text)
    slashed = "|".join(re.escape(old.replace(".", "/")) for old in sorted(_moved.MOVED, key=len, reverse=True))
    found += re.findall(rf"(?<![\w/]){PACKAGE}/(?:{slashed})\.py\b", text)
    found += [f"{PACKAGE}/{old}" for old in _moved.MOVED_FILES if re.search(rf"(?<![\w/]){PACKAGE}/{re.escape(old)}\b", text)]
    return found


def old_imports(source: str, package: str | None = None) -> list[str]:
    """``from attention_course import OLD`` (and, inside the package, ``from . import OLD``) in Python source."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a notebook cell with IPython syntax: its dotted references are still scanned
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == PACKAGE and not node.level:
            found += [f"from {PACKAGE} import {a.name}" for a in node.names if a.name in _moved.MOVED]
    return found


def course_files() -> list[Path]:
    """Every file of the course that may name a module: not results/ (records of what ran) nor this file."""
    patterns = ["notebooks/*.ipynb", "solutions/*.ipynb", "exercises/*.ipynb", "classroom/**/*.ipynb", "classroom/**/*.py",
                "tests/**/*.py", "book/**/*.md", "book/**/*.yml", "attention_course/**/*.py", "README.md", "Makefile",
                "pyproject.toml", "requirements*.txt", "classroom/k8s/Dockerfile", ".ci/*", ".github/**/*.yml"]
    skip = {Path(__file__).resolve(), (ROOT / PACKAGE / "_moved.py").resolve()}
    files = {p.resolve() for pattern in patterns for p in ROOT.glob(pattern) if p.is_file() and "_build" not in p.parts}
    return sorted(files - skip)


def _problems(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
        codes = [s for c, s in zip(cells, sources, strict=True) if c["cell_type"] == "code"]
        return [r for s in sources for r in old_references(s)] + [i for s in codes for i in old_imports(s)]
    found = old_references(text)
    return found + (old_imports(text) if path.suffix == ".py" else [])


def test_no_course_file_uses_an_old_module_path():
    files = course_files()
    assert len(files) > 100, f"only {len(files)} course files found: is the scan looking in the right place?"
    problems = {str(path.relative_to(ROOT)): found for path in files if (found := _problems(path))}
    assert not problems, f"old module paths (use the new ones: README's library map): {problems}"


def test_the_scan_finds_old_paths():
    old = SINGLE[0]
    assert old_references(f'monkeypatch.setattr("{PACKAGE}.{old}.x", 1)') == [f"{PACKAGE}.{old}"]
    assert old_references(f"python -m {PACKAGE}.{old} --help")
    assert old_references(f"see {PACKAGE}/{old.replace('.', '/')}.py")
    assert old_imports(f"from {PACKAGE} import {old}, __version__") == [f"from {PACKAGE} import {old}"]
    new = _moved.MOVED[old]
    assert not old_references(f"from {PACKAGE}.{new} import x") and not old_imports(f"from {PACKAGE} import core")


def test_an_answer_that_imports_is_not_refused_for_asking_the_finder():
    """Every import the standard path finder misses asks the finder too: that is no use of the course's code."""
    import torch

    from attention_course.grading import check

    def causal_mask(t):
        assert importlib.util.find_spec("no_such_module_anywhere") is None  # asks every finder, the library's too
        return torch.ones(t, t, dtype=torch.bool).tril()

    check("02.causal_mask", causal_mask)


def test_moved_modules_still_find_the_checkout():
    """Modules that locate the checkout from their own file (one folder deeper since the parts) still find it: a
    ``parent.parent`` left from the flat layout pointed at attention_course/ itself."""
    from attention_course.core import course
    from attention_course.proof import memo

    assert course.is_course_root(course.PACKAGE_ROOT), course.PACKAGE_ROOT
    assert memo.ROOT == course.PACKAGE_ROOT
    assert (memo.ROOT / "notebooks" / "10_proof_of_concept.ipynb").is_file()
