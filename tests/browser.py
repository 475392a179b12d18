"""Headless Chromium for the browser tests: Debian's chromium, driven by Playwright, offline flags (TOOLCHAIN.md)."""

import contextlib
import functools
import http.server
import os
import shutil
import threading

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def require_chromium() -> None:
    """Fail (not skip) with the fix when Chromium is missing: `make test` installs it."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"headless Chromium not found at {CHROMIUM}: install Debian's chromium (make test does, as root)")


@contextlib.contextmanager
def chromium():
    """A headless Chromium (Playwright's sync API) with the offline flags; closed on exit."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@contextlib.contextmanager
def serve_folder(folder):
    """Serve ``folder`` over HTTP on a free local port, quietly; yields the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
