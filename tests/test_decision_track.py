"""The decision-maker track and its Japanese edition are on the site: the pages build, the one search index
finds Japanese terms (and still stems English), the pages fit a phone with no console errors, and
lesson 10's what-if widget renders from its saved state."""

import json
import re

import pytest

from attention_course.tools import book

pytestmark = pytest.mark.slow
# The Japanese track is the English pages built with the catalogs of book/locales, on the Japanese site (ja/).
PAGES = ["ja/decision/index", "ja/decision/lesson06", "ja/decision/lesson10", "ja/decision/glossary", "ja/decision/playbook",
         "ja/decision/cloud_vs_onprem",
         "decision/index", "decision/lesson10", "decision/glossary", "notebooks/10_proof_of_concept",
         "decision/lesson11", "ja/decision/lesson11"]


def test_every_track_page_is_built(site):
    pages = sorted((book.ROOT / "book" / "decision").glob("lesson*.md"))
    assert len(pages) >= 13
    for page in pages:
        for built in ("decision", "ja/decision"):
            assert (site / built / f"{page.stem}.html").exists(), f"decision/{page.name} is not on the site ({built})"
    japanese = (site / "ja" / "decision" / "lesson10.html").read_text(encoding="utf-8")
    english = (site / "decision" / "lesson10.html").read_text(encoding="utf-8")
    assert "意思決定メモ" in japanese and "推奨" in japanese and "Decision memo" not in japanese  # the Japanese memo
    assert "Decision memo" in english and "意思決定メモ" not in english
    # the figure with Japanese labels (figure_language_filename) on the Japanese page only
    assert "poc_candidates.ja.png" in japanese and "poc_candidates.ja.png" not in english and "poc_candidates.png" in english
    costs = (site / "ja" / "decision" / "cloud_vs_onprem.html").read_text(encoding="utf-8")
    assert "100 万件あたり（ドル）" in costs and "100 万件あたり（円）" in costs and "1 ドル = 150 円" in costs  # yen beside dollars
    assert "円）" not in (site / "decision" / "cloud_vs_onprem.html").read_text(encoding="utf-8")


def test_the_search_index_holds_japanese_words(site):
    text = (site / "ja" / "searchindex.js").read_text(encoding="utf-8")  # the Japanese site's
    terms = json.loads(text[text.index("(") + 1 : text.rindex(")")])["terms"]
    for word in ("蒸留", "量子化", "自己", "注意", "転移", "並列化"):
        assert word in terms, word
    english = (site / "searchindex.js").read_text(encoding="utf-8")
    terms = json.loads(english[english.index("(") + 1 : english.rindex(")")])["terms"]
    assert "distil" in terms and "distillation" not in terms  # English words are still stemmed


def search(browser, server, query, site=""):
    page = browser.new_page()
    page.goto(f"{server}/{site}search.html?q={query}", wait_until="networkidle")
    page.wait_for_selector("#search-results li", timeout=20000)
    links = page.locator("#search-results li a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    page.close()
    return links


@pytest.mark.parametrize("query, expected", [
    ("蒸留", "decision/lesson08"),           # distillation
    ("自己注意", "decision/glossary"),       # self-attention: two words for the segmenter, both must match
    ("量子化", "decision/lesson08"),         # quantisation
    ("損益分岐", "decision/glossary"),       # break-even
])
def test_search_finds_japanese_terms(browser, server, query, expected):
    links = search(browser, server, query, site="ja/")
    assert any(expected in link for link in links), links


def test_search_still_stems_english(browser, server):
    links = search(browser, server, "distilled")  # stems to "distil", as "distillation" does
    assert any("decision/" in link for link in links), links


@pytest.mark.parametrize("page_name", PAGES)
def test_track_pages_fit_a_phone_without_console_errors(browser, server, page_name):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server}/{page_name}.html", wait_until="networkidle")
    width = page.evaluate("document.documentElement.scrollWidth")
    context.close()
    assert not errors, errors
    assert width <= 391, f"{page_name} scrolls sideways at 390 px: {width} px wide"


def test_what_if_widget_renders_from_saved_state(browser, server):
    page = browser.new_page()
    page.goto(f"{server}/notebooks/10_proof_of_concept.html", wait_until="networkidle")
    page.wait_for_selector(".jupyter-widgets .widget-hslider, .jupyter-widgets .slider", state="attached", timeout=20000)
    text = page.locator(".jupyter-widgets").all_inner_texts()
    page.close()
    joined = " ".join(text)
    assert "sentences a day" in joined and "a month" in joined, joined[:500]
    assert "Meets all KPIs" in joined or "No candidate meets" in joined, joined[:2000]


def test_japanese_figure_loads(browser, server):
    page = browser.new_page()
    page.goto(f"{server}/ja/decision/lesson10.html", wait_until="networkidle")
    width = page.locator("img[src*='poc_candidates']").first.evaluate("img => img.naturalWidth")
    page.close()
    assert width > 100


@pytest.mark.parametrize("page", ["notebooks/10_proof_of_concept", "ja/notebooks/10_proof_of_concept",
                                  "notebooks/11_factory_floor", "ja/notebooks/11_factory_floor"])
def test_a_memo_displayed_by_a_lesson_renders_its_tables(site, page):
    # the memos are markdown a cell displays: read as CommonMark (myst-nb's default) their tables were paragraphs of pipes
    html = (site / f"{page}.html").read_text(encoding="utf-8")
    assert html.count("<table") >= 2, page  # the English and the Japanese memo's evidence tables at least
    assert "<p>| " not in html and "<p>|" not in html, page
    # the Japanese memo's header cell on both pages; on the Japanese page the English memo's header is translated too
    headers = re.findall(r"<th[^>]*>\s*<p>(?:<span[^>]*>)?候補<", html)
    assert len(headers) == (2 if page.startswith("ja/") else 1), page
