"""The inspection PoC memo (English and Japanese), generated from lesson 11's result dict: never typed.

Lesson 10's machinery, applied to a production line: the KPIs are written down first (``inspection_kpis.json``,
hashed into the result before any model trains: ``poc.kpi_file_hash``), every candidate is judged on every KPI,
errors are priced (a defect shipped costs far more than a good part sent for a second look), machines are sized
with ``poc.machines_needed`` and the memo says what would change the decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..proof.evidence import DAYS_PER_MONTH, machines_needed, monthly_cost
from ..proof.memo import hardware_name, japanese_spacing

KPI_FILE = Path(__file__).with_name("inspection_kpis.json")
KPI_NAMES = ("recall", "false alarms", "line rate", "cost per million", "labels")
# Assumptions, stated in the memo (change them for your plant): USD per error, the line, the defect rate.
ERROR_PRICES = {"miss": 20.0, "false_alarm": 0.50}  # a defective part shipped (return, rework); a second look by a person
LINE = {"parts_per_s": 10.0, "hours_per_day": 16.0, "defect_rate": 0.02, "lines": 4}


@dataclass(frozen=True)
class InspectionKPIs:
    """What 'good enough' means on the line, written down before any model runs."""

    min_recall: float = 0.95  # share of defective parts caught (miss rate <= 5 %)
    max_false_alarm: float = 0.05  # share of good parts flagged
    min_images_per_s_per_line: float = 10.0  # one machine must keep up with one line
    max_cost_per_million: float = 1.0  # USD of machine time per million inspections
    max_labels: int = 1000  # labelled images the plant can afford to produce

    @classmethod
    def from_file(cls, path: str | Path = KPI_FILE) -> InspectionKPIs:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    def failures(self, row: dict) -> list[str]:
        """The KPIs ``row`` misses (recall and false alarms at the threshold set on validation, measured on test)."""
        missed = []
        if row["recall"] < self.min_recall:
            missed.append("recall")
        if row["false_alarm"] > self.max_false_alarm:
            missed.append("false alarms")
        if row["images_per_s"] < self.min_images_per_s_per_line:
            missed.append("line rate")
        if row["cost_per_million"] > self.max_cost_per_million:
            missed.append("cost per million")
        if row["labels"] > self.max_labels:
            missed.append("labels")
        return missed


def monthly_line_cost(row: dict, hourly_price: float, prices: dict = ERROR_PRICES, line: dict = LINE) -> dict:
    """USD a month for ``line['lines']`` lines: machines (always on, sized for the lines' rate), missed defects and
    false alarms at ``prices``; and the cost of shipping unchecked (every defect missed), the reference."""
    parts_per_day = line["parts_per_s"] * 3600 * line["hours_per_day"] * line["lines"]
    parts = parts_per_day * DAYS_PER_MONTH
    defects = parts * line["defect_rate"]
    # the machines must keep up while the lines run: size for the running hours' rate, not the day's average
    peak = 24.0 / line["hours_per_day"]
    machines = machines_needed(parts_per_day, row["images_per_s"], peak)
    serving = monthly_cost(parts_per_day, row["images_per_s"], hourly_price, peak)
    misses = defects * (1 - row["recall"]) * prices["miss"]
    alarms = (parts - defects) * row["false_alarm"] * prices["false_alarm"]
    return {"machines": machines, "serving": serving, "misses": misses, "alarms": alarms,
            "total": serving + misses + alarms, "unchecked": defects * prices["miss"], "parts": parts}


TEXT = {
    "en": {
        "title": "Decision memo: automatic visual inspection of surfaces",
        "context": "PoC run on {hardware} (profile `{profile}`). Images are SYNTHETIC surfaces (4 materials, 4 defect "
                   "kinds), generated because no real inspection set ships under a usable licence: the numbers show "
                   "the method, not your line. Test split {test} images (half defective); threshold set on {val} "
                   "validation images for a false-alarm rate of {far}, then applied to test.",
        "kpis": "KPIs, written down first (file sha256 {sha}, hashed at {hashed}, before the first model trained at "
                "{started}): recall >= {min_recall:.2f} (miss rate <= {miss}); false alarms <= "
                "{max_false_alarm:.2f}; >= {min_images_per_s_per_line:.0f} images/s on one machine per line; <= USD "
                "{max_cost_per_million:.2f} of machine time per million inspections; <= {max_labels:,} labels.",
        "recommend": "**Recommendation: {name} on the {hw}, to a shadow-mode pilot.** It meets every KPI: recall "
                     "{recall:.3f}, false alarms {far:.3f}, {ips:,.0f} images/s, USD {cpm:.3f} per million, {labels:,} "
                     "labels.",
        "none": "**Recommendation: not yet.** No candidate meets every KPI on this run. The closest, {name} on the "
                "{hw}, misses: {missed} (recall {recall:.3f}, false alarms {far:.3f}).",
        "evidence": "Evidence",
        "header": "| candidate | hardware | recall (test) | false alarms (test) | images/s | USD / million | labels | KPIs missed |",
        "met": "none",
        "curve": "Label budget (recall at a false-alarm rate <= 0.05, test split, mean over seeds: {seeds}): {curve}.",
        "risks": "Risks",
        "synthetic": "The images are synthetic. Real surfaces bring lighting, dust, new materials and defects nobody "
                     "drew: collect a few hundred real images per defect kind before trusting any number here.",
        "spread": "Seed spread: at {n:,} labels {name}'s recall ranged {low:.3f}-{high:.3f} over {seeds} seeds; a "
                  "retrained model may land anywhere in that range.",
        "threshold": "The threshold comes from {goods} good validation images: the false-alarm rate on new parts "
                     "will wander around its target; re-set it on the line's own good parts in the pilot.",
        "by_kind": "Recall by defect kind ({name}, {labels:,} labels, threshold set on validation, mean over "
                   "seeds): {kinds}. The weakest is {weakest} ({low:.2f}): collect real images of it first.",
        "where": "Where the models look (pointing game on {n} defective test images, chance {chance:.2f}): "
                 "{methods}. {verdict}",
        "where_ok": "Both point at the defect far more often than chance: the maps can help an inspector find it.",
        "where_low": "At least one does not beat chance clearly: do not show its map to inspectors as an explanation.",
        "money": "Money (assumptions: {lines} lines of {rate:.0f} parts/s, {hours:.0f} h a day, {defect} "
                 "defective, a shipped defect USD {miss:.2f}, a false alarm USD {alarm:.2f}): {name} costs about USD "
                 "{total:,.0f} a month ({machines} {machine_word} USD {serving:,.0f}, missed defects USD {misses:,.0f}, "
                 "false alarms USD {alarms:,.0f}) against USD {unchecked:,.0f} of shipped defects without inspection.",
        "next": "Next stage",
        "next_go": "Shadow mode on one line for four weeks: the model flags, people still decide; collect every "
                   "disagreement as a new label; exit when recall and false alarms hold on real parts.",
        "next_no": "Before a pilot: more labels or a larger pretraining set where the curve still rises, then re-decide "
                   "against the same KPIs.",
        "record": "Reproducibility: torch {torch}, seeds {seeds}, generator version {version}, test data sha256 {data}.",
    },
    "ja": {
        "title": "意思決定メモ：表面の自動外観検査",
        "context": "PoC の実行環境は{hardware}、プロファイルは `{profile}` です。画像は合成した表面（素材 4 種、欠陥 4 種）です。"
                   "利用できるライセンスで配布されている実際の検査画像がないため、生成しました。数値は手法を示すもので、"
                   "貴社のラインの数値ではありません。テストは {test:,} 枚（半数が欠陥品）で、しきい値は検証用の {val:,} 枚で"
                   "誤検知率が{far}になるように決め、それをテストに適用しました。",
        "kpis": "KPI はモデルを動かす前に書き留めました（ファイルの sha256 {sha}、{hashed} に記録、最初のモデルの学習開始 "
                "{started} より前）。検出率 {min_recall:.2f} 以上（見逃し率{miss}以下）、誤検知率 {max_false_alarm:.2f} 以下、"
                "ライン 1 本につきマシン 1 台で毎秒 {min_images_per_s_per_line:.0f} 枚以上、100 万件あたりのマシン費用 "
                "{max_cost_per_million:.2f} ドル以下、ラベル {max_labels:,} 件以下です。",
        "recommend": "**推奨：{name}（{hw}）で、シャドー運用のパイロットに進みます。** すべての KPI を満たしています。"
                     "検出率 {recall:.3f}、誤検知率 {far:.3f}、毎秒 {ips:,.0f} 枚、100 万件あたり {cpm:.3f} ドル、"
                     "ラベル {labels:,} 件です。",
        "none": "**推奨：まだパイロットに進みません。** 今回の実行では、すべての KPI を満たす候補はありません。"
                "KPI に最も近い候補は{name}（{hw}）ですが、{missed_and}の基準を満たしていません（検出率 {recall:.3f}、"
                "誤検知率 {far:.3f}）。",
        "evidence": "根拠",
        "header": "| 候補 | ハードウェア | 検出率（テスト） | 誤検知率（テスト） | 毎秒の処理枚数 | 100 万件あたり（ドル） | "
                  "ラベル数 | 未達の KPI |",
        "met": "なし",
        "curve": "ラベル数ごとの検出率（誤検知率 0.05 以下、テストデータ、{seeds} シードの平均）：{curve}。",
        "curve_model": "{name}はラベル {points}",  # one model's budgets: "CNN はラベル 50 件で 0.434、200 件で 0.436"
        "curve_point": "{labels:,} 件で {mean:.3f}",
        "curve_sep": "。",
        "risks": "リスク",
        "synthetic": "画像は合成したものです。実際の表面には、照明、ほこり、新しい素材、合成では描いていない欠陥があります。"
                     "ここでの数値を信頼する前に、欠陥の種類ごとに数百枚の実画像を集めてください。",
        "spread": "シードによるばらつき：ラベル {n:,} 件での{name}の検出率は、{seeds} シードで {low:.3f}〜{high:.3f} でした。"
                  "再学習したモデルの検出率は、この範囲のどこに来てもおかしくありません。",
        "threshold": "しきい値は検証用の良品 {goods} 枚から決めています。新しい部品での誤検知率は目標値の前後でばらつくため、"
                     "パイロットではそのラインの良品でしきい値を決め直してください。",
        "by_kind": "欠陥の種類別の検出率（{name}、ラベル {labels:,} 件、検証用データで決めたしきい値、シードの平均）："
                   "{kinds}。最も低いのは{weakest}（{low:.2f}）で、実画像はまずこの種類から集めてください。",
        "where": "モデルが見ている場所（欠陥のあるテスト画像 {n} 枚でのポインティングゲーム。ランダムなマップでは "
                 "{chance:.2f}）：{methods}でした。{verdict}",
        "where_method": "{method}が {pointing:.2f}",
        "where_ok": "どちらも偶然よりはるかに高い割合で欠陥を指しており、検査員が欠陥を見つける助けになり得ます。",
        "where_low": "少なくとも一方は偶然を明確には上回っていません。そのマップを説明として検査員に示さないでください。",
        "money": "費用の試算（仮定：{lines} ライン、各ライン毎秒 {rate:.0f} 個、1 日 {hours:.0f} 時間稼働、不良率{defect}、"
                 "流出した欠陥 1 件 {miss:.2f} ドル、誤検知 1 件 {alarm:.2f} ドル）：{name}の費用は月に約 {total:,.0f} "
                 "ドルです（内訳：マシン {machines} 台で {serving:,.0f} ドル、見逃し {misses:,.0f} ドル、誤検知 "
                 "{alarms:,.0f} ドル）。検査をしない場合、流出する欠陥の費用は月に {unchecked:,.0f} ドルです。",
        "next": "次の段階",
        "next_go": "1 ラインで 4 週間のシャドー運用を行います。モデルが欠陥を指摘し、判断は引き続き人が行います。食い違いは"
                   "すべて新しいラベルとして集め、実際の部品で検出率と誤検知率が目標を満たし続ければ終了します。",
        "next_no": "パイロットの前に、曲線がまだ伸びている範囲でラベルや事前学習用の画像を増やし、同じ KPI で判断し直します。",
        "record": "再現性：torch {torch}、シード {seeds}、生成器のバージョン {version}、テストデータ sha256 {data}。",
    },
}
NAMES_JA = {"CNN": "CNN", "ViT from scratch": "ゼロから学習した ViT",
            "ViT pretrained (CutPaste)": "事前学習（CutPaste）した ViT",
            "ViT pretrained (masked patches)": "事前学習（マスク予測）した ViT", "ViT pretrained, int8": "事前学習した ViT（int8）"}
KPI_NAMES_JA = {"recall": "検出率", "false alarms": "誤検知率", "line rate": "処理速度", "cost per million": "100 万件あたりのコスト",
                "labels": "ラベル数"}
DEFECTS_JA = {"scratch": "傷", "spot": "斑点", "crack": "ひび割れ", "stain": "染み"}  # as lesson 11's catalog names them
METHODS_JA = {"attention rollout (ViT)": "アテンションロールアウト（ViT）", "Grad-CAM (CNN)": "Grad-CAM（CNN）",
              "random map": "ランダムなマップ"}
def percent(share: float, lang: str = "en") -> str:
    """A share as a whole percentage: "5%" in English (as the memo always wrote it), "5 %" in Japanese (STYLE.md)."""
    return f"{share:.0%}" if lang == "en" else f"{share * 100:.0f} %"


def _and_ja(names: list[str]) -> str:
    """Japanese names joined as prose: "検出率と誤検知率"; "検出率、誤検知率と処理速度"."""
    return "、".join(names[:-1]) + "と" + names[-1] if len(names) > 1 else "".join(names)


def _name(name: str, lang: str) -> str:
    return NAMES_JA.get(name, name) if lang == "ja" else name


def judged(result: dict) -> list[dict]:
    """Every candidate row with its KPI verdict (``missed``)."""
    kpis = InspectionKPIs(**result["kpis"])
    return [{**row, "missed": kpis.failures(row)} for row in result["candidates"]]


def decision(result: dict) -> tuple[dict | None, dict]:
    """(the cheapest row meeting every KPI, or None; the row with the highest recall, fewer KPIs missed and then
    the lower cost breaking ties: the candidate worth improving when none meets them all)."""
    rows = judged(result)
    meeting = [r for r in rows if not r["missed"]]
    best = min(meeting, key=lambda r: (r["cost_per_million"], -r["recall"])) if meeting else None
    closest = min(rows, key=lambda r: (-round(r["recall"], 6), len(r["missed"]), r["cost_per_million"]))
    return best, closest


def _curve(curve: list[dict], t: dict, lang: str) -> str:
    """The label-budget points: "CNN @ 50: 0.434, CNN @ 200: 0.436" in English; in Japanese one clause per model,
    "CNN はラベル 50 件で 0.434、200 件で 0.436。ゼロから学習した ViT はラベル 50 件で 0.032"."""
    if lang == "en":
        return ", ".join(f"{r['model']} @ {r['labels']:,}: {r['mean']:.3f}" for r in curve)
    models = list(dict.fromkeys(r["model"] for r in curve))
    return t["curve_sep"].join(
        t["curve_model"].format(name=_name(model, lang), points="、".join(
            t["curve_point"].format(labels=r["labels"], mean=r["mean"]) for r in curve if r["model"] == model))
        for model in models)


def _by_kind(by_kind: list[dict], chosen: dict, t: dict, lang: str) -> str | None:
    """The chosen model's recall for each defect kind and its weakest kind; None when the result has none for it."""
    rows = [r for r in by_kind if r["model"] == chosen["model"] and r["mean"] is not None]
    if not rows:
        return None
    name = (lambda kind: DEFECTS_JA.get(kind, kind)) if lang == "ja" else (lambda kind: kind)
    kinds = ("、" if lang == "ja" else ", ").join(f"{name(r['kind'])} {r['mean']:.2f}" for r in rows)
    from .inspection import weakest_kind  # imported here: the memo renders without torch until it needs this

    weakest = weakest_kind(by_kind, chosen["model"])
    return t["by_kind"].format(name=_name(chosen["model"], lang), labels=rows[0]["labels"], kinds=kinds,
                               weakest=name(weakest["kind"]), low=weakest["mean"])


def _where(where: list[dict], t: dict, lang: str) -> str:
    """The pointing-game line of the risks: each method against the random map, and whether to show the maps."""
    chance = next(r["pointing"] for r in where if r["method"] == "random map")
    shown = [r for r in where if r["method"] != "random map"]
    methods = ("、".join(t["where_method"].format(method=METHODS_JA.get(r["method"], r["method"]), pointing=r["pointing"])
                        for r in shown) if lang == "ja"
               else ", ".join(f"{r['method']} {r['pointing']:.2f}" for r in shown))
    # above chance: the method's whole 95 % interval lies above the random map's (as the lesson prints it)
    chance_high = next(r["pointing_interval"][1] for r in where if r["method"] == "random map")
    clear = all(r["pointing_interval"][0] > chance_high for r in shown)
    return t["where"].format(n=where[0]["images"], chance=chance, methods=methods,
                             verdict=t["where_ok" if clear else "where_low"])


def memo(result: dict, lang: str = "en", level: int = 1) -> str:
    """The one-page memo as Markdown; every number comes from ``result`` (see lesson 11)."""
    if lang not in TEXT:
        raise ValueError(f"lang must be one of {sorted(TEXT)}, got {lang!r}")
    t, rows = TEXT[lang], judged(result)
    best, closest = decision(result)
    chosen = best or closest
    sep = "、" if lang == "ja" else ", "
    missed = lambda names: sep.join(KPI_NAMES_JA[n] if lang == "ja" else n for n in names)
    kpis, hashed = result["kpis"], result["record"]["kpis"]
    facts = dict(name=_name(chosen["candidate"], lang), hw=chosen["hardware"].upper(), recall=chosen["recall"],
                 far=chosen["false_alarm"], ips=chosen["images_per_s"], cpm=chosen["cost_per_million"],
                 labels=chosen["labels"], missed=missed(chosen["missed"]),
                 missed_and=_and_ja([KPI_NAMES_JA[n] for n in chosen["missed"]]))
    lines = [f"{'#' * level} {t['title']}", "",
             t["context"].format(hardware=hardware_name(result["hardware"], lang), profile=result["profile"],
                                 test=result["test_images"], val=result["validation_images"],
                                 far=percent(kpis["max_false_alarm"], lang)), "",
             t["recommend" if best else "none"].format(**facts), "",
             t["kpis"].format(**kpis, miss=percent(1 - kpis["min_recall"], lang), sha=hashed["sha256"],
                              hashed=hashed["hashed_at"], started=result["record"]["training_started_at"]), "",
             f"{'#' * (level + 1)} {t['evidence']}", "", t["header"], "|" + " --- |" * 8]
    for row in rows:
        lines.append(f"| {_name(row['candidate'], lang)} | {row['hardware'].upper()} | {row['recall']:.3f} | "
                     f"{row['false_alarm']:.3f} | {row['images_per_s']:,.0f} | {row['cost_per_million']:.3f} | "
                     f"{row['labels']:,} | {missed(row['missed']) or t['met']} |")
    curve = result["curve"]
    seeds = max(r["seeds"] for r in curve)
    lines += ["", t["curve"].format(seeds=seeds, curve=_curve(curve, t, lang)), "",
              f"{'#' * (level + 1)} {t['risks']}", "", "- " + t["synthetic"]]
    spread = [r for r in curve if r["model"] == chosen["model"] and r["labels"] == chosen["labels"]]
    if spread and spread[0]["seeds"] > 1:
        lines.append("- " + t["spread"].format(n=chosen["labels"], name=_name(chosen["model"], lang),
                                               low=spread[0]["min"], high=spread[0]["max"], seeds=spread[0]["seeds"]))
    lines.append("- " + t["threshold"].format(goods=result["validation_images"] // 2))
    kinds_line = _by_kind(result.get("by_kind") or [], chosen, t, lang)
    if kinds_line:
        lines.append("- " + kinds_line)
    if result.get("localisation"):
        lines.append("- " + _where(result["localisation"], t, lang))
    cost = monthly_line_cost(chosen, chosen["hourly_price"])
    lines += ["- " + t["money"].format(lines=LINE["lines"], rate=LINE["parts_per_s"], hours=LINE["hours_per_day"],
                                       defect=percent(LINE["defect_rate"], lang), miss=ERROR_PRICES["miss"],
                                       alarm=ERROR_PRICES["false_alarm"], name=_name(chosen["candidate"], lang),
                                       machine_word="machine" if cost["machines"] == 1 else "machines", **cost),
              "", f"{'#' * (level + 1)} {t['next']}", "", t["next_go" if best else "next_no"], "",
              "<small>" + t["record"].format(**result["record"]["reproduce"]) + "</small>"]
    if lang == "ja":  # names and numbers are put into Japanese sentences: space them as STYLE.md says
        lines = [japanese_spacing(line) for line in lines]
    return "\n".join(lines) + "\n"
