"""What learners receive in a room where grades count: the lessons and exercises, never the solutions.

``make_handout`` writes a learner folder (a git repository, so nbgitpuller can hand it out by link and merge
later updates) from a course checkout: ``notebooks/``, ``exercises/`` and ``results/``, with every sentence
or metadata field that points at ``solutions/`` taken out. ``find_leaks`` reads a folder the way a learner
would and names every file that holds solution text: a worked answer between nbgrader's solution markers, a
hidden test, or a reference to ``solutions/``. The handout is refused if it finds any; ``hub release`` runs
the same scan over nbgrader's release folder before learners can fetch it.

Standard library only: this module is imported when the command line starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

# What a learner needs beside the installed library: the lessons, the exercises, the stored measurements the
# lessons cite. Everything else of the checkout (solutions/, classroom/, tests/, the git history) stays home.
LEARNER_PARTS = ("notebooks", "exercises", "results", "LICENSE")
MARKER = ".attention-course-handout"  # a folder holding it may be rewritten by the next handout
SOLUTION_BLOCK = re.compile(r"### BEGIN SOLUTION[^\n]*\n(?P<body>.*?)### END SOLUTION", re.DOTALL)
HIDDEN_MARKER = "### BEGIN HIDDEN TESTS"
# Sentences that send a learner to the worked solutions; the exercises and lesson 00 have these shapes.
SOLUTION_SENTENCES = (
    re.compile(r"\s*(?:The worked solutions are in|Worked solutions:)\s+`solutions/[^`]*`\.", re.IGNORECASE),
    re.compile(r",? and a worked solution in `solutions/`(?=\.)"),
)
SOLUTIONS_PATH = re.compile(r"(?<![\w-])solutions/")
MIN_BLOCK_CHARS = 40  # a one-line answer such as `return x` is not a fingerprint: it occurs in lessons too


def scrub_text(text: str) -> str:
    """``text`` without the sentences that point a learner at ``solutions/``."""
    for pattern in SOLUTION_SENTENCES:
        text = pattern.sub("", text)
    return text


def _scrub_metadata(metadata: dict) -> None:
    for key, value in list(metadata.items()):
        if isinstance(value, dict):
            _scrub_metadata(value)
        elif isinstance(value, str) and SOLUTIONS_PATH.search(value):
            del metadata[key]  # e.g. the exercises' "generated_from": "solutions/NN_x.ipynb"


def scrub_notebook(notebook: dict) -> dict:
    """A notebook (as JSON) with no markdown sentence or metadata field naming ``solutions/``."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            cell["source"] = scrub_text(_source(cell))
    _scrub_metadata(notebook.get("metadata", {}))
    return notebook


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def scrub_file(source: Path, target: Path | None = None) -> None:
    """Write ``source`` scrubbed (``scrub_notebook``) to ``target`` (default: in place), in Jupyter's own layout."""
    notebook = scrub_notebook(json.loads(Path(source).read_text(encoding="utf-8")))
    Path(target or source).write_text(json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                                      encoding="utf-8")


def _normalise(text: str) -> str:
    return " ".join(text.split())


def solution_fingerprints(root: Path) -> tuple[dict[str, str], int]:
    """Normalised solution blocks of the checkout's solution notebooks -> the notebook each comes from, and how
    many blocks the lessons themselves print (a lesson derives some answers on the page: those are taught, not
    secret, and are left out of the fingerprints)."""
    lessons = " ".join(_normalise(_readable_text(p) or "") for p in sorted((Path(root) / "notebooks").glob("*.ipynb")))
    found, taught = {}, 0
    for path in sorted((Path(root) / "solutions").glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            for match in SOLUTION_BLOCK.finditer(_source(cell)):
                body = _normalise(match["body"])
                if len(body) < MIN_BLOCK_CHARS:
                    continue
                if body in lessons:
                    taught += 1
                else:
                    found[body] = path.name
    return found, taught


def hidden_test_lines() -> list[str]:
    """The hidden cases' assertions, as nbgrader's source notebooks hold them (empty without the kit)."""
    try:
        from .assignments import HIDDEN_CASES
    except ImportError:  # the grading kit needs nbformat; without it there are no hidden tests to leak
        return []
    return [_normalise(expr) for cases in HIDDEN_CASES.values() for expr, _ in cases]


def _readable_text(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if path.suffix == ".ipynb":  # compare cell sources as a learner reads them, not JSON-escaped
        try:
            notebook = json.loads(raw)
            return "\n".join(_source(c) for c in notebook.get("cells", [])) + "\n" + json.dumps(notebook.get("metadata", {}))
        except (ValueError, KeyError, TypeError):
            pass
    return raw.decode("utf-8", errors="replace")


def find_leaks(folder: Path, root: Path) -> list[str]:
    """Every file under ``folder`` that gives away a solution or a hidden test, each with the reason.

    ``root``: the course checkout (its solutions/ hold the worked answers). An empty list means the folder is
    safe to hand out. A folder with no file at all is refused too (a scan that read nothing proves nothing).
    """
    folder = Path(folder)
    blocks, _ = solution_fingerprints(root)
    if not blocks:
        raise ValueError(f"no solution blocks found in {Path(root) / 'solutions'}: cannot tell what a leak would look like")
    hidden = hidden_test_lines()
    leaks, scanned = [], 0
    for path in sorted(p for p in folder.rglob("*") if ".git" not in p.relative_to(folder).parts):
        relative = path.relative_to(folder)
        if "solutions" in relative.parts:
            leaks.append(f"{relative}: a solutions folder")
            continue
        if not path.is_file():
            continue
        text = _readable_text(path)
        if text is None:
            continue
        scanned += 1
        flat = _normalise(text)
        if (block := next((b for b in blocks if b in flat), None)) is not None:
            leaks.append(f"{relative}: holds a worked solution of {blocks[block]} ({block[:60]}...)")
        elif HIDDEN_MARKER in text or any(line in flat for line in hidden):
            leaks.append(f"{relative}: holds a hidden test")
        elif SOLUTIONS_PATH.search(text):
            leaks.append(f"{relative}: names solutions/ ({_context(text)})")
    if not scanned:
        leaks.append(f"{folder}: no file to hand out")
    return leaks


def _context(text: str) -> str:
    match = SOLUTIONS_PATH.search(text)
    return _normalise(text[max(0, match.start() - 50): match.end() + 40])


def _copy_part(source: Path, target: Path) -> None:
    if source.is_file():
        shutil.copy2(source, target)
        return
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if ".ipynb_checkpoints" in relative.parts or "__pycache__" in relative.parts or path.name.endswith(".bak"):
            continue
        destination = target / relative
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        elif path.suffix == ".ipynb":
            destination.parent.mkdir(parents=True, exist_ok=True)
            scrub_file(path, destination)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)


README = """# Attention in Parallel: your copy

The lessons (`notebooks/`) and the exercises (`exercises/`) of the course, handed out by your instructor.
Edit them freely: a later hand-out merges the instructor's changes without overwriting yours.
"""


def make_handout(root: Path, dest: Path, commit: bool = True) -> list[str]:
    """Write the learner folder ``dest`` from the course checkout ``root``; returns the files written.

    ``dest`` must be new, empty, or an earlier hand-out (it holds the marker file): its files are replaced and,
    with ``commit``, the change is committed on top of its history, so nbgitpuller merges it into learners'
    copies. Raises ``ValueError`` (and leaves no commit) if the result gives away any solution.
    """
    root, dest = Path(root).resolve(), Path(dest).resolve()
    if dest == root or root in dest.parents:
        raise ValueError(f"{dest} is inside the course checkout {root}: learners would be handed the checkout")
    if dest.exists() and any(dest.iterdir()) and not (dest / MARKER).exists():
        raise ValueError(f"{dest} is not empty and is not an earlier hand-out (no {MARKER}): choose a new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".handout-", dir=dest.parent))  # 0700: scanned before anyone sees it
    try:
        for part in LEARNER_PARTS:
            if (root / part).exists():
                _copy_part(root / part, staging / part)
        (staging / "README.md").write_text(README, encoding="utf-8")
        (staging / MARKER).write_text("written by `attention-course handout`; the next hand-out replaces this folder\n")
        leaks = find_leaks(staging, root)
        if leaks:
            raise ValueError("the hand-out would give away solutions; nothing was written or committed:\n  "
                             + "\n  ".join(leaks))
        dest.mkdir(exist_ok=True)
        for entry in dest.iterdir():
            if entry.name != ".git":
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        for entry in staging.iterdir():
            shutil.move(str(entry), str(dest / entry.name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _readable_by_all(dest)
    if commit:
        _commit(dest)
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file() and ".git" not in p.parts)


def _readable_by_all(folder: Path) -> None:
    """Learners (other Unix users) read the hand-out; nobody but its owner writes it."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def _commit(folder: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "attention-course", "GIT_AUTHOR_EMAIL": "handout@attention-course",
           "GIT_COMMITTER_NAME": "attention-course", "GIT_COMMITTER_EMAIL": "handout@attention-course"}

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True, env=env)

    if not (folder / ".git").exists():
        git("init", "-q", "-b", "main")
    git("add", "-A")
    if git("status", "--porcelain").stdout.strip():
        git("commit", "-q", "-m", "hand-out from attention-course")
    _readable_by_all(folder / ".git")


# --- command line (wired into `attention-course handout ...`) ----------------------------------------------

def add_parser(commands) -> None:
    handout = commands.add_parser(
        "handout", help="write the learners' folder (lessons and exercises, no solutions) for nbgitpuller or a share")
    handout.add_argument("dest", type=Path, help="the folder to write, outside the checkout (e.g. /opt/attention-course/handout)")
    handout.add_argument("--root", type=Path, help="the course repository (default: found from the current folder)")
    handout.add_argument("--no-git", action="store_true", help="a plain folder (no git commit), e.g. for a USB stick")
    handout.add_argument("--check", action="store_true", help="only scan DEST for solution text; exit 1 if any")


def run(args) -> int:
    from ..core.course import find_root

    root = args.root or find_root()
    if args.check:
        leaks = find_leaks(args.dest, root)
        print("\n".join(leaks) if leaks else f"{args.dest}: no solution, hidden test or solutions/ reference found")
        return 1 if leaks else 0
    written = make_handout(root, args.dest, commit=not args.no_git)
    print(f"wrote {len(written)} files to {args.dest}: no solution, hidden test or solutions/ reference in them")
    return 0
