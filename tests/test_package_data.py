"""Every data file inside the library is declared as package data: an installed (not editable) copy has it too."""

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_data_file_of_the_library_is_package_data():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    package = ROOT / "attention_course"
    data = [p for p in package.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert data, "no data file found: is the scan looking in the library?"
    for path in data:
        owner = ".".join(path.parent.relative_to(ROOT).parts)
        patterns = declared.get(owner, [])
        assert any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns), \
            f"{path.relative_to(ROOT)} is not in pyproject.toml's [tool.setuptools.package-data] for {owner!r}"
