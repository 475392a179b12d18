"""A room on one machine: JupyterHub (classroom/jupyterhub_config.py) on loopback.

As root (how a room's hub runs), the test builds a room the way book/instructors/hub.md does: a private
instructor checkout with solutions and an nbgrader course (hidden tests, gradebook), a learner environment and
hand-out outside it, two real Unix learners (created with useradd, removed afterwards), each logging in
through PAM and getting a server that runs as themselves. Learner A pulls the hand-out with nbgitpuller and
both submit an assignment through nbgrader's exchange; the instructor collects both, each under their own name.
Then, as A, it tries to read B's home, the solutions, the hidden tests, the gradebook, the hub's cookie secret
and database, B's and the hub's tokens from /proc and B's submission: every read must fail, and every read must
succeed as root (what a learner's kernel was under the old shared-password hub), so a wrong path cannot pass.
Stopping the hub must stop the proxy and both servers, checked by their process ids.
"""

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest
import requests

from attention_course.tools import handout
from attention_course.tools import hub as room
from attention_course.tools.assignments import init_course

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "classroom" / "jupyterhub_config.py"
PROXY = ROOT / "classroom" / "node_modules" / ".bin" / "configurable-http-proxy"
LESSON = "02_self_attention.ipynb"



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


class Hub:
    """A hub process started from CONFIG (or a copy of it) with the given settings; stopped by its pid."""

    def __init__(self, config: Path, workdir: Path, settings: dict[str, str]):
        self.token, self.port = secrets.token_hex(16), free_port()
        env = {key: value for key, value in os.environ.items() if key != "ATTENTION_HUB_IP"}  # the default address
        env = {**env, **settings, "ATTENTION_HUB_PORT": str(self.port),
               "ATTENTION_HUB_INTERNAL_PORT": str(free_port()), "ATTENTION_HUB_PROXY_API_PORT": str(free_port()),
               "ATTENTION_HUB_API_TOKEN": self.token, "PYTHONPATH": str(ROOT)}
        bin_dir = Path(sys.executable).parent
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        self.log_path = workdir / "hub.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(bin_dir / "jupyterhub"), "-f", str(config)], cwd=workdir, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.base}/hub/api"
        self.headers = {"Authorization": f"token {self.token}"}

        def up():
            try:
                return requests.get(f"{self.api}/", timeout=2).status_code == 200
            except requests.ConnectionError:
                assert self.process.poll() is None, self.log_path.read_text()[-3000:]
                return False

        wait_for(up, 60, "the hub")

    def spawn(self, name: str) -> None:
        reply = requests.post(f"{self.api}/users/{name}/server", headers=self.headers, timeout=60)
        assert reply.status_code in (201, 202), reply.text

    def ready(self, name: str) -> dict:
        def check():
            user = requests.get(f"{self.api}/users/{name}", headers=self.headers, timeout=10).json()
            server = user.get("servers", {}).get("", {})
            return server if server.get("ready") else None

        return wait_for(check, 120, f"{name}'s server")

    def stop(self, pids: list[int]) -> list[int]:
        """Stop the hub (it stops the learners' servers and the proxy); returns the pids still alive."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        leftovers = wait_for(lambda: [p for p in pids if p and alive(p)] or ["none"], 10, "leftovers")
        leftovers = [p for p in leftovers if p != "none"]
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        self.log.close()
        return leftovers


# --- the room as root: two real learners ------------------------------------------------------------------

PROBE = r"""
import json, os, sys
found = {}
for label, path in json.loads(sys.argv[1]).items():
    try:
        if os.path.isdir(path):
            found[label] = sorted(os.listdir(path))[:3] or ["(listed, empty)"]
        else:
            with open(path, "rb") as handle:
                found[label] = handle.read(200).decode("utf-8", "replace")
    except OSError as error:
        found[label] = None
print(json.dumps(found))
"""


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                words = [raw[i:i + 4][::-1] for i in range(0, len(raw), 4)]  # each 32-bit word in host order
                found.add(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, b"".join(words)))
    return found


def learner_env(prefix: Path) -> None:
    """A learner environment in seconds: a venv of the system's Python reading this environment's packages (which
    other users can read here); `attention-course hub env` builds the real one with pip, same layout."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    system_python = Path(f"/usr/bin/python{version}")
    site = Path(sysconfig.get_paths()["purelib"])
    if not system_python.exists() or room.closed_to_others(site) is not None:
        pytest.skip(f"needs /usr/bin/python{version} and this environment's packages readable by other users")
    env = room.env_dir(prefix)
    subprocess.run([str(system_python), "-m", "venv", "--without-pip", str(env)], check=True)
    target = next(env.glob("lib/python3*/site-packages"))
    (target / "course-packages.pth").write_text(f"import site; site.addsitedir({str(site)!r})\n")
    script = env / "bin" / "jupyterhub-singleuser"
    script.write_text(f"#!{env / 'bin' / 'python'}\nimport sys\nfrom jupyterhub.singleuser import main\nsys.exit(main())\n")
    script.chmod(0o755)
    shared = Path(sys.prefix)  # the server extensions' switches and the lab extensions live under the prefix
    (env / "etc").symlink_to(shared / "etc")
    (env / "share" / "jupyter").mkdir(parents=True)
    for part in (shared / "share" / "jupyter").iterdir():  # the lab's assets, its extensions, nbconvert's templates
        if part.name != "kernels":
            (env / "share" / "jupyter" / part.name).symlink_to(part)
    subprocess.run([str(env / "bin" / "python"), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3",
                    "--display-name", room.KERNEL_NAME], check=True, capture_output=True)


@pytest.fixture
def room_dirs():
    """A world-traversable folder (the learner environment) and a private one (the instructor's checkout)."""
    base = Path(tempfile.mkdtemp(prefix="attention-room-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def learners():
    """Two real Unix learners (useradd, private homes, PAM passwords); removed with their homes afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates two Unix users and runs the hub as root, as a room's hub runs")
    group_existed = subprocess.run(["getent", "group", room.LEARNERS_GROUP], capture_output=True).returncode == 0
    names = [f"acl{secrets.token_hex(3)}{tag}" for tag in "ab"]
    passwords = room.add_learners(names)
    yield passwords
    room.remove_learners(names)
    if not group_existed:
        subprocess.run(["groupdel", room.LEARNERS_GROUP], check=False)


def login(hub: Hub, name: str, password: str) -> bool:
    """Log in through the hub's form (PAM checks the password); True if the hub let the learner in."""
    session = requests.Session()
    session.get(f"{hub.base}/hub/login", timeout=10)
    reply = session.post(f"{hub.base}/hub/login", timeout=30, allow_redirects=False,
                         data={"username": name, "password": password, "_xsrf": session.cookies.get("_xsrf", "")})
    return reply.status_code == 302 and "jupyterhub-hub-login" in session.cookies


@pytest.mark.slow
def test_two_learners_on_a_pam_hub_cannot_read_each_other_or_the_instructors_files(room_dirs, learners):
    if not PROXY.exists():
        pytest.skip("configurable-http-proxy is not installed: run `make setup`")
    started = time.monotonic()
    a, b = learners
    # The learner side: environment, hand-out (no solutions), exchange; readable by everyone, written by root.
    prefix = Path(os.environ.get("ATTENTION_HUB_TEST_PREFIX") or room_dirs / "opt")  # a prefix `hub env` built, if given
    if not (room.env_dir(prefix) / "bin" / "python").exists():
        learner_env(prefix)
    room.install_course_files(ROOT, prefix, progress=lambda _: None)
    # (the hub's configuration refuses to start unless `nobody` can start this environment's Python and import
    # what a learner's server needs: room.learner_env_problems)
    # The instructor's side: a private checkout (the config, solutions, the hub's state) and an nbgrader course.
    checkout = room_dirs / "instructor"
    (checkout / "classroom").mkdir(parents=True)
    checkout.chmod(0o700)
    shutil.copy(CONFIG, checkout / "classroom" / CONFIG.name)
    (checkout / "classroom" / "node_modules").symlink_to(ROOT / "classroom" / "node_modules")
    (checkout / "solutions").mkdir()
    shutil.copy(ROOT / "solutions" / LESSON, checkout / "solutions" / LESSON)
    course = checkout / "my-class"
    init_course(course, checkout / "solutions", ["02"])

    hub = Hub(checkout / "classroom" / CONFIG.name, checkout, {"ATTENTION_HUB_AUTH": "pam", "ATTENTION_HUB_PREFIX": str(prefix)})
    pids: list[int] = [int((checkout / "classroom" / ".hub" / "jupyterhub-proxy.pid").read_text())]
    try:
        assert listening_addresses(hub.port) == {"127.0.0.1"}  # by default the hub serves this machine only
        # PAM: each learner logs in with their own password; a wrong one is refused.
        assert [login(hub, name, password) for name, password in learners.items()] == [True, True]
        assert not login(hub, a, learners[b])
        for name in learners:  # homes as Debian's adduser makes them (0755): the hub closes them before spawning
            Path(f"/home/{name}").chmod(0o755)
            hub.spawn(name)
        servers = {name: hub.ready(name) for name in learners}
        pids += [server["state"]["pid"] for server in servers.values()]
        assert {oct(Path(f"/home/{name}").stat().st_mode & 0o777) for name in learners} == {"0o700"}
        for name, server in servers.items():  # each server runs as its learner, never as root
            uid = re.search(r"^Uid:\s+(\d+)", Path(f"/proc/{server['state']['pid']}/status").read_text(), re.M)[1]
            assert int(uid) == room.pwd.getpwnam(name).pw_uid != 0

        # A pulls the hand-out by link (git on a repository root owns: no "dubious ownership").
        url = {name: f"{hub.base}/user/{name}" for name in learners}
        pull = requests.get(f"{url[a]}/git-pull/api", headers=hub.headers, stream=True, timeout=120,
                            params={"repo": str(room.handout_dir(prefix)), "branch": "main", "targetpath": "course"})
        events = [json.loads(line[6:]) for line in pull.iter_lines(decode_unicode=True) if line.startswith("data: ")]
        assert events and events[-1]["phase"] == "finished", (pull.status_code, events[-3:])
        pulled = requests.get(f"{url[a]}/api/contents/course/notebooks/{LESSON}", headers=hub.headers, timeout=30)
        assert pulled.status_code == 200 and pulled.json()["type"] == "notebook"
        assert not requests.get(f"{url[a]}/api/contents/course/solutions", headers=hub.headers, timeout=30).ok
        specs = requests.get(f"{url[a]}/api/kernelspecs", headers=hub.headers, timeout=30).json()
        assert specs["kernelspecs"][specs["default"]]["spec"]["display_name"] == room.KERNEL_NAME

        # Both fetch and submit lesson02 from the Assignments tab; the instructor collects each under their name.
        assert room.release(course, "lesson02", room.exchange_dir(prefix), root=ROOT) == 0
        for name in learners:
            for action in ("fetch", "submit"):
                reply = requests.post(f"{url[name]}/assignments/{action}", headers=hub.headers, timeout=60,
                                      data={"course_id": room.COURSE_ID, "assignment_id": "lesson02"})
                assert reply.ok and reply.json()["success"], (action, reply.text[-800:])
        assert room.nbgrader(course, room.exchange_dir(prefix), "collect", "lesson02") == 0
        assert sorted(p.name for p in (course / "submitted").iterdir()) == sorted(learners)
        released = (course / "release" / "lesson02" / LESSON).read_text()
        assert "solutions/" not in released and "BEGIN HIDDEN TESTS" not in released

        # What A tries to read. Every target exists (root reads it) and A reads none of it.
        inbound = room.exchange_dir(prefix) / room.COURSE_ID / "inbound"
        b_submission = next(p for p in inbound.iterdir() if p.name.startswith(b + "+"))
        # nbgrader leaves a submission readable to whoever knows its folder's name, which no learner can list and
        # which ends in 12 random characters: A cannot find B's.
        assert len(b_submission.name.rsplit("+", 1)[-1]) >= 12
        targets = {
            "B's home": f"/home/{b}", "B's fetched notebook": f"/home/{b}/lesson02/{LESSON}",
            "the solutions": str(checkout / "solutions" / LESSON),
            "the hidden tests (nbgrader source)": str(course / "source" / "lesson02" / LESSON),
            "the gradebook": str(course / "gradebook.db"),
            "the hub's cookie secret": str(checkout / "classroom" / ".hub" / "jupyterhub_cookie_secret"),
            "the hub's database": str(checkout / "classroom" / ".hub" / "jupyterhub.sqlite"),
            "B's token (/proc environ)": f"/proc/{servers[b]['state']['pid']}/environ",
            "the hub's tokens (/proc environ)": f"/proc/{hub.process.pid}/environ",
            "the exchange's submissions": str(inbound),
        }
        python = str(room.env_dir(prefix) / "bin" / "python")
        as_root = json.loads(subprocess.run([python, "-c", PROBE, json.dumps(targets)], capture_output=True,
                                            text=True, check=True).stdout)
        assert len(targets) == 10 and [t for t, got in as_root.items() if got is None] == []  # each target is real
        as_a = json.loads(room.run_as(a, [python, "-c", PROBE, json.dumps(targets)], check=True, cwd="/").stdout)
        assert {t: got for t, got in as_a.items() if got is not None} == {}
        own = room.run_as(a, [python, "-c", PROBE, json.dumps({"A's home": f"/home/{a}/course/notebooks/{LESSON}"})],
                          check=True, cwd="/")
        assert json.loads(own.stdout)["A's home"]  # A reads A's own work: the probe itself works as A
        for pid in pids[1:]:  # no token on any command line (those are readable by every user)
            assert hub.token not in Path(f"/proc/{pid}/cmdline").read_text()
    finally:
        leftovers = hub.stop(pids)
    assert not leftovers, f"still running after the hub stopped: {leftovers}"
    print(f"room test: {time.monotonic() - started:.0f} s")


@pytest.mark.slow
def test_shared_password_and_dummy_hubs_refuse_to_run_as_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the refusal is for a hub running as root")
    for auth in ("dummy", "shared-password"):
        started = subprocess.run([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(CONFIG)], cwd=tmp_path,
                                 env={**os.environ, "ATTENTION_HUB_AUTH": auth, "ATTENTION_HUB_PASSWORD": "x",
                                      "ATTENTION_HUB_DATA": str(tmp_path / "hub"), "PYTHONPATH": str(ROOT)},
                                 capture_output=True, text=True, timeout=60)
        assert started.returncode != 0 and "refused" in started.stdout + started.stderr, started.stderr[-2000:]


def test_pam_hub_refuses_to_start_where_learners_could_read_the_solutions(tmp_path):
    """This checkout's solutions/ are readable by every user of a development machine: a hub must not start."""
    if room.closed_to_others(ROOT / "solutions") is not None:
        pytest.skip("this checkout's solutions/ are already closed to other users")
    problems = room.exposed_secrets(ROOT, tmp_path)
    assert any("solutions" in p and "chmod 700" in p for p in problems), problems
    private = tmp_path / "state"
    private.mkdir(mode=0o700)
    assert room.exposed_secrets(tmp_path, private) == []


# --- the hand-out: what learners receive ------------------------------------------------------------------

@pytest.fixture(scope="module")
def handed_out(tmp_path_factory):
    dest = tmp_path_factory.mktemp("handout") / "course"
    written = handout.make_handout(ROOT, dest)
    return dest, written


def test_the_handout_has_the_lessons_and_exercises_and_no_solution_text(handed_out):
    dest, written = handed_out
    lessons = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    exercises = sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    assert sorted(p.name for p in (dest / "notebooks").glob("*.ipynb")) == lessons
    assert sorted(p.name for p in (dest / "exercises").glob("*.ipynb")) == exercises and exercises
    assert not any("solutions" in Path(name).parts for name in written)
    text = "\n".join((dest / name).read_text(encoding="utf-8", errors="replace") for name in written)
    assert "solutions/" not in text and "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    blocks, taught = handout.solution_fingerprints(ROOT)
    assert len(blocks) >= 30  # the scan knows the worked answers it looks for
    flat = " ".join(text.split())
    assert [b[:50] for b in blocks if b in flat] == []
    assert handout.find_leaks(dest, ROOT) == []
    # nbgitpuller pulls it: a git repository with one commit, readable by every user, written only by its owner
    log = subprocess.run(["git", "-C", str(dest), "log", "--oneline"], capture_output=True, text=True, check=True)
    assert len(log.stdout.splitlines()) == 1
    assert {oct(p.stat().st_mode & 0o777) for p in dest.rglob("*") if p.is_file()} == {"0o644"}


def test_a_second_handout_commits_only_what_changed_and_refuses_strange_folders(handed_out, tmp_path):
    dest, _ = handed_out
    handout.make_handout(ROOT, dest)  # nothing changed: no new commit for nbgitpuller to merge
    log = subprocess.run(["git", "-C", str(dest), "log", "--oneline"], capture_output=True, text=True, check=True)
    assert len(log.stdout.splitlines()) == 1
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a learner's notes")
    with pytest.raises(ValueError, match="not an earlier hand-out"):
        handout.make_handout(ROOT, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").exists()
    with pytest.raises(ValueError, match="inside the course checkout"):
        handout.make_handout(ROOT, ROOT / "handout-here")


def test_the_leak_scan_finds_every_kind_of_planted_leak(handed_out, tmp_path):
    dest = tmp_path / "course"
    shutil.copytree(handed_out[0], dest, ignore=shutil.ignore_patterns(".git"))
    assert handout.find_leaks(dest, ROOT) == []
    shutil.copy(ROOT / "solutions" / "05_training_a_gpt.ipynb", dest / "exercises" / "copy.ipynb")
    (dest / "notes.md").write_text("Stuck? Read `solutions/02_self_attention.ipynb`.\n")
    (dest / "solutions").mkdir()
    source = json.loads((ROOT / "exercises" / LESSON).read_text())
    source["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                            "source": "### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS"})
    (dest / "exercises" / "hidden.ipynb").write_text(json.dumps(source))
    leaks = handout.find_leaks(dest, ROOT)
    for expected in ("copy.ipynb: holds a worked solution of 05_training_a_gpt", "notes.md: names solutions/",
                     "solutions: a solutions folder", "hidden.ipynb: holds a hidden test"):
        assert any(expected in leak for leak in leaks), (expected, leaks)
    (tmp_path / "empty").mkdir()
    assert [leak.endswith("no file to hand out") for leak in handout.find_leaks(tmp_path / "empty", ROOT)] == [True]
    with pytest.raises(ValueError, match="cannot tell what a leak would look like"):
        handout.find_leaks(dest, tmp_path)  # no solutions to compare with: a scan that proves nothing is refused


def test_a_handout_that_would_leak_is_refused_and_not_committed(tmp_path, monkeypatch):
    monkeypatch.setattr(handout, "LEARNER_PARTS", (*handout.LEARNER_PARTS, "solutions"))
    with pytest.raises(ValueError, match="would give away solutions"):
        handout.make_handout(ROOT, tmp_path / "course")
    assert not (tmp_path / "course" / ".git").exists()
    assert not (tmp_path / "course").exists(), "a refused hand-out left its files where learners could read them"
    assert [p.name for p in tmp_path.iterdir()] == [], "the staging folder was not removed"


def test_release_notebooks_lose_the_sentences_that_name_solutions():
    exercise = json.loads((ROOT / "exercises" / LESSON).read_text())
    assert "solutions/" in json.dumps(exercise)  # the course's own exercises name them (self-study)
    assert "solutions/" not in json.dumps(handout.scrub_notebook(exercise))


def test_the_learner_copy_of_the_library_loses_the_grading_kit_and_its_bytecode(tmp_path):
    package = tmp_path / "attention_course"
    (package / "tools" / "__pycache__").mkdir(parents=True)
    for name in ("tools/assignments.py", "tools/__pycache__/assignments.cpython-311.pyc", "tools/hub.py",
                 "tools/__pycache__/hub.cpython-311.pyc", "attention.py"):
        (package / name).write_text("")
    assert sorted(str(p.relative_to(package)) for p in room.instructor_only_files(package)) == [
        "tools/__pycache__/assignments.cpython-311.pyc", "tools/assignments.py"]


def test_the_hidden_tests_live_in_an_instructor_only_module():
    from attention_course.tools import assignments

    package = Path(assignments.__file__).resolve().parent.parent
    assert assignments.HIDDEN_CASES and f"tools/{Path(assignments.__file__).name}" in room.INSTRUCTOR_ONLY
    assert Path(assignments.__file__).resolve() in [p.resolve() for p in room.instructor_only_files(package)]


def test_the_learner_environment_is_a_copy_of_the_course_not_a_link_to_the_checkout(room_dirs):
    tmp_path = room_dirs  # under /tmp, open to other users (pytest's own temporary root is not)
    commands = room.learner_env_commands(ROOT, tmp_path / "opt", Path("/usr/bin/python3"))
    assert commands[0][:3] == ["/usr/bin/python3", "-m", "venv"]
    assert not any("-e" in command or "--editable" in command for command in commands)
    assert any(command[-1] == str(ROOT) for command in commands)  # `pip install CHECKOUT`: a built copy
    assert commands[-1][-2:] == ["-m", "attention_course.tools.lab_settings"]  # widgets survive a restart (issue 29)
    private = tmp_path / "private"
    (private / "bin").mkdir(parents=True)
    (private / "bin" / "python").write_text("")
    private.chmod(0o700)
    assert room.closed_to_others(private / "bin" / "python", execute=True) == private
    private.chmod(0o755)
    assert room.closed_to_others(private / "bin" / "python", execute=True) == private / "bin" / "python"  # no o+x
    (private / "bin" / "python").chmod(0o755)
    assert room.closed_to_others(private / "bin" / "python", execute=True) is None
    assert "no learner environment" in room.learner_env_problems(tmp_path / "nowhere")[0]
    (tmp_path / "my-class").mkdir(mode=0o755)  # an nbgrader course every user can read: its hidden tests too
    with pytest.raises(ValueError, match="chmod 700"):
        room.release(tmp_path / "my-class", "lesson02", tmp_path / "exchange", root=ROOT)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a submission another owner")
def test_a_submission_in_a_classmates_name_is_refused_before_collect(tmp_path):
    """The inbound folder is writable by all: a learner who writes 'victim+lesson02+...' must not be collected as
    the victim (nbgrader itself only warns)."""
    from attention_course.tools import hub

    hub.prepare_exchange(tmp_path)
    inbound = tmp_path / hub.COURSE_ID / "inbound"
    forged, honest = inbound / "root+lesson02+2099-01-01 00:00:00.000000 UTC+abc", inbound / "nobody+lesson02+x+y"
    forged.mkdir()
    honest.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(forged, nobody.pw_uid, nobody.pw_gid)  # written by nobody, claiming to be root
    os.chown(honest, nobody.pw_uid, nobody.pw_gid)
    refused = hub.refuse_forged_submissions(tmp_path)
    assert len(refused) == 1 and "written by nobody, not root" in refused[0]
    assert honest.exists() and not forged.exists()
    assert oct((tmp_path / hub.COURSE_ID / "refused").stat().st_mode & 0o777) == "0o700"
