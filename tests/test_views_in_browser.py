"""In headless Chromium: a hostile token in an attention view or the explorer renders as text and runs nothing."""


import pytest
import torch

from attention_course.inside import viz

pytestmark = pytest.mark.slow
HOSTILE = ["</script><img src=x onerror=window.__xss=1>", "<b onmouseover=window.__xss=2>bold</b>", "</SCRIPT >",
           "<!--<script>", "a&amp;b", "\u2028line\u2029", "$x^$", "\"quoted\" 'single'"]
TOKENS = ["[CLS]", *HOSTILE, "[SEP]"]


STATE = """() => ({xss: window.__xss === undefined ? null : window.__xss,
                   images: document.querySelectorAll('img').length,
                   bold: document.querySelectorAll('b[onmouseover]').length,
                   svgText: Array.from(document.querySelectorAll('svg text')).map(t => t.textContent),
                   text: document.body.innerText})"""


def _show(browser, body: str):
    """A fresh page holding ``body``: (page, what it shows and whether any injected script ran)."""
    page = browser.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.set_content(f"<!doctype html><html><body>{body}</body></html>")
    page.wait_for_timeout(300)  # let scripts (and any onerror handler) run
    return page, page.evaluate(STATE)


def _attention(n_tokens, layers=2, heads=2):
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.softmax(torch.randn(1, heads, n_tokens, n_tokens, generator=generator), -1) for _ in range(layers))


def test_the_check_can_fail_stock_bertviz_lets_the_token_out(browser):
    from bertviz import head_view

    stock = head_view(_attention(len(TOKENS)), TOKENS, html_action="return").data
    page, state = _show(browser, stock)
    assert state["xss"] == 1  # the token closed the script and its <img onerror> ran
    page.close()


def test_head_view_shows_every_token_as_text_and_runs_none(browser):
    page, state = _show(browser, viz.head_view(_attention(len(TOKENS)), TOKENS).data)
    assert state["xss"] is None and state["images"] == 0 and state["bold"] == 0 and page.dialogs == []
    for token in TOKENS:  # drawn by the view (left and right columns), character for character
        assert state["svgText"].count(token) == 2, (token, state["svgText"])
    page.close()


def test_model_view_runs_none_and_shows_tokens_in_its_detail_view(browser):
    page, state = _show(browser, viz.model_view(_attention(len(TOKENS)), TOKENS).data)
    assert state["xss"] is None and state["images"] == 0 and state["bold"] == 0
    # A click on a thumbnail opens the detail view, which draws the tokens.
    assert page.evaluate("""() => {
        const region = Array.from(document.querySelectorAll('svg rect')).find(r => r.style.opacity === '0');
        if (region) region.dispatchEvent(new MouseEvent('click', {bubbles: true}));
        return Boolean(region);
    }""")
    page.wait_for_timeout(300)
    state = page.evaluate(STATE)
    assert HOSTILE[0] in state["svgText"] and HOSTILE[1] in state["svgText"], state["svgText"]
    assert state["xss"] is None and state["images"] == 0 and page.dialogs == []
    page.close()


def test_explorer_html_escapes_tokens_and_errors(browser):
    from attention_course.inside.explorer import AttentionExplorer
    from attention_course.inside.pretrained import load_minilm

    model, tokenizer = load_minilm()
    tokenizer.convert_ids_to_tokens = lambda ids: (TOKENS * 4)[: len(ids)]  # as if the vocabulary held them
    explorer = AttentionExplorer(model, tokenizer, text="one two three four five six seven eight nine", top_k=40)
    assert explorer.weights is not None and explorer.message.value == ""
    page, state = _show(browser, explorer.top_tokens.value + explorer.message.value)
    assert state["xss"] is None and state["images"] == 0 and state["bold"] == 0
    page.close()
    page, state = _show(browser, explorer.snapshot_html())  # what an untrusted viewer shows instead of the widget
    assert state["xss"] is None and state["images"] == 1 and state["bold"] == 0 and page.dialogs == []
    for token in HOSTILE:  # every token listed, as text
        assert token.replace("\u2028", "").replace("\u2029", "")[:12] in state["text"].replace("\u2028", "").replace("\u2029", ""), token
    page.close()

    def fails(*args):
        raise RuntimeError(HOSTILE[0])

    explorer.compute = fails
    explorer.text.value = "anything"
    assert "Could not compute attention" in explorer.message.value
    page, state = _show(browser, explorer.message.value)
    assert state["xss"] is None and state["images"] == 0 and HOSTILE[0] in state["text"] and page.dialogs == []
    page.close()
