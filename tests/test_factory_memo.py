"""Lesson 11's inspection memo: KPIs judged on every row, errors priced, both languages, numbers from the result."""

import copy
import re

import pytest

from attention_course.core.device import device_name
from attention_course.factory import memo


def _result(recall=0.97, false_alarm=0.04):
    row = lambda name, hw, ips, price, r=recall, f=false_alarm: {
        "candidate": name, "model": name, "hardware": hw, "images_per_s": ips, "recall": r, "false_alarm": f,
        "labels": 1000, "hourly_price": price, "cost_per_million": price * 1e6 / (3600 * ips)}
    return {
        "hardware": "test machine", "profile": "cpu", "kpis": memo.InspectionKPIs().__dict__,
        "candidates": [row("CNN", "cpu", 900.0, 0.10, r=0.90), row("ViT pretrained (masked patches)", "cpu", 400.0, 0.10),
                       row("ViT pretrained (masked patches)", "gpu", 10000.0, 4.00)],
        "curve": [{"model": "ViT pretrained (masked patches)", "labels": 1000, "seeds": 3, "mean": 0.96, "std": 0.01,
                   "min": 0.951, "max": 0.972, "interval": (0.94, 0.98)}],
        "localisation": [{"method": "attention rollout (ViT)", "pointing": 0.62, "pointing_interval": (0.55, 0.69),
                          "images": 200},
                         {"method": "Grad-CAM (CNN)", "pointing": 0.71, "pointing_interval": (0.64, 0.77), "images": 200},
                         {"method": "random map", "pointing": 0.04, "pointing_interval": (0.02, 0.07), "images": 200}],
        "test_images": 1000, "validation_images": 500,
        "record": {"kpis": {"sha256": "abc123", "hashed_at": "2026-12-06T17:00"}, "training_started_at": "2026-12-06T17:01",
                   "reproduce": {"torch": "2.13", "seeds": [0, 1, 2], "version": 1, "data": "feed"}}}


def test_kpis_judge_every_row():
    kpis = memo.InspectionKPIs()
    good = _result()["candidates"][1]
    assert kpis.failures(good) == []
    assert kpis.failures({**good, "recall": 0.9}) == ["recall"]
    assert kpis.failures({**good, "false_alarm": 0.06, "images_per_s": 5, "labels": 5000}) == [
        "false alarms", "line rate", "labels"]
    assert kpis.failures({**good, "cost_per_million": 2.0}) == ["cost per million"]


def test_kpi_file_is_what_the_lesson_reads():
    assert memo.InspectionKPIs.from_file() == memo.InspectionKPIs()


def test_cheapest_row_meeting_every_kpi_is_recommended():
    best, _ = memo.decision(_result())
    assert best["hardware"] == "cpu" and best["model"] == "ViT pretrained (masked patches)"
    text = memo.memo(_result())
    assert "**Recommendation: ViT pretrained (masked patches) on the CPU, to a shadow-mode pilot.**" in text
    assert "0.970" in text and "abc123" in text and "SYNTHETIC" in text


def test_no_recommendation_when_no_row_meets_the_kpis():
    result = _result(recall=0.80)
    best, closest = memo.decision(result)
    assert best is None and "recall" in memo.judged(result)[0]["missed"]
    assert closest["candidate"] == "CNN", "the highest recall is the one worth improving, not the fewest misses"
    assert "**Recommendation: not yet.**" in memo.memo(result)
    assert "**推奨：まだパイロットに進みません。**" in memo.memo(result, "ja")
    assert "KPI に最も近い候補は CNN（CPU）ですが、検出率の基準を満たしていません" in memo.memo(result, "ja")


def test_localisation_verdict_follows_the_intervals():
    result = _result()
    assert "point at the defect far more often than chance" in memo.memo(result)
    weak = copy.deepcopy(result)
    weak["localisation"][0]["pointing_interval"] = (0.06, 0.2)  # above chance's point, inside its interval
    assert "does not beat chance clearly" in memo.memo(weak)


def test_errors_are_priced_on_their_own_parts():
    row = {"recall": 0.9, "false_alarm": 0.05, "images_per_s": 1000.0}
    line = {"parts_per_s": 1.0, "hours_per_day": 24.0, "defect_rate": 0.1, "lines": 1}
    cost = memo.monthly_line_cost(row, 1.0, {"miss": 10.0, "false_alarm": 1.0}, line)
    parts = 86400 * 30.4
    assert cost["misses"] == pytest.approx(parts * 0.1 * 0.1 * 10.0)
    assert cost["alarms"] == pytest.approx(parts * 0.9 * 0.05 * 1.0)
    assert cost["unchecked"] == pytest.approx(parts * 0.1 * 10.0) and cost["machines"] == 1


def test_japanese_memo_has_the_same_numbers():
    en, ja = memo.memo(_result()), memo.memo(_result(), "ja")
    for number in ("0.970", "0.040", "1,000", "abc123"):
        assert number in en and number in ja
    assert "意思決定メモ" in ja
    with pytest.raises(ValueError, match="lang must be one of"):
        memo.memo(_result(), "fr")


def test_english_memo_keeps_its_percent_signs():
    en = memo.memo(_result())
    assert "false-alarm rate of 5%, then" in en and "(miss rate <= 5%)" in en and "h a day, 2% defective" in en


JAPANESE = "\u3040-\u30ff\u4e00-\u9fff"


@pytest.mark.parametrize("recall", [0.97, 0.80])
def test_japanese_memo_follows_the_style_guide(recall):
    weak = {**_result(recall=recall), "by_kind": _by_kind()}
    weak["localisation"][0]["pointing_interval"] = (0.06, 0.2)  # the "do not show its map" verdict too
    ja = memo.memo(weak, "ja") + memo.memo(_result(recall=recall), "ja")
    glued = re.findall(f"[A-Za-z0-9%][{JAPANESE}]|[{JAPANESE}][A-Za-z0-9%]", ja)
    assert not glued, glued  # STYLE.md: a space between Latin or digits and Japanese
    assert not re.search(r"\d%", ja), "a percentage is written '5 %' in Japanese"
    for wrong in ("注意の", "ロールアウト（ViT） ", "な図", "その図", " (ドル)", "）（", "と比べられます", "ライン あたり"):
        assert wrong not in ja, wrong
    assert "アテンションロールアウト（ViT）が 0.62" in ja and "ランダムなマップでは 0.04" in ja


def test_japanese_spacing_can_fail_and_leaves_spaced_text_alone():
    assert memo.japanese_spacing("最も近いCNN（CPU）はCNNの5 %に") == "最も近い CNN（CPU）は CNN の 5 % に"
    spaced = "KPI に最も近い候補は CNN（CPU）です。"
    assert memo.japanese_spacing(spaced) == spaced


def test_the_cpu_description_is_said_in_japanese():
    name = device_name("cpu")  # the very string lesson 11 stores as result["hardware"] on a CPU
    ja = memo.hardware_name(name, "ja")
    assert ja != name and ja.endswith(" の CPU") and "コアのうち" in ja and "threads" not in ja and "cores" not in ja
    assert memo.hardware_name(name) == name and memo.hardware_name("NVIDIA H100 80GB HBM3", "ja") == "NVIDIA H100 80GB HBM3"
    ja_memo = memo.memo({**_result(), "hardware": name}, "ja")
    assert "threads of" not in ja_memo and "プロファイルは `cpu` です" in ja_memo


def _by_kind(model="ViT pretrained (masked patches)"):
    recalls = {"scratch": 0.99, "spot": 0.97, "crack": 1.0, "stain": 0.91}
    return [{"model": model, "labels": 1000, "kind": k, "parts": 100, "seeds": 3, "mean": v, "min": v, "max": v}
            for k, v in recalls.items()]


def test_memo_names_the_weakest_defect_kind_of_the_chosen_model():
    plain = memo.memo(_result())
    assert "Recall by defect kind" not in plain  # a result without the table reads as before
    result = {**_result(), "by_kind": _by_kind() + _by_kind("CNN")[:1]}
    en, ja = memo.memo(result), memo.memo(result, "ja")
    assert "scratch 0.99, spot 0.97, crack 1.00, stain 0.91. The weakest is stain (0.91)" in en
    assert "傷 0.99、斑点 0.97、ひび割れ 1.00、染み 0.91。最も低いのは染み（0.91）" in ja
    other = {**_result(), "by_kind": _by_kind("CNN")}  # no row for the chosen model: no line
    assert "Recall by defect kind" not in memo.memo(other)


def test_japanese_label_budget_reads_one_clause_per_model():
    result = _result()
    result["curve"] = [{"model": m, "labels": n, "seeds": 1, "mean": v, "std": 0.0, "min": v, "max": v, "interval": (v, v)}
                       for m, n, v in (("CNN", 50, 0.434), ("CNN", 1000, 0.642), ("ViT from scratch", 50, 0.032))]
    ja = memo.memo(result, "ja")
    assert "CNN はラベル 50 件で 0.434、1,000 件で 0.642。ゼロから学習した ViT はラベル 50 件で 0.032。" in ja
    assert "CNN @ 50: 0.434, CNN @ 1,000: 0.642, ViT from scratch @ 50: 0.032." in memo.memo(result)


def test_the_money_line_counts_its_machines_in_words():
    # one CPU machine keeps up with the assumed lines at 400 images/s; a slow one needs several
    assert re.search(r"\(1 machine USD", memo.memo(_result()))
    slow = _result()
    for row in slow["candidates"]:
        row["images_per_s"] = 20.0
    text = memo.memo(slow)
    assert re.search(r"\((\d+) machines USD", text) and int(re.search(r"\((\d+) machines USD", text)[1]) > 1
    assert "machine(s)" not in text
