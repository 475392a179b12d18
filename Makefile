# Attention in Parallel. Two commands do all the set-up: `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready
ASSETS := book/offline/node_modules/.ready
TRUSTED := $(VENV)/.trusted
LAB_SETTINGS := $(VENV)/.lab-settings
NOTEBOOKS = $(wildcard notebooks/*.ipynb solutions/*.ipynb exercises/*.ipynb)
HUB_PROXY := classroom/node_modules/.ready
TRITON_FOR_TESTS := .triton/.ready
CHROMIUM ?= /usr/bin/chromium
PYTEST_WORKERS ?= 2

.PHONY: setup trust browser lab test test-fast book exercises lint doctor clean hub hub-env wheelhouse

setup: $(READY) $(ASSETS) $(TRUSTED) $(HUB_PROXY) $(LAB_SETTINGS)

# Python environment: pinned packages, the data packages (--no-deps), the course library, the kernel.
$(READY): requirements.txt requirements-nodeps.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (attention-course)" >/dev/null
	touch $@

# The course's JupyterLab saves widget state with each notebook, so widgets survive a kernel restart
# (attention_course/tools/lab_settings.py writes overrides.d/attention-course.json into the venv's lab settings).
$(LAB_SETTINGS): attention_course/tools/lab_settings.py | $(READY)
	$(BIN)/python -m attention_course.tools.lab_settings
	touch $@

# Scripts the offline site and attention views serve themselves (MathJax, require.js, widgets, d3, jQuery).
$(ASSETS): book/offline/package.json book/offline/package-lock.json
	cd book/offline && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# JupyterHub's proxy for a classroom hub on one machine (configurable-http-proxy, pinned in classroom/).
$(HUB_PROXY): classroom/package.json classroom/package-lock.json
	cd classroom && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Trust the shipped notebooks, so JupyterLab shows their stored outputs (attention views, widgets) on opening;
# redone whenever a notebook changes (a pull, a regeneration).
# (`attention-course trust` is `jupyter trust` that names a learner's odd file instead of stopping on it.)
$(TRUSTED): $(READY) $(NOTEBOOKS)
	$(BIN)/attention-course trust
	touch $@

trust: $(READY)
	$(BIN)/attention-course trust
	touch $(TRUSTED)

# JupyterLab for yourself, on this machine only (127.0.0.1). As root (a container, a cloud box) Jupyter needs
# --allow-root; that is allowed here only because nobody else can reach the server. A room uses `make hub`.
lab: setup
	$(BIN)/attention-course doctor || true
	$(BIN)/jupyter lab --notebook-dir=. --ServerApp.ip=127.0.0.1 $$(test "$$(id -u)" = 0 && echo --allow-root) \
	  notebooks/00_setup_and_first_look.ipynb

# Headless Chromium for the site test (Debian's package; needs root the first time).
browser:
	@test -x $(CHROMIUM) || { test "$$(id -u)" = 0 && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "note: no $(CHROMIUM): the browser test will fail; install Debian's chromium"

# Triton for the kernels' interpreter tests, in its own folder, where the course's environment has none (PyTorch's
# CUDA builds bring their own). Where no wheel exists (macOS) or no index answers, those two tests skip.
$(TRITON_FOR_TESTS): requirements-test-triton.txt | $(READY)
	@mkdir -p .triton
	@$(BIN)/python -c 'import triton' 2>/dev/null \
	  || $(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --upgrade --target .triton -r requirements-test-triton.txt \
	  || echo "note: Triton could not be installed here: the two Triton interpreter tests will skip"
	touch $@

test: setup browser $(TRITON_FOR_TESTS)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# Library tests only (seconds): no notebooks, no book.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

book: setup
	$(BIN)/python -m attention_course.tools.book build

exercises: setup
	$(BIN)/attention-course exercises

doctor: setup
	$(BIN)/attention-course doctor

lint: setup
	$(BIN)/ruff check attention_course tests notebooks solutions exercises

# A room on one machine: JupyterHub on 127.0.0.1:8000, one Unix user per learner (book/instructors/hub.md;
# settings: classroom/jupyterhub_config.py). Run `make hub-env` first, as root: the learners' environment and
# hand-out under /opt/attention-course (HUB_PREFIX), outside this checkout, which learners must not read.
HUB_PREFIX ?= /opt/attention-course
hub: setup
	ATTENTION_HUB_PREFIX=$(HUB_PREFIX) $(BIN)/jupyterhub -f classroom/jupyterhub_config.py

hub-env: setup
	$(BIN)/attention-course hub env --prefix $(HUB_PREFIX)

# Every Python package the course installs, for rooms with no internet: then
# PIP_NO_INDEX=1 PIP_FIND_LINKS=$$PWD/wheelhouse make lab
wheelhouse: setup
	$(BIN)/python -m pip download -q --disable-pip-version-check -d wheelhouse -r requirements.txt setuptools wheel
	$(BIN)/python -m pip download -q --disable-pip-version-check -d wheelhouse --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip download -q --disable-pip-version-check -d wheelhouse --no-deps -r requirements-test-triton.txt \
	  || echo "note: no Triton wheel for this platform (only make test's two interpreter tests use it)"

clean:
	rm -rf _build book/_build
