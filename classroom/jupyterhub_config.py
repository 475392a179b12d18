# JupyterHub for a room on one machine: `make hub` (see book/instructors/hub.md).
#
# Every learner gets JupyterLab running in the course environment (.venv: the pinned packages, the data, the
# model, the "Python 3 (attention-course)" kernel), nbgitpuller to receive lessons by link, and nbgrader's
# Assignments tab to fetch and submit exercises. Settings come from the environment:
#
#   ATTENTION_HUB_AUTH   pam (default): learners log in with accounts of this machine (LocalProcessSpawner,
#                          one Unix user each: the safe choice); shared-password: any name with the password
#                          in ATTENTION_HUB_PASSWORD, all learners as the hub's Unix user (no isolation between
#                          learners: a trusted room only); dummy: any name, no password (tests only)
#   ATTENTION_HUB_IP     address to listen on (default: all interfaces); ATTENTION_HUB_PORT (default 8000)
#   ATTENTION_HUB_DATA   the hub's state, learners' folders (shared-password/dummy) and nbgrader's exchange
#                          (default: classroom/.hub)
#   ATTENTION_HUB_ADMINS comma-separated admin (instructor) names
#   ATTENTION_HUB_API_TOKEN  if set, a "classroom-admin" service with this token may create users and start servers
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821

HERE = Path(__file__).resolve().parent
COURSE = HERE.parent
VENV_BIN = Path(sys.executable).parent  # the hub runs from the course environment: `.venv/bin/jupyterhub`
DATA = Path(os.environ.get("ATTENTION_HUB_DATA", HERE / ".hub")).resolve()
AUTH = os.environ.get("ATTENTION_HUB_AUTH", "pam")
DATA.mkdir(parents=True, exist_ok=True)

# Where the hub listens and keeps its state.
c.JupyterHub.ip = os.environ.get("ATTENTION_HUB_IP", "")
c.JupyterHub.port = int(os.environ.get("ATTENTION_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("ATTENTION_HUB_INTERNAL_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('ATTENTION_HUB_PROXY_API_PORT', '8001')}"
c.JupyterHub.db_url = f"sqlite:///{DATA / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(DATA / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(DATA / "jupyterhub-proxy.pid")
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every learner's server and the proxy

# Who may log in, and how each learner's server runs.
if AUTH == "pam":
    c.JupyterHub.authenticator_class = "pam"
    c.JupyterHub.spawner_class = "localprocess"
elif AUTH in ("shared-password", "dummy"):
    c.JupyterHub.authenticator_class = AUTH
    if AUTH == "shared-password":
        c.SharedPasswordAuthenticator.user_password = os.environ["ATTENTION_HUB_PASSWORD"]
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(DATA / "home" / "{username}")
else:
    raise ValueError(f"ATTENTION_HUB_AUTH={AUTH!r}: use pam, shared-password or dummy")
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {name.strip() for name in os.environ.get("ATTENTION_HUB_ADMINS", "").split(",") if name.strip()}

c.Spawner.cmd = [str(VENV_BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120  # a laptop-class machine starting 30 servers at once is slow
c.Spawner.http_timeout = 60
if os.geteuid() == 0 and AUTH != "pam":
    c.Spawner.args = ["--allow-root"]
# nbgrader's Assignments tab reads this folder's nbgrader_config.py (course id and the shared exchange).
c.Spawner.environment = {
    "JUPYTER_CONFIG_PATH": str(HERE / "jupyter"),
    "ATTENTION_COURSE_NBGRADER_EXCHANGE": str(DATA / "exchange"),
    "HF_HUB_OFFLINE": "1",
}
exchange = DATA / "exchange"
exchange.mkdir(exist_ok=True)
exchange.chmod(0o1777)  # every learner writes submissions here; the sticky bit keeps them apart

# An optional admin token for scripts (bulk user creation, the hub test).
token = os.environ.get("ATTENTION_HUB_API_TOKEN")
if token:
    c.JupyterHub.services = [{"name": "classroom-admin", "api_token": token}]
    c.JupyterHub.load_roles = [{
        "name": "classroom-admin",
        "scopes": ["admin:users", "admin:servers", "admin:server_state", "access:servers", "read:users"],
        "services": ["classroom-admin"],
    }]
