"""Zero to JupyterHub on Kubernetes: what can be checked without a cluster. The Helm values parse and name the
course image; the user image installs with the Makefile's own targets (so it is what `make lab` gives a laptop)."""

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "classroom" / "k8s"


def test_helm_values_parse_with_the_expected_keys():
    values = yaml.safe_load((K8S / "config.yaml").read_text())
    user = values["singleuser"]
    assert user["image"]["name"] and str(user["image"]["tag"])
    assert user["cmd"] == "jupyterhub-singleuser" and user["defaultUrl"] == "/lab"
    assert user["extraEnv"]["HF_HUB_OFFLINE"] == "1" and user["extraEnv"]["ATTENTION_COURSE_PROFILE"] in ("cpu", "gpu")
    assert {"cpu", "memory", "storage", "lifecycleHooks"} <= set(user)
    assert values["prePuller"]["hook"]["enabled"] and values["cull"]["enabled"]
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"]
    # the first-start copy reads from where the Dockerfile puts the course
    assert "/opt/attention-course/notebooks" in " ".join(user["lifecycleHooks"]["postStart"]["exec"]["command"])


def test_dockerfile_installs_with_the_makefile_targets():
    dockerfile = (K8S / "Dockerfile").read_text()
    runs = re.findall(r"^RUN (.+?)(?<!\\)$", dockerfile.replace("\\\n", " "), re.MULTILINE)
    make_steps = [run for run in runs if run.startswith("make ")]
    assert make_steps == ["make setup PYTHON=python3"]
    others = [run for run in runs if not run.startswith("make ")]
    assert not re.search(r"pip install|npm (ci|install)", " ".join(others)), others  # no second install path
    assert "COPY . /opt/attention-course" in dockerfile and "WORKDIR /opt/attention-course" in dockerfile
    assert re.search(r"^CMD \[\"jupyterhub-singleuser\"\]", dockerfile, re.MULTILINE)
    assert "HF_HUB_OFFLINE=1" in dockerfile
    # the targets exist and resolve (a dry run prints the steps without running them)
    for step in make_steps:
        target = step.split()[1]
        dry = subprocess.run(["make", "-n", "-C", str(ROOT), target, "PYTHON=python3"], capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr


def test_image_leaves_local_build_outputs_out():
    ignored = (K8S / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "**/node_modules", ".git"} <= set(ignored)
