"""Where a class's notebooks are graded: nbgrader's autograde with the verdicts of ``grading.isolated``,
run as a throwaway Unix user that sees nothing of the course but a read-only copy of the library.

- ``adopt(learner, release)``: a learner's notebook in the release's shape (cells, ids, nbgrader metadata), so
  that a notebook from exercises/ (no metadata), a deleted or copied test cell, or edited metadata grades the
  learner's answers, not the accident. Each answer cell is found by the names it defines; the learner's extra
  code cells keep their place; test and set-up cells come from the release (nbgrader restores them anyway).
- ``IsolatedVerdicts``: an nbgrader preprocessor that takes the place of nbgrader's ``Execute``: it builds the
  job (the learner's cells, each test cell's task and hidden cases) and writes each test cell's verdict as its
  output (a stream when it passed, an error when it did not), so nbgrader's own ``SaveAutoGrades`` scores it.
- ``run_job(job)``: ``python -I -m attention_course.grading.isolated`` as root would be the easy way; instead,
  as root it makes a throwaway user (``useradd``), and in new mount, PID and network namespaces it hides
  /root, /home, /work-style trees (the repository, the course folder with its gradebook, source and
  submissions) behind empty file systems, mounts Python, the virtual environment and a plain copy of the
  library read-only, drops to that user (``setpriv``, no new privileges) and deletes the user afterwards.
  Not root, or without ``unshare``: the job runs as the current user and the verdict says so.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer, Unicode

CHECK_ANSWER = __import__("re").compile(
    r"""^\s*check(?:_challenge)?\(\s*["'](?P<task>[\w.]+)["']\s*,\s*(?P<answer>[A-Za-z_]\w*)\s*[,)]""", __import__("re").M)
SANDBOXED = "sandboxed"  # run_job's modes: a throwaway user in namespaces, or...
SAME_USER = "same user (not root: no throwaway user; use only for a trusted class)"


# ------------------------------------------------------------------ a learner's notebook in the release's shape


def _defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        import re

        return set(re.findall(r"^(?:def|class)\s+([A-Za-z_]\w*)", source, re.M))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def adopt(learner: nbformat.NotebookNode, release: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The learner's answers in the release's cells (see the module docstring)."""
    answer_cells = {}  # release index -> the names its answer defines
    for index, cell in enumerate(release.cells):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            answer_cells[index] = _defined_names(cell.source) - {"nn"}
    release_sources = {cell.source.strip() for cell in release.cells}
    taken: dict[int, str] = {}
    extras: dict[int | None, list[str]] = {}
    anchor = None
    for cell in learner.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        defined = _defined_names(cell.source)
        match = next((i for i, names in answer_cells.items() if names and names & defined), None)
        if match is not None:
            taken[match] = cell.source  # the last definition wins, as when the notebook runs top to bottom
            anchor = match
        elif not CHECK_ANSWER.search(cell.source) and cell.source.strip() not in release_sources:
            extras.setdefault(anchor, []).append(cell.source)
    adopted = nbformat.v4.new_notebook(metadata=dict(release.metadata))
    first_answer = min(answer_cells, default=None)
    for index, cell in enumerate(release.cells):
        if index == first_answer:
            adopted.cells += [nbformat.v4.new_code_cell(s) for s in extras.get(None, [])]
        new = nbformat.from_dict(json.loads(json.dumps(cell)))
        if index in taken:
            new.source = taken[index]
        adopted.cells.append(new)
        if index in answer_cells:
            adopted.cells += [nbformat.v4.new_code_cell(s) for s in extras.get(index, [])]
    for number, cell in enumerate(adopted.cells):
        if "nbgrader" not in cell.metadata:
            cell.id = f"learner{number:03d}"
    return adopted


# ------------------------------------------------------------------ the job and its verdicts


def _hidden_cases(source: str) -> list[list[str]]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    cases = []
    for node in tree.body:
        if isinstance(node, ast.Assert):
            why = node.msg.value if isinstance(node.msg, ast.Constant) else "a hidden case"
            cases.append([ast.unparse(node.test), str(why)])
    return cases


def job_from_notebook(notebook: nbformat.NotebookNode, timeout: int) -> dict:
    """The learner's code cells and each graded cell's task, answer name and hidden cases."""
    cells, tasks = [], []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        match = CHECK_ANSWER.search(cell.source)
        if meta.get("grade") and match:
            tasks.append({"task": match["task"], "answer": match["answer"], "cell": index,
                          "hidden": _hidden_cases(cell.source), "grade_id": meta.get("grade_id")})
        elif not meta.get("grade"):
            source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            cells.append({"index": index, "source": source})
    return {"cells": cells, "tasks": tasks, "timeout": int(timeout), "nonce": secrets.token_hex(16)}


def notebook_language(notebook: nbformat.NotebookNode) -> str:
    """The language of an assignment's checks: the one its notebook's metadata records (a course made from the
    Japanese edition, ``classroom init --solutions solutions-ja``), else English."""
    from ..core.language import DEFAULT, metadata_language

    return metadata_language(notebook.metadata) or DEFAULT


def _library_copy() -> Path:
    """A plain, read-only copy of the installed library (no editable finder points into the repository), without
    the hidden tests (hub.instructor_only_files). It sits in a 0700 folder of its own, so no other user of the host
    reads it while a class is graded; the namespace mounts only the inner folder for the throwaway users."""
    import attention_course

    from .hub import instructor_only_files

    target = Path(tempfile.mkdtemp(prefix="attention-course-lib-")) / "lib"
    shutil.copytree(Path(attention_course.__file__).parent, target / "attention_course",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in instructor_only_files(target / "attention_course"):
        path.unlink()
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


SYSTEM_FOLDERS = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/proc", "/dev", "/sys",
                  "/tmp", "/run", "/var", "/boot", "/nonexistent"}


def _hidden_trees(extra: list[Path]) -> list[str]:
    """Folders the learner's code must not see: homes, the repository, the course folder, submissions."""
    from ..core.course import find_root

    trees = {"/root", "/home", "/srv", "/mnt", "/media", "/var/lib", "/opt"}
    # every other top-level folder too (another checkout of the course, e.g. /work/...): only the system's own
    # folders stay; the Python environment is mounted back read-only (_namespace_script's `keep`)
    trees |= {os.path.join("/", name) for name in os.listdir("/") if os.path.join("/", name) not in SYSTEM_FOLDERS
              and os.path.isdir(os.path.join("/", name)) and not os.path.islink(os.path.join("/", name))}
    with contextlib.suppress(Exception):
        trees.add(str(find_root()))
    venv_home = os.path.dirname(os.path.realpath(sys.prefix))  # a virtual environment inside a repository
    if any(os.path.exists(os.path.join(venv_home, name)) for name in ("solutions", ".git", "pyproject.toml")):
        trees.add(venv_home)
    trees |= {str(Path(p).resolve()) for p in extra}
    trees |= {os.path.dirname(str(Path(p).resolve())) for p in extra}  # the course folder's siblings, too
    trees = sorted(t for t in trees if os.path.isdir(t) and t not in ("/", "/usr", "/tmp", "/proc", "/dev", "/etc")
                   and not t.startswith("/tmp/"))  # /tmp gets a fresh, empty file system of its own
    return [t for t in trees if not any(t.startswith(other + os.sep) for other in trees)]  # outermost only


def sandbox_available() -> bool:
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("unshare", "setpriv", "useradd", "userdel"))


def run_job(job: dict, hide: list[Path] = ()) -> tuple[list[dict], str]:
    """Grade one notebook's ``job``; returns (verdicts, mode)."""
    job = dict(job, key="one")
    results, mode = run_jobs([job], hide)
    return results["one"], mode


def run_jobs(jobs: list[dict], hide: list[Path] = ()) -> tuple[dict[str, list[dict]], str]:
    """Grade many notebooks' jobs (each with a unique "key") in one fresh interpreter: {key: verdicts}, mode.

    As root: one throwaway user per notebook, made here and deleted afterwards; the interpreter runs in new
    mount, PID and network namespaces and drops to each notebook's user before that notebook's code runs.
    """
    from ..grading.isolated import encode_jobs, task_limit

    limit = sum(task_limit(t["task"], float(j["timeout"])) + 10 for j in jobs for t in j["tasks"]) + 120
    library = _library_copy()
    bootstrap = ("import sys; sys.path.insert(0, sys.argv[1]); from attention_course.grading.isolated import main; "
                 "sys.exit(main())")
    python = os.path.join(sys.prefix, "bin", "python")
    users: list[str] = []
    mode = SANDBOXED if sandbox_available() else SAME_USER
    try:
        if mode == SANDBOXED:
            for job in jobs:
                users.append(f"acg{secrets.token_hex(4)}")
                subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                                "/usr/sbin/nologin", "--user-group", users[-1]], check=True, capture_output=True)
                entry = __import__("pwd").getpwnam(users[-1])
                job["uid"], job["gid"] = entry.pw_uid, entry.pw_gid
            command = ["unshare", "--mount", "--pid", "--fork", "--net", "--ipc", "--propagation", "private", "sh", "-ec",
                       _namespace_script(python, bootstrap, library, _hidden_trees(list(hide)))]
        else:
            command = [python, "-I", "-c", bootstrap, str(library)]
        done = subprocess.run(command, input=encode_jobs(jobs), capture_output=True, timeout=limit,
                              cwd=tempfile.gettempdir())
        return _verdicts(jobs, done.stdout.decode(errors="replace"), done.returncode,
                         done.stderr.decode(errors="replace")), mode
    except subprocess.TimeoutExpired:
        return {job["key"]: [{"task": t["task"], "passed": False, "message": f"{t['task']}: stopped: grading ran past "
                              f"{limit:.0f} s"} for t in job["tasks"]] for job in jobs}, mode
    finally:
        for user in users:
            subprocess.run(["userdel", "--force", user], capture_output=True)
        shutil.rmtree(library.parent, ignore_errors=True)  # the 0700 folder around the copy


def _namespace_script(python: str, bootstrap: str, library: Path, hidden: list[str]) -> str:
    """The shell run as root inside the new namespaces: mounts, then the grader (root without new privileges;
    it drops to each notebook's throwaway user before that notebook's code runs)."""
    keep = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sysconfig.get_paths()["purelib"])}
                  | {os.path.abspath(sys.prefix)})
    quote = __import__("shlex").quote
    lines = ["stage=$(mktemp -d /run/acg-stage-XXXXXX)", "mount -t tmpfs -o mode=700 tmpfs \"$stage\""]
    for number, path in enumerate(keep):  # what must stay visible, staged before the trees above it are hidden
        lines += [f"mkdir -p \"$stage/{number}\"", f"mount --bind {quote(path)} \"$stage/{number}\""]
    lines += ["mkdir -p \"$stage/lib\"", f"mount --bind {quote(str(library))} \"$stage/lib\""]
    for tree in hidden:
        lines.append(f"mount -t tmpfs -o mode=755,size=1m tmpfs {quote(tree)}")
    lines.append("mount -t tmpfs -o mode=1777 tmpfs /tmp")
    lines += [f"mount -t tmpfs -o mode=1777 tmpfs {shared} 2>/dev/null || true" for shared in ("/dev/shm", "/var/tmp")]
    lines.append("mount -t proc proc /proc")
    for number, path in enumerate(keep):
        lines += [f"mkdir -p {quote(path)} 2>/dev/null || true", f"mount --bind -o ro \"$stage/{number}\" {quote(path)}",
                  f"mount -o remount,bind,ro {quote(path)} 2>/dev/null || true"]
    lines += ["mkdir -p /tmp/lib /tmp/work", "mount --bind -o ro \"$stage/lib\" /tmp/lib",
              "mount -o remount,bind,ro /tmp/lib 2>/dev/null || true", "chmod 1777 /tmp/work", "cd /tmp/work",
              "exec setpriv --no-new-privs "
              f"env -i PATH=/usr/bin:/bin HOME=/tmp/work OMP_NUM_THREADS=1 {quote(python)} -I -c {quote(bootstrap)} "
              "/tmp/lib"]
    return "\n".join(lines)


def _verdicts(jobs: list[dict], stdout: str, returncode: int, stderr: str) -> dict[str, list[dict]]:
    found = {}
    nonces = {job["nonce"]: job for job in jobs}
    for line in stdout.splitlines():
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            answer = json.loads(line)
            job = nonces.get(answer.get("nonce"))
            if job is not None and answer.get("key") == job["key"] and len(answer["results"]) == len(job["tasks"]):
                found[job["key"]] = answer["results"]
    why = " | ".join(stderr.strip().splitlines()[-3:])
    for job in jobs:
        if job["key"] not in found:
            found[job["key"]] = [{"task": t["task"], "passed": False, "message": f"{t['task']}: the grader could not "
                                  f"run this notebook (exit status {returncode}: {why})"} for t in job["tasks"]]
    return found


# Verdicts computed ahead for a whole class (grade_course), keyed by (student, assignment): the preprocessor
# below uses them instead of starting one interpreter per notebook.
PRECOMPUTED: dict[tuple[str, str], tuple[list[dict], str]] = {}


class IsolatedVerdicts(NbGraderPreprocessor):
    """nbgrader's Execute, replaced: each test cell's output is the verdict of ``grading.isolated``."""

    timeout = Integer(60, help="seconds each task may take (a build task's own limit is used when larger)").tag(config=True)
    hide = Unicode("", help="os.pathsep-separated folders to hide from learner code (the course folder)").tag(config=True)
    lang = Unicode("", help="the language of the checks' messages: en or ja (empty: the notebook's own)").tag(config=True)

    def preprocess(self, nb, resources):
        job = job_from_notebook(nb, self.timeout)
        if not job["tasks"]:
            return nb, resources
        job["lang"] = self.lang or notebook_language(nb)
        info = resources.get("nbgrader", {})
        ahead = PRECOMPUTED.pop((info.get("student"), info.get("assignment")), None)
        if ahead is not None and [r["task"] for r in ahead[0]] == [t["task"] for t in job["tasks"]]:
            results, mode = ahead
        else:
            results, mode = run_job(job, [Path(p) for p in self.hide.split(os.pathsep) if p])
        for task, result in zip(job["tasks"], results, strict=True):
            cell = nb.cells[task["cell"]]
            if result["passed"]:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=result["message"] + "\n")]
            else:
                cell.outputs = [nbformat.v4.new_output("error", ename="CheckFailed", evalue=result["message"],
                                                       traceback=[result["message"]])]
            if mode != SANDBOXED:
                cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=f"(graded as the {mode})\n"))
        return nb, resources
