"""Test-wide settings: offline, small profile, and the network guard in every process the tests start."""

import os
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARD = Path(__file__).resolve().parent / "netguard"

# Set before any test (or notebook kernel, which inherits the environment) starts.
os.environ["ATTENTION_COURSE_BLOCK_NETWORK"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD), str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("ATTENTION_COURSE_PROFILE", "smoke")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")  # two xdist workers share two cores

# Guard this process too (the interpreter started before PYTHONPATH named the guard).
runpy.run_path(str(GUARD / "sitecustomize.py"))
