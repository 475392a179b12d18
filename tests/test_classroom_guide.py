"""The instructor guide stays true: its run times are the README's measured ones, its schedules add up, every
page is in the book, and the commands and files it names exist."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "book" / "instructors"


def readme_run_times() -> dict[str, tuple[str, str]]:
    """lesson number -> (cpu, gpu) run time cells of the README's lesson table."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"\d\d", cells[0]):
            rows[cells[0]] = (cells[3], cells[4])
    return rows


def test_schedule_run_times_are_the_measured_ones():
    readme = readme_run_times()
    found = 0
    for line in (GUIDE / "schedules.md").read_text().splitlines():
        match = re.match(r"\| (\d\d) · [^|]+\| ([^|]+) \| ([^|]+) \| [^|]+ \|$", line)
        if match:
            number, cpu, gpu = match.groups()
            assert (cpu.strip(), gpu.strip()) == readme[number], f"lesson {number}: README says {readme[number]}"
            found += 1
    assert found >= 8
    total = sum(int(readme[n][0].split()[0]) for n in [f"{i:02d}" for i in range(8)])
    assert f"take {total} s" in (GUIDE / "schedules.md").read_text()


def minutes(clock: str) -> int:
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def test_schedules_are_contiguous_and_fit_their_day():
    text = (GUIDE / "schedules.md").read_text()
    tables = re.split(r"\n\n(?=\|)", text)
    checked = 0
    for table in tables:
        slots = re.findall(r"^\| (\d\d?:\d\d)–(\d\d?:\d\d) \|", table, re.MULTILINE)
        if not slots:
            continue
        for (start, end), (next_start, _) in zip(slots, slots[1:], strict=False):
            assert minutes(start) < minutes(end) == minutes(next_start), (start, end, next_start)
        checked += 1
    assert checked >= 4  # half day, one day, two days
    half_day = re.search(r"## Half day \((\d) h (\d\d)\)", text)
    slots = re.findall(r"^\| (\d:\d\d)–(\d:\d\d) \|", text.split("## One day")[0], re.MULTILINE)
    assert minutes(slots[-1][1]) - minutes(slots[0][0]) == int(half_day[1]) * 60 + int(half_day[2])


def test_every_guide_page_is_in_the_book():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = set()

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.add(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    pages = {f"instructors/{p.stem}" for p in GUIDE.glob("*.md")}
    assert pages and pages <= files


def test_no_placeholders_left():
    for page in GUIDE.glob("*.md"):
        assert not re.search(r"\bCPU_0\d|GRU_ANSWER|CAUSAL_TRANSFORMER|ERASURE_CPU|TRANSFER_ROW|TODO", page.read_text()), page.name


@pytest.mark.parametrize("path", ["classroom/jupyterhub_config.py", "classroom/package.json", "classroom/package-lock.json",
                                  "classroom/k8s/Dockerfile", "classroom/k8s/config.yaml", "classroom/jupyter/nbgrader_config.py",
                                  "classroom/challenges/challenge_val_loss_5min.ipynb",
                                  "classroom/challenges/challenge_accuracy_200_labels.ipynb", "results/cpu/README.md"])
def test_named_files_exist(path):
    assert (ROOT / path).exists()


@pytest.mark.parametrize("target", ["hub", "wheelhouse", "lab", "doctor", "setup"])
def test_named_make_targets_exist(target):
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr


def test_wheelhouse_install_path_is_plain_pip():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip download" in makefile and "-d wheelhouse" in makefile
    assert "PIP_NO_INDEX=1 PIP_FIND_LINKS=" in (GUIDE / "index.md").read_text()
