"""Offline attention views: they carry their data and their scripts, and reach for no URL."""

import re

import pytest
import torch

from attention_course.inside import viz
from attention_course.inside.explorer import AttentionExplorer
from attention_course.inside.pretrained import load_minilm


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


@pytest.fixture(scope="module")
def sentence(minilm):
    model, tokenizer = minilm
    batch = tokenizer("The actors were brilliant.", return_tensors="pt")
    with torch.no_grad():
        attention = model(**batch, output_attentions=True).attentions
    return attention, tokenizer.convert_ids_to_tokens(batch["input_ids"][0])


@pytest.mark.parametrize("view", [viz.head_view, viz.model_view])
def test_views_are_self_contained(sentence, view):
    attention, tokens = sentence
    html = view(attention, tokens).data
    assert not re.search(r"(src|href)=\"https?:", html)
    assert "cdnjs" not in html and "require.config" not in html
    assert "d3js.org v5.7.0" in html and "jQuery v3" in html  # the inlined libraries
    assert '"brilliant"' in html and '"attn"' in html  # the data itself
    assert html.count("<script type=\"text/javascript\">") == 1 and "<script src=" not in html


def test_views_explain_bad_input(sentence):
    attention, tokens = sentence
    with pytest.raises(ValueError, match="eager"):
        viz.head_view((), tokens)
    with pytest.raises(ValueError, match="positions"):
        viz.head_view(attention, tokens[:-1])


def test_missing_scripts_name_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv(viz.JS_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make setup"):
        viz.offline_bertviz_html('<script type="text/javascript">x</script>')
    (tmp_path / "d3" / "dist").mkdir(parents=True)
    (tmp_path / "d3" / "dist" / "d3.min.js").write_text("x" * 5000)  # d3 there, jQuery not
    with pytest.raises(FileNotFoundError, match=r"jquery\.min\.js is missing or empty\. Run `make setup`"):
        viz.offline_bertviz_html('<script type="text/javascript">x</script>')


def test_rollout_and_distance():
    identity = torch.eye(4).expand(2, 3, 4, 4)
    torch.testing.assert_close(viz.attention_rollout(identity), torch.eye(4))
    weights = torch.softmax(torch.randn(3, 2, 5, 5), -1)
    rollout = viz.attention_rollout(weights)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(5))
    previous = torch.zeros(1, 4, 4)
    previous[0, 0, 0] = 1
    previous[0, [1, 2, 3], [0, 1, 2]] = 1
    assert viz.mean_attention_distance(previous).item() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="one sentence"):
        viz.attention_rollout(torch.rand(3, 2, 2, 5, 5))


def test_explorer_responds_to_its_controls(minilm):
    explorer = AttentionExplorer(*minilm, text="A gripping, beautifully acted film.")
    assert explorer.weights.shape == (len(explorer.tokens), len(explorer.tokens)) and "gripping" in explorer.tokens
    mean_map = explorer.weights.clone()
    explorer.head.value = 3
    assert not torch.allclose(explorer.weights, mean_map)
    explorer.layer.value = "rollout"
    assert explorer.head.disabled and torch.allclose(explorer.weights.sum(-1), torch.ones(len(explorer.tokens)))
    assert "Most attended tokens" in explorer.top_tokens.value and explorer.message.value == ""


def test_explorer_handles_bad_input_in_the_widget(minilm):
    explorer = AttentionExplorer(*minilm)
    explorer.text.value = "   "
    assert "Type a sentence" in explorer.message.value and explorer.weights is None
    explorer.text.value = "word " * 700
    assert "at most 512" in explorer.message.value and len(explorer.tokens) == 512
    explorer.text.value = "Ünïcödé façade, 東京, emoji \U0001F3AC and <b>html</b>!"
    assert explorer.message.value == "" and explorer.weights is not None
    assert "<b>html" not in explorer.top_tokens.value  # tokens are escaped in the widget's HTML


def test_script_json_escapes_what_could_end_a_script():
    import json

    value = {"tokens": ["</script><img src=x onerror=alert(1)>", "a&b", "\u2028\u2029", "<!--"]}
    text = viz.script_json(value)
    assert not re.search(r"[<>&\u2028\u2029]", text) and json.loads(text) == value


@pytest.mark.parametrize("view", [viz.head_view, viz.model_view])
def test_a_hostile_token_cannot_end_the_views_script(view):
    tokens = ["[CLS]", "</script><img src=x onerror=alert(1)>", "</SCRIPT", "<!--", "[SEP]"]
    attention = tuple(torch.softmax(torch.randn(1, 2, 5, 5), -1) for _ in range(2))
    html = view(attention, tokens).data
    assert len(re.findall(r"</script", html, re.IGNORECASE)) == 1 and html.rstrip().endswith("</script>")
    assert "<img" not in html and "<!--" not in html
    assert r"\u003c/script\u003e\u003cimg src=x onerror=alert(1)\u003e" in html  # the token itself is kept


def test_heatmap_labels_are_text_not_mathtext():
    import matplotlib.pyplot as plt

    ax = viz.plot_heatmap(torch.rand(3, 3), ["$x^$", "$", "a"], "title")
    ax.figure.canvas.draw()  # an unescaped "$x^$" label raises a mathtext parse error here
    assert [label.get_text() for label in ax.get_xticklabels()][0] == r"\$x^\$"
    plt.close(ax.figure)


def test_explorer_display_carries_a_static_snapshot_for_untrusted_viewers(minilm):
    explorer = AttentionExplorer(*minilm, text="A <i>gripping</i> film & more.")
    bundle = explorer.widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # the live widget stays first choice
    snapshot = bundle["text/html"]
    assert "Sentence: A &lt;i&gt;gripping&lt;/i&gt; film &amp; more." in snapshot and "<i>" not in snapshot
    assert '<img src="data:image/png;base64,' in snapshot and "Most attended tokens" in snapshot
    explorer.text.value = ""
    assert "<img" not in explorer.widget._repr_mimebundle_()["text/html"]  # nothing to draw: no stale picture
