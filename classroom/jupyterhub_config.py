# JupyterHub for a room on one machine: `make hub` (see book/instructors/hub.md).
#
# Every learner is a Unix user of this machine (PAM login, one LocalProcessSpawner server each, running as that
# user with a private home); no learner's code runs as root or as the instructor. Their JupyterLab runs from the
# learner environment under ATTENTION_HUB_PREFIX, built by `sudo .venv/bin/attention-course hub env`: the pinned
# packages, the course installed as a package, the "Python 3 (attention-course)" kernel, nbgitpuller and a
# hand-out with no solutions, nbgrader's Assignments tab. The instructor's checkout (solutions/, the git history)
# and the hub's state stay closed to learners; the hub refuses to start otherwise. Settings:
#
#   ATTENTION_HUB_AUTH    pam (default): accounts of this machine in the group attention-learners
#                           (`attention-course hub learners add NAME...`), and the admins.
#                           shared-password / dummy: every learner as the hub's own Unix user, with no isolation
#                           between them; refused when the hub runs as root (a self-learner's machine, or tests)
#   ATTENTION_HUB_IP      address to listen on (default 127.0.0.1: this machine only; a room needs TLS in front,
#                           see hub.md); ATTENTION_HUB_PORT (default 8000)
#   ATTENTION_HUB_PREFIX  the learner environment, hand-out and nbgrader exchange (default /opt/attention-course)
#   ATTENTION_HUB_DATA    the hub's private state: database, cookie secret (default: classroom/.hub, mode 0700)
#   ATTENTION_HUB_ADMINS  comma-separated admin (instructor) names
#   ATTENTION_HUB_GROUP   the Unix group whose members may log in (default attention-learners)
#   ATTENTION_HUB_API_TOKEN  if set, a "classroom-admin" service with this token may manage users and servers
import os
import sys
from pathlib import Path

from attention_course.tools import hub as room

c = get_config()  # noqa: F821

HERE = Path(__file__).resolve().parent
COURSE = HERE.parent
AUTH = os.environ.get("ATTENTION_HUB_AUTH", "pam")
DATA = Path(os.environ.get("ATTENTION_HUB_DATA", HERE / ".hub")).resolve()
DATA.mkdir(parents=True, exist_ok=True)
DATA.chmod(0o700)  # the database and cookie secret: nobody but the hub's user

if AUTH not in ("pam", "shared-password", "dummy"):
    raise SystemExit(f"ATTENTION_HUB_AUTH={AUTH!r}: use pam, shared-password or dummy")
if AUTH == "pam" and os.geteuid() != 0:
    raise SystemExit("ATTENTION_HUB_AUTH=pam starts each learner's server as that learner's Unix user, which needs "
                     "root: run `sudo make hub` (or shared-password as an ordinary user, for people who may share files).")
if AUTH != "pam" and os.geteuid() == 0:
    raise SystemExit(f"ATTENTION_HUB_AUTH={AUTH} runs every learner's code as the hub's user, here root: refused. "
                     "Use pam (one Unix user per learner), or run a shared-password hub as an ordinary user.")

# Where the hub listens and keeps its state.
c.JupyterHub.ip = os.environ.get("ATTENTION_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("ATTENTION_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("ATTENTION_HUB_INTERNAL_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('ATTENTION_HUB_PROXY_API_PORT', '8001')}"
c.JupyterHub.db_url = f"sqlite:///{DATA / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(DATA / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(DATA / "jupyterhub-proxy.pid")
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every learner's server and the proxy
if os.environ.get("ATTENTION_HUB_SSL_CERT"):
    c.JupyterHub.ssl_cert = os.environ["ATTENTION_HUB_SSL_CERT"]
    c.JupyterHub.ssl_key = os.environ["ATTENTION_HUB_SSL_KEY"]

c.Authenticator.admin_users = {name.strip() for name in os.environ.get("ATTENTION_HUB_ADMINS", "").split(",") if name.strip()}
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120  # a laptop-class machine starting 30 servers at once is slow
c.Spawner.http_timeout = 60
c.Spawner.env_keep = ["LANG", "LC_ALL", "TZ"]  # nothing of the hub's own environment (paths, tokens) reaches learners

if AUTH == "pam":
    PREFIX = Path(os.environ.get("ATTENTION_HUB_PREFIX", room.DEFAULT_PREFIX))
    problems = room.learner_env_problems(PREFIX) + room.exposed_secrets(COURSE, DATA)
    if problems:
        raise SystemExit("The hub cannot keep learners apart yet:\n  " + "\n  ".join(problems))
    room.prepare_exchange(room.exchange_dir(PREFIX))
    c.JupyterHub.authenticator_class = "pam"
    c.Authenticator.allow_all = False
    c.LocalAuthenticator.allowed_groups = {os.environ.get("ATTENTION_HUB_GROUP", room.LEARNERS_GROUP)}
    c.JupyterHub.spawner_class = "localprocess"
    c.Spawner.pre_spawn_hook = lambda spawner: room.secure_home(spawner.user.name)
    learner_bin = room.env_dir(PREFIX) / "bin"
    exchange, jupyter_config = room.exchange_dir(PREFIX), room.jupyter_config_dir(PREFIX)
    js = room.js_dir(PREFIX)
    # nbgitpuller runs git as the learner on the hand-out, which root owns: this file names it safe (hub.py says why).
    extra_env = {"GIT_CONFIG_GLOBAL": str(room.git_config(PREFIX))}
else:  # an ordinary user's hub: every server runs as that user, from the hub's own environment
    c.JupyterHub.authenticator_class = AUTH
    if AUTH == "shared-password":
        c.SharedPasswordAuthenticator.user_password = os.environ["ATTENTION_HUB_PASSWORD"]
    c.Authenticator.allow_all = True
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(DATA / "home" / "{username}")
    learner_bin = Path(sys.executable).parent  # `.venv/bin/jupyterhub`
    exchange, jupyter_config = DATA / "exchange", HERE / "jupyter"
    js = COURSE / "book" / "offline" / "node_modules"
    extra_env = {}
    exchange.mkdir(exist_ok=True)
    exchange.chmod(0o1777)

c.Spawner.cmd = [str(learner_bin / "jupyterhub-singleuser")]
c.Spawner.environment = {
    **extra_env,
    "PATH": f"{learner_bin}:/usr/local/bin:/usr/bin:/bin",
    "JUPYTER_CONFIG_PATH": str(jupyter_config),  # nbgrader's course id and exchange (classroom/jupyter/)
    "ATTENTION_COURSE_NBGRADER_EXCHANGE": str(exchange),
    "ATTENTION_COURSE_JS_DIR": str(js),
    "HF_HUB_OFFLINE": "1",
}

# An optional admin token for scripts (bulk user creation, the hub test).
token = os.environ.get("ATTENTION_HUB_API_TOKEN")
if token:
    c.JupyterHub.services = [{"name": "classroom-admin", "api_token": token}]
    c.JupyterHub.load_roles = [{
        "name": "classroom-admin",
        "scopes": ["admin:users", "admin:servers", "admin:server_state", "access:servers", "read:users"],
        "services": ["classroom-admin"],
    }]
