"""The library's imports run downward: parts import the core, never each other except along the edges README's
table allows (a lesson that builds on an earlier part on purpose), and no module imports itself round a circle.

The graph comes from the source (every import statement, those inside functions too), not from running it.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "attention_course"
TABLE_HEADING = "#### Import direction"
LAYERS = {"core": 0, "grading": 2, "tools": 3}  # every other sub-package is a part of the book: layer 1
ROOT_UNIT = ""  # the package's own __init__ and _moved: importable from everywhere


def module_name(path: Path, package_dir: Path) -> str:
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package_dir: Path) -> tuple[dict[str, set[str]], list[str]]:
    """(module -> the library modules it imports, imports that name no module of the library)."""
    files = {module_name(path, package_dir): path for path in sorted(package_dir.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in files}
    missing = []
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.split(".")[0] == package_dir.name]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    source = f"{base}.{node.module}" if node.module else base
                elif (node.module or "").split(".")[0] == package_dir.name:
                    source = node.module
                else:
                    continue
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in files else source for alias in node.names]
            else:
                continue
            for target in targets:
                if target in files:
                    graph[name].add(target)
                else:
                    missing.append(f"{name} (line {node.lineno}) imports {target}, which does not exist")
    return graph, missing


def unit(module: str) -> str:
    """The sub-package a module belongs to (``core``, a part, ``grading``, ``tools``), or ROOT_UNIT."""
    parts = module.split(".")
    return ROOT_UNIT if len(parts) == 1 or parts[1] == "_moved" else parts[1]


def read_table(readme: str) -> dict[str, set[str]]:
    """README's import-direction table, in its order (the book's): package -> what it may import besides core."""
    lines = readme.split(TABLE_HEADING, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| package |"))
    table = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        name, allowed = (cell.strip() for cell in line.strip("|").split("|")[:2])
        table[name.strip("`")] = {"*"} if allowed == "every package" else set(re.findall(r"`(\w+)`", allowed))
    return table


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (or a module importing itself): Tarjan's algorithm."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph.get(node, ())):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(graph: dict[str, set[str]], table: dict[str, set[str]]) -> list[str]:
    """Every upward edge, every edge between sub-packages that the table does not allow, and every circle."""
    problems = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            here, there = unit(source), unit(target)
            if there in (ROOT_UNIT, here) or there == "core" and here != ROOT_UNIT:
                continue
            if here == ROOT_UNIT:
                problems.append(f"the package root imports {target}: it must stay light")
            elif LAYERS.get(here, 1) < LAYERS.get(there, 1):
                problems.append(f"upward edge: {source} ({here}) imports {target} ({there})")
            elif "*" not in table.get(here, set()) and there not in table.get(here, set()):
                problems.append(f"edge not in README's table: {source} ({here}) imports {target} ({there})")
    problems += [f"cycle: {' -> '.join(group)}" for group in cycles(graph)]
    return problems


@pytest.fixture(scope="module")
def table():
    return read_table((ROOT / "README.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def graph():
    found, missing = import_graph(ROOT / PACKAGE)
    assert not missing, "\n".join(missing)
    return found


def test_the_library_imports_only_downward_and_without_circles(graph, table):
    assert len(graph) > 50, "the graph holds too few modules to be the library's"
    assert sum(len(targets) for targets in graph.values()) > 100, "too few imports found: is the parser blind?"
    problems = violations(graph, table)
    assert not problems, "\n".join(problems)


def test_every_sub_package_is_in_the_table_and_every_allowed_edge_is_used(graph, table):
    packages = {p.name for p in (ROOT / PACKAGE).iterdir() if (p / "__init__.py").is_file()}
    assert packages - set(table) == set(), f"sub-packages missing from README's import table: {packages - set(table)}"
    used = {(unit(source), unit(target)) for source, targets in graph.items() for target in targets}
    for name, allowed in table.items():
        if name not in packages or "*" in allowed:
            continue  # a planned part (lesson 11's factory) has no code yet
        stale = {other for other in allowed if (name, other) not in used}
        assert not stale, f"README allows {name} -> {sorted(stale)}, but no module imports so: drop the entry"


def test_a_part_builds_only_on_earlier_parts(table):
    order = list(table)
    for name, allowed in table.items():
        if LAYERS.get(name, 1) != 1:
            continue
        later = {other for other in allowed if order.index(other) > order.index(name)}
        assert not later, f"{name} may import {later}, which come later in the book"


# ---------------------------------------------------------------------- the checker itself can fail

def test_the_checker_catches_an_upward_edge_an_edge_not_in_the_table_and_a_circle(table):
    bad = {
        f"{PACKAGE}.core.gpt": {f"{PACKAGE}.parallel.train"},                  # the core reaching up into a part
        f"{PACKAGE}.inside.viz": {f"{PACKAGE}.proof.memo"},                    # a part importing a later part
        f"{PACKAGE}.grading.lesson01": {f"{PACKAGE}.tools.cli"},               # the checks reaching into the tooling
        f"{PACKAGE}.parallel.a": {f"{PACKAGE}.parallel.b"},                    # a circle inside one part
        f"{PACKAGE}.parallel.b": {f"{PACKAGE}.parallel.a"},
        f"{PACKAGE}.deploy.cost": {f"{PACKAGE}.inside.viz", f"{PACKAGE}.core.device"},  # allowed: the table lists it
    }
    problems = violations(bad, table)
    assert any(p.startswith("upward edge") and "core.gpt" in p for p in problems), problems
    assert any(p.startswith("upward edge") and "grading.lesson01" in p for p in problems), problems
    assert any(p.startswith("edge not in README's table") and "inside.viz" in p for p in problems), problems
    assert any(p.startswith("cycle") and "parallel.a" in p for p in problems), problems
    assert not any("deploy.cost" in p for p in problems), problems
    assert len(problems) == 4, problems


def test_the_graph_sees_imports_inside_functions_and_relative_ones(tmp_path):
    package = tmp_path / PACKAGE
    for folder in ("core", "proof"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("from . import _moved\n")
    (package / "_moved.py").write_text("")
    (package / "proof" / "memo.py").write_text("X = 1\n")
    (package / "core" / "gpt.py").write_text("def late():\n    from ..proof import memo\n    from ..nothing import y\n")
    graph, missing = import_graph(package)
    assert graph[f"{PACKAGE}.core.gpt"] == {f"{PACKAGE}.proof.memo"}
    assert missing and "nothing" in missing[0]
    assert any(p.startswith("upward edge") for p in violations(graph, {"core": set(), "proof": set()}))
