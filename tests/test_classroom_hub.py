"""A room on one machine: JupyterHub (classroom/jupyterhub_config.py) on loopback with the dummy authenticator.

The test spawns a learner's server, hands out a lesson with nbgitpuller (from a local git repository: a room
without internet), opens it, checks the learner's kernel is the course environment and that nbgrader and the
slides extension are loaded, then stops the hub and checks the proxy and the learner's server are gone, all
by their own process ids.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "classroom" / "jupyterhub_config.py"
PROXY = ROOT / "classroom" / "node_modules" / ".bin" / "configurable-http-proxy"
LESSON = "02_self_attention.ipynb"

pytestmark = pytest.mark.slow


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


@pytest.fixture
def lesson_repo(tmp_path):
    """A git repository holding one lesson: what nbgitpuller hands out in a room with no internet."""
    repo = tmp_path / "course.git-src"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / LESSON, repo / "notebooks" / LESSON)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for command in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "lesson"]):
        subprocess.run(["git", *command], cwd=repo, check=True, env=env)
    return repo


def test_hub_spawns_a_learner_who_pulls_and_opens_a_lesson(tmp_path, lesson_repo):
    if not PROXY.exists():
        pytest.skip("configurable-http-proxy is not installed: run `make hub-setup`")
    token, port = secrets.token_hex(16), free_port()
    env = {**os.environ, "ATTENTION_HUB_AUTH": "dummy", "ATTENTION_HUB_IP": "127.0.0.1", "ATTENTION_HUB_PORT": str(port),
           "ATTENTION_HUB_INTERNAL_PORT": str(free_port()), "ATTENTION_HUB_PROXY_API_PORT": str(free_port()),
           "ATTENTION_HUB_DATA": str(tmp_path / "hub"), "ATTENTION_HUB_API_TOKEN": token}
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    log = open(tmp_path / "hub.log", "wb")
    hub = subprocess.Popen([str(bin_dir / "jupyterhub"), "-f", str(CONFIG)], cwd=tmp_path, env=env,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"token {token}"}
    api = f"{base}/hub/api"
    proxy_pid = server_pid = None
    try:
        def hub_up():
            try:
                return requests.get(f"{api}/", timeout=2).status_code == 200
            except requests.ConnectionError:
                assert hub.poll() is None, (tmp_path / "hub.log").read_text()[-3000:]
                return False

        wait_for(hub_up, 60, "the hub")
        proxy_pid = int((tmp_path / "hub" / "jupyterhub-proxy.pid").read_text())
        assert requests.post(f"{api}/users/learner1", headers=headers, timeout=10).status_code == 201
        assert requests.post(f"{api}/users/learner1/server", headers=headers, timeout=60).status_code in (201, 202)

        def ready():
            user = requests.get(f"{api}/users/learner1", headers=headers, timeout=10).json()
            server = user.get("servers", {}).get("", {})
            return server if server.get("ready") else None

        server = wait_for(ready, 120, "the learner's server")
        server_pid = server["state"]["pid"]
        user_url = f"{base}/user/learner1"

        # Hand out the lesson: nbgitpuller's event stream ends with phase "finished".
        pull = requests.get(f"{user_url}/git-pull/api", headers=headers, stream=True, timeout=120,
                            params={"repo": str(lesson_repo), "branch": "main", "targetpath": "course"})
        events = [json.loads(line[6:]) for line in pull.iter_lines(decode_unicode=True) if line.startswith("data: ")]
        assert events and events[-1]["phase"] == "finished", events[-3:]

        # Open it: the notebook is in the learner's folder, and the lab page serves it.
        contents = requests.get(f"{user_url}/api/contents/course/notebooks/{LESSON}", headers=headers, timeout=30)
        assert contents.status_code == 200 and contents.json()["type"] == "notebook"
        assert any("start_lesson" in "".join(cell["source"]) for cell in contents.json()["content"]["cells"])
        page = requests.get(f"{user_url}/lab/tree/course/notebooks/{LESSON}", headers=headers, timeout=30)
        assert page.status_code == 200 and "JupyterLab" in page.text

        # The learner's kernel is the course environment; nbgrader and the slides are there.
        specs = requests.get(f"{user_url}/api/kernelspecs", headers=headers, timeout=30).json()
        assert specs["kernelspecs"][specs["default"]]["spec"]["display_name"] == "Python 3 (attention-course)"
        extensions = requests.get(f"{user_url}/lab/api/extensions", headers=headers, timeout=30).json()
        names = {extension["name"] for extension in extensions}
        assert {"jupyterlab-slideshow", "jupyter-nbgrader"} <= names, names
        courses = requests.get(f"{user_url}/courses", headers=headers, timeout=30).json()  # nbgrader reads the exchange
        assert courses["success"], courses
    finally:
        hub.send_signal(signal.SIGTERM)  # the hub stops the learners' servers and the proxy on its way out
        try:
            hub.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
        leftovers = [pid for pid in (proxy_pid, server_pid) if pid and alive(pid)]
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        log.close()
    assert not leftovers, f"still running after the hub stopped: {leftovers}"
