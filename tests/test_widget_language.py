"""Every widget the course ships speaks Japanese with lang="ja" (or in a Japanese notebook), and English by default,
unchanged: the what-if widget (lesson 10), both attention explorers (lessons 06 and 09), bertviz's views and the
heatmap (lesson 06). Its messages live in one table, core.language.MESSAGES."""

import html
import re
import string

import pytest
import torch
from test_poc import japanese_glyphs_missing, synthetic_result

from attention_course.beyond import vision as V
from attention_course.core import language as L
from attention_course.proof import memo

# What may stay in Latin letters in a Japanese widget: names, units and abbreviations the style guide keeps.
NAMES = {"KPI", "KPIs", "CPU", "GPU", "MiniLM", "TF", "IDF", "int8", "CLS", "p95", "ms", "x", "CNN", "ViT",
         "CutPaste"}  # CutPaste: the pretraining method's name (Li et al., 2021), as the Japanese text writes it
WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")


@pytest.fixture(autouse=True)
def no_language_from_the_environment(monkeypatch):
    """The tests decide the language; a developer's shell or a Jupyter terminal must not."""
    monkeypatch.delenv(L.LANG_ENV, raising=False)
    monkeypatch.delenv(L.SESSION_ENV, raising=False)


def latin_words(texts) -> list[str]:
    """Latin-script words in ``texts`` (markup and escaped entities dropped) that are not names or units."""
    found = []
    for text in texts:
        plain = html.unescape(re.sub(r"<[^>]+>", " ", text))
        found += [word for word in WORD.findall(plain) if word not in NAMES]
    return found


def widget_texts(widget, skip=()) -> list[str]:
    """Every text a reader sees in a widget tree: descriptions, option labels, labels, HTML, tooltips."""
    import ipywidgets as widgets

    texts = []
    if widget in skip:
        return texts
    for name in ("description", "tooltip", "placeholder"):
        value = getattr(widget, name, None)
        if isinstance(value, str):
            texts.append(value)
    texts += list(getattr(widget, "_options_labels", ()))
    if isinstance(widget, (widgets.HTML, widgets.Label, widgets.HTMLMath)):
        texts.append(widget.value)
    for child in getattr(widget, "children", ()):
        texts += widget_texts(child, skip)
    return texts


def test_the_checker_finds_english():
    """The check below must be able to fail: an English widget is full of Latin words."""
    english = widget_texts(memo.what_if_widget(synthetic_result(), lang="en"))
    assert len(latin_words(english)) > 30
    assert latin_words(["全層のロールアウト", "ファインチューニングした MiniLM（ラベル 1,000 件、GPU）"]) == []


def test_every_message_is_in_both_languages_with_the_same_placeholders():
    for key, entry in L.MESSAGES.items():
        assert set(entry) == set(L.LANGUAGES), key
        assert L.placeholders(entry["en"]) == L.placeholders(entry["ja"]) or key == "percent", key  # % is x100
        words = " ".join(literal for literal, *_ in string.Formatter().parse(entry["ja"]))  # placeholders dropped
        assert latin_words([words]) == [], (key, entry["ja"])
    with pytest.raises(KeyError, match="no message"):
        L.say("no such message", "en")


def test_the_language_comes_from_the_argument_then_the_environment_then_the_notebook(monkeypatch):
    assert L.language() == "en"
    monkeypatch.setenv(L.SESSION_ENV, "notebooks-ja/10_proof_of_concept.ipynb")
    assert L.language() == "ja"
    assert L.language("en") == "en"  # the argument wins
    monkeypatch.setenv(L.SESSION_ENV, "notebooks/10_proof_of_concept.ipynb")
    assert L.language() == "en"
    monkeypatch.setenv(L.SESSION_ENV, "course/solutions-ja/10_proof_of_concept.ipynb")
    assert L.language() == "ja"
    monkeypatch.setenv(L.LANG_ENV, "en")
    assert L.language() == "en"  # the environment variable wins over the notebook's folder
    monkeypatch.setenv(L.LANG_ENV, "JA")
    assert L.language() == "ja"
    monkeypatch.setenv(L.LANG_ENV, "fr")
    with pytest.raises(ValueError, match="'en', 'ja'"):
        L.language()
    with pytest.raises(ValueError, match="not 'de'"):
        memo.what_if_widget(synthetic_result(), lang="de")


def test_the_japanese_notebooks_folders_are_the_ones_the_generator_writes():
    from attention_course.tools import i18n

    for folder in i18n.NOTEBOOK_FOLDERS:
        assert L.notebook_language(f"{i18n.japanese_folder(folder)}/x.ipynb") == "ja"
        assert L.notebook_language(f"{folder}/x.ipynb") is None


# ---------------------------------------------------------------- lesson 10: the what-if widget


def test_what_if_widget_in_japanese_has_no_english_left():
    widget = memo.what_if_widget(synthetic_result(), lang="ja")
    texts = widget_texts(widget)
    assert latin_words(texts) == []
    assert "確信度のしきい値" in texts and "すべての KPI を満たす最安の候補" in widget.children[-1].value
    sliders = {row.children[0].description: row.children[0] for row in widget.children[:-1]}
    sliders["見逃した否定的な文（ドル）"].value = 15.0  # the verdict and the table follow the sliders, still in Japanese
    assert "回収できない" in widget.children[-1].value and latin_words(widget_texts(widget)) == []


def test_what_if_widget_speaks_japanese_in_a_japanese_notebook(monkeypatch):
    monkeypatch.setenv(L.SESSION_ENV, "notebooks-ja/10_proof_of_concept.ipynb")
    assert latin_words(widget_texts(memo.what_if_widget(synthetic_result()))) == []


def test_what_if_widget_in_english_is_unchanged():
    widget = memo.what_if_widget(synthetic_result())
    rows = widget.children[:-1]
    assert [row.children[0].description for row in rows] == [
        "sentences a day", "peak / average", "CPU box $/hour", "GPU $/hour", "person's decision $",
        "missed negative $", "false alarm $", "confidence threshold"]
    assert [row.children[1].value for row in rows] == ["100,000", "3.0x", "$0.10", "$4.00", "$0.10", "$1.00", "$0.20",
                                                       "0.90"]
    table = widget.children[-1].value
    assert table.startswith("<p><b>Meets all KPIs, cheapest: fine-tuned MiniLM, 1,000 labels on GPU</b> Without a "
                            "model (the cheaper of people deciding everything and nobody reading anything): $304,000 "
                            "a month.</p>"), table[:300]
    assert ("<tr><th>candidate</th><th>hw</th><th>machines</th><th>automated</th><th>right when automated</th>"
            "<th>serving $/month</th><th>people $/month</th><th>errors $/month</th><th>total $/month</th>"
            "<th>one-off $</th><th>break-even</th><th>KPIs missed</th></tr>") in table
    assert "<td>20%</td><td>100.0%</td>" in table and "<td>never</td>" in table and "<td>none</td>" in table


# ---------------------------------------------------------------- lesson 09: the ViT explorer


def vit_explorer(lang=None, captions=None):
    torch.manual_seed(0)
    captions = captions or V.image_captions([7, 3], [7, 5], lang)
    return V.attention_explorer(V.ViT(patch=7, d_model=16, n_heads=2, n_layers=2), torch.rand(2, 28, 28), captions,
                                lang=lang)


def test_vit_explorer_in_japanese_has_no_english_left():
    box = vit_explorer("ja")
    assert latin_words(widget_texts(box)) == []
    image_pick, layer_pick, head_pick = box.children[:3]
    assert image_pick.options[1][0] == "テスト画像 1：正解 3（モデルの予測 5）"
    assert layer_pick.options[-1][0] == "ロールアウト（全層）" and head_pick.options[0][0] == "ヘッドの平均"
    label = image_pick._options_labels[1]
    wide = sum(2 if "\u3000" <= char <= "\uffef" else 1 for char in label)  # a Japanese character is 2ch wide
    assert int(re.match(r"calc\((\d+)ch", image_pick.layout.width).group(1)) >= wide > len(label)


def test_vit_explorer_in_english_is_unchanged():
    box = vit_explorer()
    assert [menu.description for menu in box.children[:3]] == ["Image", "Layer", "Head"]
    assert box.children[0]._options_labels == ("test image 0: a 7 (model says 7)", "test image 1: a 3 (model says 5)")
    assert box.children[1]._options_labels == ("layer 0", "layer 1", "rollout (all layers)")
    assert box.children[2]._options_labels == ("mean over heads", "head 0", "head 1")
    assert box.children[-1].value == ("<small>Bright = where the [CLS] token looks (its attention over the patches). "
                                      "With rollout, the head choice does not apply.</small>")


# ---------------------------------------------------------------- lesson 06: MiniLM explorer, bertviz, heatmap


@pytest.fixture(scope="module")
def minilm():
    from attention_course.inside.pretrained import load_minilm

    return load_minilm()


def explorer_texts(explorer) -> list[str]:
    """The explorer's own words: the tokens it lists are the sentence's (data, not labels), so they are left out."""
    top = re.sub(r"<b>.*?</b>", "", explorer.top_tokens.value)
    return widget_texts(explorer.widget, skip={explorer.text, explorer.top_tokens}) + [explorer.text.description, top]


def test_minilm_explorer_in_japanese_has_no_english_left(minilm):
    import matplotlib

    from attention_course.inside.explorer import AttentionExplorer

    matplotlib.use("Agg")
    explorer = AttentionExplorer(*minilm, text="A gripping film.", lang="ja")
    assert latin_words(explorer_texts(explorer)) == [] and "アテンションを最も集めたトークン" in explorer.top_tokens.value
    assert latin_words([explorer._title()]) == []
    explorer.layer.value = "rollout"
    assert explorer._title() == "全層のアテンションロールアウト"
    fig = explorer._figure(explorer.tokens, explorer.weights)
    assert latin_words([fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel(), fig.axes[1].get_ylabel()]) == []
    missing, checked = japanese_glyphs_missing(fig)
    assert checked >= 3 and not missing, missing
    snapshot = re.sub(r'src="data:[^"]+"|class="[^"]+"|style=\S+|<b>[^<]*</b>', "", explorer.snapshot_html())
    assert latin_words([snapshot.replace("A gripping film.", "")]) == [] and "全層のアテンションロールアウト" in snapshot
    for text, key in (("", "type_sentence"), ("word " * 600, "too_long")):
        explorer.text.value = text
        assert latin_words([explorer.message.value.replace("style='color:#a15c00'", "")]) == [], key


def test_minilm_explorer_in_english_is_unchanged(minilm):
    from attention_course.inside.explorer import AttentionExplorer

    explorer = AttentionExplorer(*minilm, text="A gripping film.")
    assert (explorer.text.description, explorer.layer.description, explorer.head.description) == \
        ("Sentence", "Layer", "Head")
    assert explorer.layer._options_labels[-2:] == ("layer 5", "rollout over all layers")
    assert explorer.head._options_labels[:2] == ("mean over heads", "head 0")
    assert explorer._title() == "Layer 5, mean over heads"
    assert explorer.top_tokens.value.startswith("Most attended tokens (mean weight received): <b>[CLS]</b> (0.")
    assert "<p><b>Attention explorer</b> (a snapshot; run the notebook to use the controls)</p>" in \
        explorer.snapshot_html()


@pytest.fixture(scope="module")
def sentence(minilm):
    model, tokenizer = minilm
    batch = tokenizer("The actors were brilliant.", return_tensors="pt")
    with torch.no_grad():
        attention = model(**batch, output_attentions=True).attentions
    return attention, tokenizer.convert_ids_to_tokens(batch["input_ids"][0])


def test_bertviz_speaks_the_language_asked_for(sentence):
    from bertviz import head_view, model_view

    from attention_course.inside import viz

    attention, tokens = sentence
    stock = head_view(attention, tokens, html_action="return").data + model_view(attention, tokens, html_action="return").data
    for english in viz.BERTVIZ_TEXT:  # a bertviz that words its controls differently must fail here, not go English
        assert english in stock, english
    japanese = viz.head_view(attention, tokens, lang="ja").data + viz.model_view(attention, tokens, lang="ja").data
    for english in viz.BERTVIZ_TEXT:
        assert english not in japanese, english
    assert '層：<select id="layer">' in japanese and '.text("ヘッド")' in japanese
    assert '.text("層 " + config.layers[layerIndex] + "、ヘッド " + config.heads[headIndex])' in japanese
    assert viz.localise_bertviz(stock, "en") == stock


def test_heatmap_axes_follow_the_language(sentence):
    import matplotlib
    import matplotlib.pyplot as plt

    from attention_course.inside import viz

    matplotlib.use("Agg")
    attention, tokens = sentence
    english = viz.plot_heatmap(attention[0][0].mean(0), tokens, "layer 0")
    assert (english.get_xlabel(), english.get_ylabel()) == ("attended to (key)", "attending (query)")
    japanese = viz.plot_heatmap(attention[0][0].mean(0), tokens, "層 0", lang="ja")
    assert latin_words([japanese.get_xlabel(), japanese.get_ylabel(), japanese.get_title()]) == []
    missing, checked = japanese_glyphs_missing(japanese.figure)
    assert checked >= 3 and not missing, missing
    plt.close("all")


# ---------------------------------------------------------------- the Japanese site: widgets saved in English


def saved_texts(state: dict) -> list[str]:
    """Every text a saved widget state shows, tags' inner spaces evened out, in a stable order."""
    from attention_course.tools.widget_state import SAVED_TEXT_FIELDS, SAVED_VALUE_MODELS

    texts = []
    for model in state.values():
        values = model.get("state", {})
        texts += [values[name] for name in SAVED_TEXT_FIELDS if isinstance(values.get(name), str)]
        texts += list(values.get("_options_labels", []))
        if model.get("model_name") in SAVED_VALUE_MODELS:
            texts.append(values.get("value", ""))
    return sorted(re.sub(r">\s+", ">", text) for text in texts if text.strip("\u200b "))


def saved_state(widget) -> dict:
    from ipywidgets.embed import dependency_state

    return dependency_state(widget, drop_defaults=False)


@pytest.mark.parametrize("build", [lambda lang: memo.what_if_widget(synthetic_result(), lang=lang),
                                   lambda lang: vit_explorer(lang)], ids=["what-if", "vit-explorer"])
def test_a_widget_saved_in_english_reads_as_the_japanese_widget_on_the_japanese_site(build):
    """Read back through the message table, the English widget's saved texts are the Japanese widget's, exactly."""
    from attention_course.tools.widget_state import localise_widgets

    english = saved_state(build("en"))
    notebook = {"cells": [], "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": english}}}}
    before = saved_texts(english)
    assert localise_widgets(notebook) >= 4
    assert saved_texts(english) == saved_texts(saved_state(build("ja"))) != before


@pytest.mark.parametrize("page", ["notebooks/06_attention_maps", "notebooks/09_beyond_text",
                                  "notebooks/10_proof_of_concept"])
def test_the_stored_lessons_widgets_are_japanese_on_the_japanese_site(page):
    import json

    from attention_course.core.course import course
    from attention_course.inside.viz import BERTVIZ_TEXT
    from attention_course.tools.widget_state import WIDGET_STATE, localise_widgets

    notebook = json.loads((course().root / f"{page}.ipynb").read_text(encoding="utf-8"))
    state = notebook["metadata"]["widgets"][WIDGET_STATE]["state"]
    english = [re.sub(r"<b>[^<]*</b>", "", text) for text in saved_texts(state)]  # listed tokens are data
    assert latin_words(english)  # the stored widgets are English: the check below can fail
    assert localise_widgets(notebook) > 0
    japanese = [re.sub(r"<b>[^<]*</b>", "", text) for text in saved_texts(state)]
    assert latin_words(japanese) == [], sorted(set(latin_words(japanese)))
    html_outputs = "".join("".join(output.get("data", {}).get("text/html", "")) for cell in notebook["cells"]
                           for output in cell.get("outputs", []))
    assert not any(english_text in html_outputs for english_text in BERTVIZ_TEXT)
    if page.endswith("06_attention_maps"):
        assert '層：<select id="layer">' in html_outputs


# ---------------------------------------------------------------- progress bars


def test_progress_bars_name_their_work_in_the_notebooks_language(monkeypatch):
    from attention_course.core import models

    seen = []
    monkeypatch.setattr(models, "tqdm", lambda items, desc, **options: seen.append(desc) or items)
    model = models.RecurrentClassifier(vocab_size=5, d_hidden=4, n_classes=2)
    data = torch.randint(5, (8, 3)), torch.randint(2, (8,))
    models.fit_classifier(model, *data, steps=1, batch_size=4, progress=True)
    monkeypatch.setenv(L.SESSION_ENV, "/home/learner/course/notebooks-ja/01_recurrence_to_attention.ipynb")
    models.fit_classifier(model, *data, steps=1, batch_size=4, progress=True)
    assert seen == ["training", "学習"]


def test_every_progress_message_reads_back_from_a_saved_bar():
    from attention_course.tools.widget_state import localise_saved_text

    values = {"name": "CNN", "n": 50}
    for key in [key for key in L.MESSAGES if key.startswith("progress_")]:
        # a phase's bar names the run it belongs to, itself a message: read back, both are in Japanese
        english = {**values, "desc": L.say("progress_labels", "en", **values)}
        japanese = {**values, "desc": L.say("progress_labels", "ja", **values)}
        saved = (L.say(key, "en", **english) + ": 100%").replace(" ", "\u2007")  # as tqdm's widget saves it
        assert localise_saved_text(saved) == L.say(key, "ja", **japanese) + ": 100%", key


@pytest.mark.parametrize("page", ["notebooks/01_recurrence_to_attention", "notebooks/07_transfer_learning",
                                  "notebooks/08_serving", "notebooks/11_factory_floor"])
def test_the_stored_lessons_progress_bars_are_japanese_on_the_japanese_site(page):
    import json

    from attention_course.core.course import course
    from attention_course.tools.widget_state import WIDGET_STATE, localise_widgets

    notebook = json.loads((course().root / f"{page}.ipynb").read_text(encoding="utf-8"))
    state = notebook["metadata"]["widgets"][WIDGET_STATE]["state"]

    def labels():  # what a bar says it is doing ("training: 100%"); its counts and rates are tqdm's units
        return [m["state"]["value"] for m in state.values() if m["model_name"] == "HTMLModel"
                and m["state"].get("value", "").endswith("%") and "[" not in m["state"]["value"]]

    assert labels() and latin_words(labels())
    localise_widgets(notebook)
    assert labels() and latin_words(labels()) == [], labels()


@pytest.mark.slow
def test_a_localised_saved_explorer_renders_in_japanese_and_responds_in_a_browser(tmp_path):
    """What the Japanese site serves: an explorer saved in English, its state rewritten by localise_widgets, shown by
    the book's own html-manager with no kernel and no network: Japanese labels, and the menus still switch views."""
    import json
    import shutil
    from pathlib import Path

    from ipywidgets.embed import embed_data

    from attention_course.tools.widget_state import localise_widgets

    modules = Path(__file__).resolve().parent.parent / "book" / "offline" / "node_modules"
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not (modules / "@jupyter-widgets" / "html-manager").exists() or not Path(chromium).exists():
        pytest.skip("needs `make setup` (npm assets) and Debian's chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    data = embed_data(views=[vit_explorer("en")])
    localise_widgets({"cells": [], "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json":
                                                            data["manager_state"]}}})
    page_file = tmp_path / "page.html"
    page_file.write_text(
        f'<html lang="ja"><head><meta charset="utf-8"><script src="file://{modules}/requirejs/require.js"></script>'
        f'<script src="file://{modules}/@jupyter-widgets/html-manager/dist/embed-amd.js"></script>'
        f'<script type="application/vnd.jupyter.widget-state+json">{json.dumps(data["manager_state"])}</script>'
        f'</head><body><script type="application/vnd.jupyter.widget-view+json">{json.dumps(data["view_specs"][0])}'
        "</script></body></html>", encoding="utf-8")
    shown = "() => Array.from(document.querySelectorAll('img')).filter(i => i.offsetParent !== null).map(i => i.src)"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_function("document.querySelectorAll('select').length == 3", timeout=20000)
        text = page.inner_text("body").replace("\xa0", " ")  # the menus write their spaces as no-break spaces
        before = page.evaluate(shown)
        page.locator("select").nth(1).select_option(label="ロールアウト（全層）")
        page.wait_for_timeout(300)
        after = page.evaluate(shown)
        browser.close()
    for label in ("画像", "層", "ヘッド", "テスト画像 0：正解 7（モデルの予測 7）", "ヘッドの平均", "ロールアウトでは"):
        assert label in text, label
    assert latin_words([text]) == [], text
    assert len(before) == len(after) == 1 and before != after
