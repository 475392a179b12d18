"""A room on one machine where no learner reads another's work (classroom/jupyterhub_config.py uses this).

Each learner is a Unix user of the hub machine with a private home; their JupyterLab runs as that user, never
as root. They run the course from a *learner environment* outside the instructor's checkout (default
``/opt/attention-course``): a virtual environment built from a Python every user can run, with the course
library installed as a package (not an editable install pointing into the checkout), and a hand-out folder
with the lessons and exercises and no solutions. The checkout, with its solutions/, the hub's database and
cookie secret and the instructor's nbgrader course stay where learners cannot read them.

Standard library only at import time: the command line imports this module to build its parser.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

DEFAULT_PREFIX = Path("/opt/attention-course")
COURSE_ID = "attention-course"
KERNEL_NAME = "Python 3 (attention-course)"
# What a learner's server imports: the hub's single-user server, the lab, the grader's tab, the link puller,
# the course itself.
LEARNER_IMPORTS = ("jupyterhub", "jupyterlab", "nbgrader", "nbgitpuller", "attention_course")
NOBODY = "nobody"
# Library files that hold the hidden tests (the grading kit): removed from the learners' installed copy.
INSTRUCTOR_ONLY = ("tools/assignments.py",)  # the module that holds the hidden tests (HIDDEN_CASES)
LEARNERS_GROUP = "attention-learners"  # the hub lets in only members (and its admins)


def env_dir(prefix: Path) -> Path:
    return Path(prefix) / "venv"


def handout_dir(prefix: Path) -> Path:
    return Path(prefix) / "handout"


def exchange_dir(prefix: Path) -> Path:
    """nbgrader's exchange: learners write their submissions here, each in a folder only they and the
    instructor know (nbgrader's inbound is write-only for learners)."""
    return Path(prefix) / "exchange"


def jupyter_config_dir(prefix: Path) -> Path:
    """The learners' Jupyter configuration (nbgrader's course id and exchange): a copy of classroom/jupyter/."""
    return Path(prefix) / "jupyter"


def git_config(prefix: Path) -> Path:
    """Learners' git configuration (``GIT_CONFIG_GLOBAL``): the hand-out, which root owns, is named safe.

    git refuses a repository that another user owns ("dubious ownership"), and nbgitpuller's clone and fetch
    run ``git upload-pack`` on the hand-out, which drops command-line configuration: only a global or system
    file can name it safe. This one includes the learner's own ~/.gitconfig.
    """
    return Path(prefix) / "gitconfig"


def js_dir(prefix: Path) -> Path:
    """d3 and jQuery for the attention views (what ``ATTENTION_COURSE_JS_DIR`` points the library at)."""
    return Path(prefix) / "js"


# --- who can read what ----------------------------------------------------------------------------------

def closed_to_others(path: Path, execute: bool = False) -> Path | None:
    """The first part of ``path`` (symlinks followed) that a user other than its owner and group cannot pass:
    a folder without o+x or the file itself without o+r (o+x too with ``execute``). None: others can read it."""
    real = Path(os.path.realpath(path))
    if not real.exists():
        return real
    for folder in [*reversed(real.parents), real] if real.is_dir() else reversed(real.parents):
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            return folder
    if real.is_dir():
        return None if os.stat(real).st_mode & stat.S_IROTH else real
    mode = os.stat(real).st_mode
    needed = stat.S_IROTH | (stat.S_IXOTH if execute else 0)
    return None if mode & needed == needed else real


def learner_env_problems(prefix: Path, try_as: str | None = NOBODY) -> list[str]:
    """Why learners' servers could not start from the learner environment under ``prefix`` (empty: they can).

    ``try_as``: when running as root, also start the environment's Python as this unprivileged user and import
    what a learner's server needs, the proof that file modes alone cannot give.
    """
    env = env_dir(prefix)
    python = env / "bin" / "python"
    build = f"build it with `sudo .venv/bin/attention-course hub env --prefix {prefix}` (book/instructors/hub.md)"
    if not python.exists():
        return [f"no learner environment at {env}: {build}"]
    problems = []
    if (blocked := closed_to_others(python, execute=True)) is not None:
        problems.append(f"learners cannot run {python} (-> {os.path.realpath(python)}): {blocked} is closed to "
                        "other users. Build the environment from a Python every user can run, e.g. "
                        f"`--python /usr/bin/python3`, {build}")
    home = _venv_home(env)
    if home is not None and (blocked := closed_to_others(home)) is not None:
        problems.append(f"the environment's base Python {home} is closed to other users at {blocked}: {build}")
    if not (env / "bin" / "jupyterhub-singleuser").exists():
        problems.append(f"{env} has no jupyterhub-singleuser: {build}")
    if not problems and try_as and os.geteuid() == 0:
        code = "import " + ", ".join(LEARNER_IMPORTS)
        tried = run_as(try_as, [str(python), "-I", "-c", code], cwd="/")
        if tried.returncode != 0:
            problems.append(f"as the user {try_as}, {python} -c '{code}' failed: {tried.stderr.strip()[-600:]}")
    return problems


def _venv_home(env: Path) -> Path | None:
    try:
        lines = (env / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return None
    values = {key.strip(): value.strip() for key, value in (line.split("=", 1) for line in lines if "=" in line)}
    return Path(values["home"]) if values.get("home") else None


def exposed_secrets(checkout: Path, state: Path) -> list[str]:
    """What a learner (any other user) could read of the instructor's side: solutions/, the checkout's git
    history, the hidden tests (INSTRUCTOR_ONLY, bytecode too), the hub's private state. Empty: nothing."""
    private = [Path(checkout) / "solutions", Path(checkout) / ".git", Path(state),
               *instructor_only_files(Path(checkout) / "attention_course")]
    return [f"{path} is readable by every user of this machine (it should be closed: `chmod 700 {_closable(path)}`)"
            for path in private if path.exists() and closed_to_others(path) is None]


def _closable(path: Path) -> Path:
    if path.suffix in (".py", ".pyc"):  # a hidden-test module inside the checkout: close the checkout itself
        return next(parent for parent in path.parents if parent.name == "attention_course").parent
    return path.parent if path.name in ("solutions", ".git") else path


def run_as(user: str, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``command`` as ``user`` (with their groups and home), from root; output captured as text."""
    account = pwd.getpwnam(user)
    env = {"HOME": account.pw_dir, "USER": user, "LOGNAME": user, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    env.update(kwargs.pop("env", {}))
    return subprocess.run(["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups",
                           "--reset-env", "--", *command], capture_output=True, text=True, env=env, **kwargs)


# --- learners' accounts and homes ------------------------------------------------------------------------

def secure_home(username: str) -> Path:
    """Make ``username``'s home private (0700) before their server starts; refuse a home they do not own.

    Debian's ``useradd -m`` and ``adduser`` create homes that every user can read (mode 0755): without this,
    a learner lists a classmate's notebooks.
    """
    account = pwd.getpwnam(username)
    home = Path(account.pw_dir)
    if account.pw_uid == 0:
        raise PermissionError(f"{username} is root: a learner's server never runs as root")
    if not home.is_dir():
        raise FileNotFoundError(f"{username} has no home folder {home}: create the account with `attention-course hub learners add`")
    info = home.stat()
    if info.st_uid != account.pw_uid:
        raise PermissionError(f"{home} belongs to uid {info.st_uid}, not to {username}: refusing to start their server")
    if stat.S_IMODE(info.st_mode) & 0o077:
        home.chmod(0o700)
    return home


def add_learners(names: list[str]) -> dict[str, str]:
    """Create a Unix account with a private home and a random password for each name; returns the passwords."""
    passwords = {}
    for name in names:
        subprocess.run(["groupadd", "-f", LEARNERS_GROUP], check=True, capture_output=True, text=True)
        subprocess.run(["useradd", "--create-home", "--user-group", "--groups", LEARNERS_GROUP, "--shell", "/bin/bash",
                        "-K", "HOME_MODE=0700", name], check=True, capture_output=True, text=True)
        secure_home(name)
        passwords[name] = secrets.token_urlsafe(9)
    subprocess.run(["chpasswd"], input="".join(f"{n}:{p}\n" for n, p in passwords.items()), check=True,
                   capture_output=True, text=True)
    return passwords


def remove_learners(names: list[str]) -> None:
    """Delete the accounts and their homes (after the course; collect and grade first)."""
    for name in names:
        subprocess.run(["userdel", "--remove", name], check=True, capture_output=True, text=True)


# --- the learner environment ------------------------------------------------------------------------------

def learner_env_commands(root: Path, prefix: Path, python: Path) -> list[list[str]]:
    """The commands that build the learner environment: the pinned packages and the course as a package."""
    env_python = str(env_dir(prefix) / "bin" / "python")
    pip = [env_python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    return [
        [str(python), "-m", "venv", str(env_dir(prefix))],
        [*pip, "-r", str(root / "requirements.txt")],
        [*pip, "--no-deps", "-r", str(root / "requirements-nodeps.txt")],
        [*pip, "--no-deps", "--no-build-isolation", str(root)],  # a copy of the library, not a link to the checkout
        [env_python, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3", "--display-name", KERNEL_NAME],
        [env_python, "-m", "attention_course.tools.lab_settings"],  # widget state saved with each notebook (make setup)
    ]


def build_learner_env(root: Path, prefix: Path, python: Path, progress=print) -> list[str]:
    """Build (or update) the learner environment and hand-out under ``prefix``; returns what still blocks it."""
    root, prefix = Path(root).resolve(), Path(prefix).resolve()
    if prefix == root or root in prefix.parents:
        raise ValueError(f"{prefix} is inside the checkout {root}: learners must not need to read the checkout")
    if (blocked := closed_to_others(python, execute=True)) is not None:
        raise ValueError(f"{python} cannot be run by other users ({blocked} is closed): pass --python with one "
                         "they can run, e.g. /usr/bin/python3")
    prefix.mkdir(parents=True, exist_ok=True)
    had_build = (root / "build").exists()
    for command in learner_env_commands(root, prefix, python):
        progress("$ " + " ".join(command))
        subprocess.run(command, check=True)
    if not had_build:  # setuptools leaves its build folder in the checkout
        shutil.rmtree(root / "build", ignore_errors=True)
    for package in env_dir(prefix).glob("lib/python3*/site-packages/attention_course"):
        for found in instructor_only_files(package):  # the installed copy is the learners': no hidden tests in it
            found.unlink()
    install_course_files(root, prefix, progress)
    return learner_env_problems(prefix)


def instructor_only_files(package: Path) -> list[Path]:
    """The files of an installed copy of the course that hold the hidden tests: the modules of INSTRUCTOR_ONLY
    and the bytecode pip compiled from them (which holds the same strings)."""
    found = []
    for relative in INSTRUCTOR_ONLY:
        module = package / relative
        found += [module] if module.exists() else []
        found += sorted(module.parent.glob(f"__pycache__/{module.stem}.*.pyc"))
    return found


def install_course_files(root: Path, prefix: Path, progress=print) -> None:
    """Beside the environment: the attention views' scripts, the learners' Jupyter configuration, the hand-out
    (no solutions), the exchange; everything readable by learners and writable only by its owner (root)."""
    from .handout import make_handout

    root, prefix = Path(root).resolve(), Path(prefix).resolve()
    for package in ("d3", "jquery"):  # book/offline/node_modules after `make setup`
        source = root / "book" / "offline" / "node_modules" / package
        if source.is_dir():
            shutil.copytree(source, js_dir(prefix) / package, dirs_exist_ok=True)
    shutil.copytree(root / "classroom" / "jupyter", jupyter_config_dir(prefix), dirs_exist_ok=True)
    written = make_handout(root, handout_dir(prefix))
    progress(f"hand-out: {len(written)} files in {handout_dir(prefix)}")
    git_config(prefix).write_text(
        "# Written by `attention-course hub env`: learners' git reads it (GIT_CONFIG_GLOBAL, set by the hub).\n"
        f"[safe]\n\tdirectory = {handout_dir(prefix) / '.git'}\n[include]\n\tpath = ~/.gitconfig\n")
    for path in [prefix, *prefix.rglob("*")]:
        if not path.is_symlink() and exchange_dir(prefix) not in (path, *path.parents):
            mode = stat.S_IMODE(path.stat().st_mode)
            path.chmod((mode | 0o055 if path.is_dir() or mode & 0o100 else mode | 0o044) & ~0o022)
    prepare_exchange(exchange_dir(prefix))


def prepare_exchange(exchange: Path) -> None:
    """nbgrader's exchange, made by root before any learner logs in.

    nbgrader wants the exchange's root open to all (0777); the sticky bit (which nbgrader's check leaves alone)
    stops a learner from renaming the course's folder away and putting their own in its place, and the course's
    folders exist already, owned by root: outbound readable by all, inbound writable but not listable.
    """
    course = exchange / COURSE_ID
    for folder, mode in ((exchange, 0o1777), (course, 0o755), (course / "outbound", 0o755), (course / "inbound", 0o2733)):
        folder.mkdir(exist_ok=True)
        folder.chmod(mode)


# --- nbgrader through the hub's exchange ------------------------------------------------------------------

def nbgrader(course: Path, exchange: Path, *args: str) -> int:
    """Run an nbgrader command in the instructor's course folder against the hub's exchange (no venv to activate)."""
    command = [sys.executable, "-m", "nbgrader", *args, f"--Exchange.root={exchange}",
               f"--CourseDirectory.course_id={COURSE_ID}"]
    return subprocess.run(command, cwd=course).returncode


def refuse_forged_submissions(exchange: Path) -> list[str]:
    """Move aside every inbound submission whose owner is not the learner its name claims, before nbgrader collects.

    The inbound folder is writable by every learner, and nbgrader only warns about a wrong owner: without this, a
    learner could submit in a classmate's name. The refused folder is the instructor's alone (0700)."""
    inbound, refused_dir = exchange / COURSE_ID / "inbound", exchange / COURSE_ID / "refused"
    refused = []
    for entry in sorted(inbound.iterdir()) if inbound.is_dir() else []:
        claimed, uid = entry.name.split("+", 1)[0], entry.lstat().st_uid
        try:
            owner = pwd.getpwuid(uid).pw_name
        except KeyError:
            owner = f"uid {uid}"
        if owner != claimed:
            refused_dir.mkdir(mode=0o700, exist_ok=True)
            shutil.move(str(entry), str(refused_dir / entry.name))
            refused.append(f"{entry.name} was written by {owner}, not {claimed}: moved to {refused_dir}")
    return refused


def release(course: Path, assignment: str, exchange: Path, root: Path | None = None) -> int:
    """Release an assignment to the hub's exchange, after taking out sentences that name solutions/ and
    refusing if the release still holds solution text (nbgrader's release/ is generated: rewriting it is safe)."""
    from ..core.course import find_root
    from .handout import find_leaks, scrub_file

    folder = Path(course) / "release" / assignment
    if closed_to_others(course) is None:  # its source/ holds the hidden tests, gradebook.db every grade
        raise ValueError(f"learners could read {course} (its hidden tests and gradebook): `chmod 700 {course}` first")
    if not folder.is_dir():
        raise FileNotFoundError(f"no {folder}: run `attention-course classroom init {course}` first")
    for path in sorted(folder.rglob("*.ipynb")):
        scrub_file(path)
    leaks = find_leaks(folder, root or find_root())
    if leaks:
        raise ValueError(f"{folder} would give learners solutions; not released:\n  " + "\n  ".join(leaks))
    return nbgrader(course, exchange, "release_assignment", assignment, "--force")


# --- command line (wired into `attention-course hub ...`) --------------------------------------------------

def add_parser(commands) -> None:
    hub = commands.add_parser("hub", help="a room on one machine: learner environment, accounts, release and collect")
    sub = hub.add_subparsers(dest="hub_command", required=True)
    env = sub.add_parser("env", help="build the learner environment and hand-out (as root; outside the checkout)")
    env.add_argument("--prefix", type=Path, default=DEFAULT_PREFIX, help="where (default %(default)s)")
    env.add_argument("--python", type=Path, default=Path("/usr/bin/python3"),
                     help="a Python 3.11+ every user can run (default %(default)s)")
    env.add_argument("--check", action="store_true", help="only check that learners can start from it")
    learners = sub.add_parser("learners", help="create or remove learners' Unix accounts (private homes)")
    learners.add_argument("action", choices=["add", "remove"])
    learners.add_argument("names", nargs="+")
    for name, what in (("release", "release an assignment to the hub's exchange (no solutions in it)"),
                       ("collect", "collect every learner's latest submission into the course's submitted/")):
        command = sub.add_parser(name, help=what)
        command.add_argument("course", type=Path, help="the course folder made by `attention-course classroom init`")
        command.add_argument("assignment", help="e.g. lesson02")
        command.add_argument("--exchange", type=Path, help="the hub's exchange (default: ATTENTION_HUB_PREFIX/exchange)")


def default_exchange() -> Path:
    """The exchange the hub's configuration uses (ATTENTION_HUB_PREFIX, default /opt/attention-course)."""
    return exchange_dir(Path(os.environ.get("ATTENTION_HUB_PREFIX", DEFAULT_PREFIX)))


def run(args) -> int:
    if args.hub_command == "env":
        if args.check:
            problems = learner_env_problems(args.prefix)
        else:
            from ..core.course import find_root

            if os.geteuid() != 0:
                raise ValueError("`hub env` writes under a system folder and checks as another user: run it as root")
            problems = build_learner_env(find_root(), args.prefix, args.python)
        print("\n".join(f"FIX {p}" for p in problems) or f"learners can start from {env_dir(args.prefix)}")
        return 1 if problems else 0
    if args.hub_command == "learners":
        if os.geteuid() != 0:
            raise ValueError("creating or removing accounts needs root")
        if args.action == "remove":
            remove_learners(args.names)
            print(f"removed {len(args.names)} accounts and their homes")
            return 0
        for name, password in add_learners(args.names).items():
            print(f"{name}\t{password}")
        return 0
    exchange = args.exchange or default_exchange()
    if args.hub_command == "release":
        return release(args.course, args.assignment, exchange)
    for refusal in refuse_forged_submissions(exchange):
        print(f"refused: {refusal}")
    return nbgrader(args.course, exchange, "collect", args.assignment)
