"""Headless Chromium for the browser tests: Debian's chromium, driven by Playwright, offline flags (TOOLCHAIN.md)."""

import contextlib
import functools
import gzip
import http.server
import io
import os
import shutil
import threading
from pathlib import Path

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


# What a static host compresses (fonts and images are compressed already).
COMPRESSED_TYPES = (".html", ".css", ".js", ".json", ".svg", ".txt", ".map", ".inv")


def gzipped_size(path: Path) -> int:
    """Bytes a gzip-serving host sends for this file (fonts and images as they are)."""
    data = Path(path).read_bytes()
    return len(gzip.compress(data, 6)) if Path(path).suffix in COMPRESSED_TYPES else len(data)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class GzipHandler(QuietHandler):
    """Serves text files gzip-encoded to a client that accepts it, as a static host (GitHub Pages, nginx) does."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if path.suffix not in COMPRESSED_TYPES or "gzip" not in self.headers.get("Accept-Encoding", "") or not path.is_file():
            return super().send_head()
        body = gzip.compress(path.read_bytes(), 6)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a browser that closes a page mid-download breaks the pipe: not the site's fault


@contextlib.contextmanager
def serve_folder(folder, compress: bool = False):
    """Serve ``folder`` over HTTP on a free local port, quietly (gzip-encoded with compress); yields the base URL."""
    handler = GzipHandler if compress else QuietHandler
    httpd = QuietServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


# --- axe-core (npm, pinned in book/offline/package.json), the accessibility auditor -----------------------------
AXE_SCRIPT = Path(__file__).resolve().parent.parent / "book" / "offline" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Rules whose outcome changes with the colour mode (the page's structure is the same in light and dark).
AXE_COLOUR_RULES = ["color-contrast", "link-in-text-block"]
AXE_RUN = """async ([tags, rules]) => {
  const only = rules ? {type: 'rule', values: rules} : {type: 'tag', values: tags};
  const result = await axe.run(document, {runOnly: only, resultTypes: ['violations']});
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => [n.target.join(' '), n.failureSummary.split('\\n').slice(1, 2).join('')])}));
}"""


def axe_source() -> str:
    """axe-core's script, from the npm package pinned in book/offline (fails with the fix when it is missing)."""
    if not AXE_SCRIPT.exists():
        pytest.fail(f"{AXE_SCRIPT} is missing: run `npm ci` in book/offline (make setup does)")
    return AXE_SCRIPT.read_text(encoding="utf-8")


async def axe_violations(page, source: str, rules: list[str] | None = None) -> list[dict]:
    """Run axe-core's WCAG 2.1 A/AA rules (or only ``rules``) on the loaded page: its violations."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=source)
    return await page.evaluate(AXE_RUN, [AXE_TAGS, rules])
