"""Lesson 10's library: the cost arithmetic, the choice, slices, the memo generated from the stored result,
and Japanese figures whose every glyph is in the font that draws it."""

import json
import math
import re
import warnings
from pathlib import Path

import pytest
import torch

from attention_course import memo, poc

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "10_proof_of_concept.ipynb"


def row(name, hardware="cpu", accuracy=0.82, p95=20.0, throughput=100.0, labels=1000, train=10.0, price=None):
    price = {"cpu": 0.10, "gpu": 4.00}[hardware] if price is None else price
    return {"candidate": name, "family": "x", "hardware": hardware, "accuracy": accuracy, "accuracy_std": 0.0,
            "labels": labels, "train_seconds": train, "train_hardware": hardware, "p50_ms": p95 / 2, "p95_ms": p95,
            "throughput_per_s": throughput, "hourly_price": price,
            "cost_per_million": price * 1e6 / (3600 * throughput)}


def synthetic_result():
    rows = [row("majority class", accuracy=0.59, p95=0.01, throughput=1e6, labels=0, train=0.0),
            row("TF-IDF + logistic regression, 1,000 labels", accuracy=0.71, p95=0.5, throughput=9000),
            row("fine-tuned MiniLM, 1,000 labels", accuracy=0.812, p95=31.0, throughput=20.0),
            row("fine-tuned MiniLM, 1,000 labels", "gpu", accuracy=0.812, p95=4.0, throughput=5000.0)]
    slices = {r["candidate"]: poc.slice_report(["not good at all"] * 40 + ["great fun"] * 40, [0] * 40 + [1] * 40,
                                               [1] * 20 + [0] * 20 + [1] * 40) for r in rows}
    return {"profile": "cpu", "hardware": "Test CPU", "device": "cpu", "cpu_box": "2 threads", "kpis": vars(poc.KPIs()),
            "prices": {"cpu": 0.1, "gpu": 4.0}, "test_sentences": 80, "train_pool": 1000, "rows": rows,
            "accuracies": {}, "recommended": None, "closest": "", "slices": slices, "slice_rule": dict(poc.SLICE_RULE),
            "explanation": {"attention": 0.29, "rollout": 0.14, "gradient x input": 0.21, "random": 0.0},
            "explanation_sentences": 12, "seconds": 1.0,
            "record": {"commit": "abc1234", "python": "3.11", "torch": "2.13.0", "transformers": "5.24.0",
                       "scikit-learn": "1.9.1", "profile": "cpu", "hardware": "Test CPU", "seeds": [0], "split_seed": 2017,
                       "data": {"test": {"sentences": 80, "sha256": "0123456789abcdef"}}}}


def test_cost_arithmetic():
    assert poc.machines_needed(0, 10) == 1 and poc.machines_needed(86400 * 10, 10) == 1
    assert poc.machines_needed(86400 * 10 + 1, 10) == 2
    assert poc.monthly_cost(1000, 10, 0.5) == pytest.approx(0.5 * 730)
    assert poc.break_even_months(1200, 100, 400) == pytest.approx(4.0)
    assert math.isinf(poc.break_even_months(1200, 400, 400)) and math.isinf(poc.break_even_months(1, 500, 400))


def test_what_if_and_choice_follow_the_prices():
    rows = synthetic_result()["rows"]
    cheap_gpu = poc.what_if(rows, daily_volume=1e8, cpu_price=0.1, gpu_price=1.0, label_price=0.1)
    best, _ = poc.choose(cheap_gpu, poc.KPIs())
    assert best["candidate"].startswith("fine-tuned") and best["hardware"] == "gpu"  # CPU misses the cost KPI
    cpu_row = next(r for r in cheap_gpu if r["hardware"] == "cpu" and r["candidate"].startswith("fine"))
    assert cpu_row["machines"] == math.ceil(1e8 / (86400 * 20)) and "cost per million" in cpu_row["missed"]
    assert cpu_row["one_off"] == pytest.approx(1000 * 0.1 + 10 / 3600 * 0.1)
    pricey = poc.what_if(rows, daily_volume=1e5, cpu_price=0.1, gpu_price=20.0, label_price=0.1)
    assert poc.choose(pricey, poc.KPIs())[0] is None  # the GPU now costs more than $1 a million


def test_slice_report_applies_the_stated_rule():
    texts = ["not good"] * 40 + ["good"] * 40 + ["never"] * 10
    labels = [1] * 90
    predictions = [1] * 30 + [0] * 10 + [1] * 40 + [0] * 10  # negations 30/40 + 0/10 wrong
    report = {r["slice"]: r for r in poc.slice_report(texts, labels, predictions)}
    negation = report["has a negation"]
    assert negation["n"] == 50 and negation["accuracy"] == pytest.approx(30 / 50) and negation["flagged"]
    assert not report["no negation"]["flagged"]
    small = poc.slice_report(["documentary"] * 5 + ["x"] * 40, [1] * 45, [0] * 5 + [1] * 40)
    documentary = next(r for r in small if r["slice"] == "documentary")
    assert documentary["accuracy"] == 0.0 and not documentary["flagged"] and not documentary["judged"]


def test_fingerprint_sees_any_change():
    base = poc.fingerprint(["a", "b"], [0, 1])
    assert base == poc.fingerprint(["a", "b"], [0, 1])
    assert base != poc.fingerprint(["a", "b"], [1, 1]) and base != poc.fingerprint(["a", "c"], [0, 1])


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_memo_is_generated_from_the_numbers(lang):
    result = synthetic_result()
    text = memo.memo(result, lang)
    assert "{" not in text and "}" not in text
    for r in result["rows"]:
        assert f"{r['accuracy']:.3f}" in text and f"{r['cost_per_million']:.3f}" in text and f"{r['p95_ms']:.1f}" in text
    assert "+0.29" in text and "0123456789abcdef" in text
    # the GPU row meets every KPI at the default prices and is the cheaper fine-tuned row
    expected = "fine-tuned MiniLM, 1,000 labels on GPU" if lang == "en" else "ファインチューニングした MiniLM（ラベル 1,000 件）（GPU"
    assert expected in text.replace("**Recommendation: ", "").replace(".**", " ")
    if lang == "ja":
        assert "推奨" in text and "正解率" in text and "スライス" in text
    assert text.count("\n") < 60  # one page


def test_memo_says_so_when_nothing_meets_the_kpis():
    result = synthetic_result()
    result["kpis"]["min_accuracy"] = 0.9
    assert "No candidate meets every KPI" in memo.memo(result, "en")
    assert "すべての KPI を満たす候補はありません" in memo.memo(result, "ja")


@pytest.mark.parametrize("lang, phrase", [("en", "Thin margin"), ("ja", "余裕が小さい")])
def test_memo_warns_when_a_seed_of_the_recommended_candidate_misses_the_accuracy_kpi(lang, phrase):
    result = synthetic_result()  # recommends the fine-tuned model on the GPU, 0.812 on average
    result["accuracies"] = {"fine-tuned MiniLM, 1,000 labels": [0.83, 0.812, 0.794]}
    warning = next(line for line in memo.memo(result, lang).splitlines() if phrase in line)
    assert "0.794" in warning and "1.2" in warning  # the seed below the KPI, the mean's margin in points
    result["accuracies"]["fine-tuned MiniLM, 1,000 labels"] = [0.83, 0.812, 0.801]
    assert phrase not in memo.memo(result, lang)


def japanese_glyphs_missing(fig):
    """Characters of every non-ASCII text in ``fig`` that the font matplotlib picks for that text lacks."""
    from fontTools.ttLib import TTFont
    from matplotlib.font_manager import findfont
    from matplotlib.text import Text

    missing, checked = {}, 0
    for text in fig.findobj(Text):
        content = text.get_text()
        if not content or content.isascii():
            continue
        path = findfont(text.get_fontproperties(), fallback_to_default=False)
        cmap = TTFont(path, fontNumber=0).getBestCmap()
        checked += 1
        lacking = {c for c in content if not c.isspace() and ord(c) not in cmap}
        if lacking:
            missing[content] = (Path(path).name, sorted(lacking))
    return missing, checked


@pytest.mark.parametrize("source", ["synthetic", "stored lesson"])
def test_japanese_figure_has_every_glyph_in_its_font(source):
    import matplotlib

    matplotlib.use("Agg")
    result = synthetic_result() if source == "synthetic" else memo.result_from_notebook(NOTEBOOK)
    fig = memo.plot_candidates(result, "ja")
    missing, checked = japanese_glyphs_missing(fig)
    assert checked >= 4 and not missing, missing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(Path("/dev/null"), format="png")
    assert not [w for w in caught if "missing from font" in str(w.message)]


def test_the_glyph_check_can_fail():
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    fig, ax = plt.subplots()
    ax.set_title("正解率", family="DejaVu Sans")  # DejaVu has no kanji: a tofu title
    missing, _ = japanese_glyphs_missing(fig)
    assert missing
    plt.close(fig)


def test_book_pages_equal_the_memo_of_the_stored_lesson():
    result = memo.result_from_notebook(NOTEBOOK)
    for lang, folder in (("en", "decision"), ("ja", "ja")):
        page = memo.for_book(memo.memo(result, lang, level=2))
        assert (ROOT / "book" / folder / "memo.md").read_text(encoding="utf-8") == page, (
            f"book/{folder}/memo.md is stale: run `python -m attention_course.memo`")
        table = (ROOT / "book" / folder / "cloud_table.md").read_text(encoding="utf-8")
        assert table == memo.for_book(memo.cloud_table(result, lang))
        assert "$" not in table.replace("\\$", "")  # every dollar escaped: MyST would read a pair as math


def test_memo_in_the_notebook_is_the_memo_of_its_result():
    import nbformat

    result = memo.result_from_notebook(NOTEBOOK)
    shown = [output["data"]["text/markdown"] for cell in nbformat.read(NOTEBOOK, as_version=4).cells
             for output in cell.get("outputs", []) if "text/markdown" in output.get("data", {})]
    for lang in ("en", "ja"):
        assert memo.memo(result, lang, level=3) in shown, lang
    # every accuracy, latency and cost of the result's rows appears in the memo shown
    english = next(text for text in shown if text.startswith("### Decision memo"))
    for r in result["rows"]:
        assert f"{r['accuracy']:.3f}" in english and f"{r['p95_ms']:.1f}" in english
        assert f"{r['cost_per_million']:.3f}" in english
    assert json.loads(json.dumps(result)) == result  # stored as plain JSON
    assert re.search(r"on (NVIDIA|CPU)", english)


def test_the_run_record_names_the_commit_it_is_given_or_none_it_cannot_know(monkeypatch, tmp_path):
    monkeypatch.setenv(poc.COMMIT_ENV, "feedbee")
    assert poc.run_record("smoke", torch.device("cpu"), [0], {})["commit"] == "feedbee"
    monkeypatch.delenv(poc.COMMIT_ENV)
    monkeypatch.chdir(tmp_path)  # not a git checkout: no commit to name
    assert poc.run_record("smoke", torch.device("cpu"), [0], {})["commit"] == "unknown"
