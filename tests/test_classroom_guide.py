"""The instructor guide stays true: its run times are the README's measured ones, its schedules add up, every
page is in the book, and the commands and files it names exist."""

import json
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


@pytest.mark.parametrize("target", ["hub", "hub-env", "wheelhouse", "lab", "doctor", "setup"])
def test_named_make_targets_exist(target):
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr


def test_wheelhouse_install_path_is_plain_pip():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip download" in makefile and "-d wheelhouse" in makefile
    assert "PIP_NO_INDEX=1 PIP_FIND_LINKS=" in (GUIDE / "index.md").read_text()


def solution_tasks() -> dict[str, list[str]]:
    """lesson number -> the graded tasks of its solution notebook (one per check cell), in order."""
    from attention_course.tools.assignments import CHECK_CALL

    tasks = {}
    for path in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        found = [m["task"] for c in cells if c["cell_type"] == "code" for m in CHECK_CALL.finditer("".join(c["source"]))]
        tasks[path.name[:2]] = list(dict.fromkeys(found))
    return tasks


def test_schedule_task_counts_are_the_exercises_own():
    tasks = solution_tasks()
    rows = re.findall(r"^\| (\d\d) · [^|]+\|[^|]+\|[^|]+\| (\d+|–)(?: \((\d) builds?\))? \|$",
                      (GUIDE / "schedules.md").read_text(), re.MULTILINE)
    assert len(rows) >= 10
    for number, count, builds in rows:
        expected = tasks.get(number, [])
        assert count == (str(len(expected)) if expected else "–"), f"lesson {number}: {len(expected)} graded tasks"
        assert int(builds or 0) == sum(".build" in task for task in expected), f"lesson {number}: build tasks"


def test_schedules_count_each_build_tasks_minutes():
    text = (GUIDE / "schedules.md").read_text()
    builds = [task for tasks in solution_tasks().values() for task in tasks if ".build" in task]
    assert len(builds) == 4  # parts I, II, III and VI (lesson 11)
    for task in builds:  # each build task is named with the time its check trains on a 2-core seat
        assert re.search(rf"`{re.escape(task)}` \d+ s", text), task


def test_challenge_grading_fits_the_schedules():
    """Grading re-runs each team's 5-minute training: the block between hand-in and leaderboard must hold it."""
    text = (GUIDE / "schedules.md").read_text()
    rows = re.findall(r"^\| (\d\d?:\d\d)–(\d\d?:\d\d) \| Grading [^|]*\(up to (\d+) teams\)", text, re.MULTILINE)
    assert len(rows) == 2  # the one-day plan and day 2
    for start, end, teams in rows:
        assert minutes(end) - minutes(start) >= 5 * int(teams) + 5, (start, end, teams)
    assert "challenge" in text.split("up to")[0].lower()


def test_guide_commands_run_without_activating_the_environment():
    """Every course command in the hub and setup pages is spelled .venv/bin/... (or make), and parses."""
    from attention_course.tools.cli import build_parser

    parser = build_parser()
    parsed = 0
    for page in ("hub.md", "index.md"):
        blocks = re.findall(r"```bash\n(.*?)```", (GUIDE / page).read_text(), re.DOTALL)
        for line in "\n".join(blocks).replace("\\\n", " ").splitlines():
            command = re.sub(r"^(\w+=\S+ )+", "", line.split("#")[0].strip())
            assert not re.match(r"(attention-course|nbgrader|jupyterhub|jupyter) ", command), f"{page}: {line}"
            if command.startswith(".venv/bin/attention-course "):
                words = command.split(">")[0].split()[1:]
                parser.parse_args(words)
                parsed += 1
    assert parsed >= 5


def test_hub_page_hands_out_the_handout_and_not_the_checkout():
    from attention_course.tools import hub

    text = (GUIDE / "hub.md").read_text()
    assert f"repo={hub.handout_dir(hub.DEFAULT_PREFIX)}&" in text
    assert "--allow-root" not in (ROOT / "classroom" / "jupyterhub_config.py").read_text()


def test_blocks_with_whole_exercise_sets_hold_the_run_the_tasks_and_the_builds():
    """A block 'Lesson NN + all of exercises NN' holds the lesson's run, 8 minutes per graded task and a few
    minutes (3) per build task, the figures the schedules page states."""
    text = (GUIDE / "schedules.md").read_text()
    tasks, readme = solution_tasks(), readme_run_times()
    blocks = re.findall(r"^\| (\d\d?:\d\d)–(\d\d?:\d\d) \| Lesson (\d\d)[^|]*\+ (?:all of )?exercises \3 \|", text, re.MULTILINE)
    assert len(blocks) >= 5
    for start, end, number in blocks:
        needed = int(readme[number][0].split()[0]) / 60 + 8 * len(tasks[number]) + 3 * sum(".build" in t for t in tasks[number])
        assert minutes(end) - minutes(start) >= needed, (number, start, end, needed)
    assert "about 8 minutes per graded task" in text and "a few minutes per build task" in text
