"""The website builds with warnings as errors, and works with no network: every script, style, font and
the math and widget renderers come from the site itself (checked in the HTML and in headless Chromium)."""

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest

from attention_course.tools import book

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RESOURCE = re.compile(r"<(?:script|img|iframe|source)[^>]*\ssrc=\"([^\"]+)\"|<link[^>]*\shref=\"([^\"]+)\"")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return book.build(tmp_path_factory.mktemp("book"), strict=True)


def test_every_lesson_exercise_and_solution_has_a_page(site):
    for folder in book.CONTENT_FOLDERS:
        for notebook in (book.ROOT / folder).glob("*.ipynb"):
            assert (site / folder / f"{notebook.stem}.html").exists(), f"{folder}/{notebook.name} is not in the book"
    assert (site / "index.html").exists() and (site / "search.html").exists()


def test_no_page_loads_anything_from_another_host(site):
    for page in site.rglob("*.html"):
        for script, link in RESOURCE.findall(page.read_text(encoding="utf-8")):
            url = script or link
            assert not re.match(r"(https?:)?//", url), f"{page.relative_to(site)} loads {url}"


def test_offline_assets_are_served_by_the_site(site):
    page = (site / "notebooks" / "01_recurrence_to_attention.html").read_text(encoding="utf-8")
    for asset in ("offline/mathjax/tex-mml-chtml.js", "offline/require.js", "offline/html-manager/embed-amd.js"):
        assert asset in page
        assert (site / "_static" / asset).exists()
    assert "application/vnd.jupyter.widget-state+json" in page  # the saved progress-bar widget


@pytest.fixture(scope="module")
def server(site):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"headless Chromium not found at {CHROMIUM}: install Debian's chromium (make test does, as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield launched
        launched.close()


def open_page(browser, url):
    """Load a page, record every request, and return (page, requested URLs)."""
    page = browser.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url, wait_until="networkidle")
    return page, requested


def test_math_renders_offline(browser, server):
    page, requested = open_page(browser, f"{server}/notebooks/02_self_attention.html")
    page.wait_for_selector("mjx-container", state="attached", timeout=20000)
    assert page.locator("mjx-container").count() > 5
    assert all(url.startswith(server) or url.startswith("data:") for url in requested), requested
    page.close()


def test_saved_widgets_render_offline(browser, server):
    page, requested = open_page(browser, f"{server}/notebooks/01_recurrence_to_attention.html")
    page.wait_for_selector(".widget-hprogress, .jupyter-widgets.widget-hbox", timeout=20000)
    assert "training" in page.locator(".jupyter-widgets").first.inner_text()
    assert all(url.startswith(server) or url.startswith("data:") for url in requested), requested
    page.close()


def test_search_finds_lessons(browser, server):
    page, _ = open_page(browser, f"{server}/search.html?q=softmax")
    page.wait_for_selector("#search-results li", timeout=20000)
    assert "Scaled dot-product" in page.locator("#search-results").inner_text()
    page.close()


def test_bertviz_views_draw_and_respond_offline(browser, server):
    page, requested = open_page(browser, f"{server}/notebooks/06_attention_maps.html")
    views = page.locator("div[id^=bertviz-]")
    assert views.count() == 2  # head view and model view
    page.wait_for_selector("div[id^=bertviz-] svg text", state="attached", timeout=20000)
    labels = " ".join(page.locator("div[id^=bertviz-] svg text").all_text_contents())
    assert "brilliant" in labels, "the head view drew no tokens"
    layers = views.first.locator("#layer option")
    assert layers.count() == 6
    views.first.locator("#layer").select_option("3")  # the view responds: redraws for layer 3
    page.wait_for_timeout(300)
    assert "brilliant" in " ".join(views.first.locator("svg text").all_text_contents())
    assert all(url.startswith(server) or url.startswith("data:") for url in requested), requested
    page.close()


def test_explorer_saved_state_renders(browser, server):
    page, _ = open_page(browser, f"{server}/notebooks/06_attention_maps.html")
    page.wait_for_selector(".jupyter-widgets textarea", state="attached", timeout=20000)
    assert "actors were brilliant" in page.locator(".jupyter-widgets textarea").first.input_value()
    page.close()
