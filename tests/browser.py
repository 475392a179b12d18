"""Headless Chromium for the browser tests: Debian's chromium, driven by Playwright, offline flags (TOOLCHAIN.md)."""

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def require_chromium() -> None:
    """Fail (not skip) with the fix when Chromium is missing: `make test` installs it."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"headless Chromium not found at {CHROMIUM}: install Debian's chromium (make test does, as root)")
