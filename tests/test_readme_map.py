"""README's library map names every module of the library as it is, and nothing that is gone."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "attention_course"


def _mapped() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Library map", 1)[1].split("\n## ", 1)[0].split("#### Import direction", 1)[0]
    return re.findall(r"^\| `([\w.]+)` \|", section, re.MULTILINE)


def _modules() -> set[str]:
    """Every module as ``part.module`` (``core.gpt``, ``tools.cli``, ``_moved``); the checks, ``grading``, as one entry."""
    names = {".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py")
             if p.stem != "__init__" and p.relative_to(PACKAGE).parts[0] != "grading"}
    return names | {"grading"}


def test_library_map_matches_the_code():
    mapped = _mapped()
    assert len(mapped) == len(set(mapped)), "a module is listed twice"
    modules = _modules()
    assert not modules - set(mapped), f"modules missing from README's library map: {sorted(modules - set(mapped))}"
    assert not set(mapped) - modules, f"README's library map names modules that do not exist: {sorted(set(mapped) - modules)}"
