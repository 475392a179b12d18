"""Lesson 10's outputs for a decision maker, generated from the result dict of ``candidates.run_poc``: never typed.

- ``memo(result, lang)``: the one-page decision memo in English ("en") or Japanese ("ja");
- ``plot_candidates(result, lang)``: each candidate's accuracy and cost per million beside the KPIs, in either language
  (Japanese with IPAexGothic from the matplotlib-fontja package: it renders offline);
- ``what_if_widget(result)``: sliders for volume and prices, the monthly cost and break-even per candidate;
- ``python -m attention_course.memo NOTEBOOK``: write the memo pages and the Japanese figure of the book
  from the result stored in an executed lesson-10 notebook.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from .poc import PROVENANCE, KPIs, choose, monthly_cost, what_if

RESULT_MIME = "application/json"
ROOT = Path(__file__).resolve().parent.parent

TEXT = {
    "en": {
        "title": "Decision memo: automatic triage of review sentences",
        "context": "Proof of concept run on {hardware} (profile `{profile}`), {test} test sentences, training pool "
                   "{pool} labelled sentences. Prices are assumptions: CPU box ${cpu:.2f}/h, GPU ${gpu:.2f}/h.",
        "recommend": "**Recommendation: {name} on {hw}.** It meets every KPI: accuracy {acc}, p95 latency "
                     "{p95} ms, ${cpm} per million predictions, {labels} labels.",
        "none": "**Recommendation: do not move to a pilot yet.** No candidate meets every KPI on this run. The most "
                "accurate, {name} on {hw} ({acc}), misses: {missed}.",
        "kpis": "KPIs, fixed before any model ran: accuracy >= {min_accuracy:.2f}; p95 latency <= {max_p95_ms:.0f} ms "
                "(one sentence); <= ${max_cost_per_million:.2f} per million predictions; <= {max_labels:,} labels; "
                "explanations shown to users agree with erasure at Spearman >= {min_explanation_agreement:.2f}.",
        "evidence": "Evidence",
        "header": "| candidate | hardware | test accuracy | p95 (ms) | $ / million | labels | training (s) | KPIs missed |",
        "met": "none",
        "risks": "Risks",
        "explain": "Attention maps agree with erasure at Spearman {att} (gradient x input {grad}; "
                   "{n} sentences): below {thr:.2f}, so attention maps are not shown as explanations.",
        "slices": "Slices of {name} more than {gap:.0f} points below its overall accuracy (>= {min_n} sentences): {list}.",
        "no_slices": "No slice of {name} with >= {min_n} sentences falls more than {gap:.0f} points below its overall "
                     "accuracy.",
        "thin": "Thin margin: {name} clears the {thr:.2f} accuracy KPI by {margin:.1f} points on average, but {low} of "
                "its {n} seeds scored below it ({scores}), so a retrained copy may miss it. Confirm the accuracy on live data "
                "in the pilot before relying on it.",
        "licence": "Data and model: {items}. The review data set states no licence of its own: clear it before use.",
        "next": "Next stage",
        "next_go": "Pilot in shadow mode for four weeks: the model labels live traffic, people still decide; exit when "
                   "the KPIs hold on live data and no slice gap exceeds the threshold.",
        "next_no": "Extend the PoC before a pilot: the full run (GPU profile: all labels, three seeds), the "
                   "distilled and quantised candidates of lesson 08, and more labels where the accuracy curve still "
                   "rises. Re-decide against the same KPIs.",
        "next_full": "Before a pilot (this run already covers all labels, {seeds} seeds and lesson 08's cheaper "
                     "variants): try label budgets between {budget:,} and the KPI's {max_labels:,} with those variants, "
                     "repeat the latency measurements on the machine that would serve, or agree with the business which "
                     "KPI it can relax. Re-decide against the same KPIs.",
        "record": "Reproducibility: commit {commit}, torch {torch}, transformers {transformers}, scikit-learn "
                  "{sklearn}, seeds {seeds}, test data sha256 {sha}.",
    },
    "ja": {
        "title": "意思決定メモ：レビュー文の自動振り分け",
        "context": "PoC の実行環境：{hardware}（プロファイル `{profile}`）、テスト文 {test} 件、学習用のラベル付き文 "
                   "{pool} 件。価格は仮定です：CPU サーバー 1 時間 {cpu:.2f} ドル、GPU 1 時間 {gpu:.2f} ドル。",
        "recommend": "**推奨：{name}（{hw}）。** すべての KPI を満たします：正解率 {acc}、p95 レイテンシ {p95} ms、"
                     "100 万件あたり {cpm} ドル、ラベル {labels} 件。",
        "none": "**推奨：まだパイロットに進まない。** 今回の実行では、すべての KPI を満たす候補はありません。"
                "最も正解率の高い {name}（{hw}、{acc}）が満たさない KPI：{missed}。",
        "kpis": "KPI（モデルを動かす前に決定）：正解率 {min_accuracy:.2f} 以上、p95 レイテンシ {max_p95_ms:.0f} ms 以下"
                "（1 文ずつ）、100 万件あたり {max_cost_per_million:.2f} ドル以下、ラベル {max_labels:,} 件以下、"
                "利用者に示す説明は消去法との一致（スピアマン）{min_explanation_agreement:.2f} 以上。",
        "evidence": "根拠",
        "header": "| 候補 | ハードウェア | テスト正解率 | p95 (ms) | 100 万件あたり ($) | ラベル数 | 学習 (秒) | 未達の KPI |",
        "met": "なし",
        "risks": "リスク",
        "explain": "注意（アテンション）マップと消去法の一致はスピアマン {att}（勾配×入力は {grad}、{n} 文）。"
                   "基準 {thr:.2f} を下回るため、注意マップを説明として示しません。",
        "slices": "{name} で全体の正解率より {gap:.0f} ポイント以上低いスライス（{min_n} 文以上）：{list}。",
        "no_slices": "{name} には、全体の正解率より {gap:.0f} ポイント以上低いスライス（{min_n} 文以上）はありません。",
        "thin": "余裕が小さい：{name} の正解率は平均で KPI {thr:.2f} を {margin:.1f} ポイント上回りますが、{n} シードのうち "
                "{low} シードは下回りました（{scores}）。再学習したモデルが KPI を下回る可能性があるため、"
                "パイロットの実データで正解率を確かめてから頼ること。",
        "licence": "データとモデル：{items}。レビューのデータセット自体にはライセンスの記載がないため、利用前に確認が必要です。",
        "next": "次の段階",
        "next_go": "4 週間のシャドー運用でパイロット：モデルが実データを振り分け、判断は引き続き人が行う。"
                   "実データで KPI を満たし、スライスの差が基準内であれば終了。",
        "next_no": "パイロットの前に PoC を拡張：フル実行（GPU プロファイル：全ラベル、3 シード）、第 08 回の蒸留・量子化モデル、"
                   "正解率がまだ伸びている範囲でのラベル追加。同じ KPI で再判断する。",
        "next_full": "パイロットの前に（今回の実行は全ラベル・{seeds} シード・第 08 回の軽量化モデルを含みます）："
                     "ラベル {budget:,} 件から KPI の上限 {max_labels:,} 件までの範囲でそれらのモデルを試す、"
                     "実際に推論するマシンでレイテンシを測り直す、または緩められる KPI を事業側と合意する。同じ KPI で再判断する。",
        "record": "再現性：コミット {commit}、torch {torch}、transformers {transformers}、scikit-learn {sklearn}、"
                  "シード {seeds}、テストデータ sha256 {sha}。",
    },
}
CANDIDATES_JA = {"majority class": "多数派クラス", "TF-IDF + logistic regression": "TF-IDF + ロジスティック回帰",
                 "linear probe on MiniLM": "MiniLM の線形プローブ", "fine-tuned MiniLM": "ファインチューニングした MiniLM",
                 "distilled 3-layer MiniLM": "蒸留した 3 層 MiniLM", "int8 fine-tuned MiniLM": "int8 に量子化した MiniLM"}
KPI_NAMES_JA = {"accuracy": "正解率", "p95 latency": "p95 レイテンシ", "cost per million": "100 万件あたりコスト",
                "labels": "ラベル数"}
HARDWARE_JA = {"cpu": "CPU", "gpu": "GPU"}


def candidate_name(name: str, lang: str = "en") -> str:
    """A candidate's name in ``lang`` ("fine-tuned MiniLM, 2,000 labels" -> "ファインチューニングした MiniLM（ラベル 2,000 件）")."""
    base, _, labels = name.partition(", ")
    if lang == "en":
        return base + (f", {labels}" if labels else "")
    return CANDIDATES_JA.get(base, base) + (f"（ラベル {labels.split()[0]} 件）" if labels else "")


def missed_kpis(missed: list[str], lang: str = "en") -> str:
    """The KPIs a row misses, named in ``lang`` ("accuracy, labels"; "正解率、ラベル数"); empty when it misses none."""
    if lang == "ja":
        return "、".join(KPI_NAMES_JA[name] for name in missed)
    return ", ".join(missed)


def _signed(value) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _fmt_accuracy(row: dict) -> str:
    return f"{row['accuracy']:.3f}" + (f" ± {row['accuracy_std']:.3f}" if row["accuracy_std"] else "")


def evidence_rows(result: dict) -> list[dict]:
    """The rows of the evidence table, with the KPIs each one misses."""
    kpis = KPIs(**result["kpis"])
    return [{**row, "missed": kpis.failures(row)} for row in result["rows"]]


def _next_stage(t: dict, result: dict, rows: list[dict], kpis: KPIs, best: dict | None) -> str:
    """The next step: a pilot when a candidate meets every KPI; else, after a full (gpu-profile) run, what the full
    run did not try; else the full run itself."""
    if best:
        return t["next_go"]
    budgets = [row["labels"] for row in rows if 0 < row["labels"] <= kpis.max_labels]
    if result["profile"] != "gpu" or not budgets:
        return t["next_no"]
    return t["next_full"].format(seeds=len(result["record"]["seeds"]), budget=max(budgets), max_labels=kpis.max_labels)


def _thin_margin(t: dict, result: dict, best: dict | None, kpis: KPIs, lang: str) -> list[str]:
    """A risk line when the recommended candidate clears the accuracy KPI on average but some of its seeds do not."""
    scores = result.get("accuracies", {}).get(best["candidate"], []) if best else []
    low = [score for score in scores if score < kpis.min_accuracy]
    if not low:
        return []
    return ["- " + t["thin"].format(name=candidate_name(best["candidate"], lang), thr=kpis.min_accuracy,
                                    margin=100 * (best["accuracy"] - kpis.min_accuracy), low=len(low), n=len(scores),
                                    scores=", ".join(f"{score:.3f}" for score in scores))]


def memo(result: dict, lang: str = "en", level: int = 1) -> str:
    """The one-page decision memo as Markdown, every number taken from ``result``; its title at heading ``level``."""
    if lang not in TEXT:
        raise ValueError(f"lang must be one of {sorted(TEXT)}, got {lang!r}")
    t, kpis = TEXT[lang], KPIs(**result["kpis"])
    rows = evidence_rows(result)
    best, closest = choose(rows, kpis)
    chosen = best or closest
    lines = [f"{'#' * level} {t['title']}", "",
             t["context"].format(hardware=result["hardware"], profile=result["profile"], test=result["test_sentences"],
                                 pool=result["train_pool"], cpu=result["prices"]["cpu"], gpu=result["prices"]["gpu"]), ""]
    facts = dict(name=candidate_name(chosen["candidate"], lang), hw=chosen["hardware"].upper(), acc=_fmt_accuracy(chosen),
                 p95=f"{chosen['p95_ms']:.1f}", cpm=f"{chosen['cost_per_million']:.3f}", labels=f"{chosen['labels']:,}",
                 missed=missed_kpis(chosen["missed"], lang))
    lines += [t["recommend" if best else "none"].format(**facts), "", t["kpis"].format(**result["kpis"]), "",
              f"{'#' * (level + 1)} {t['evidence']}", "", t["header"], "|" + " --- |" * 8]
    for row in rows:
        lines.append(f"| {candidate_name(row['candidate'], lang)} | {row['hardware'].upper()} | {_fmt_accuracy(row)} | "
                     f"{row['p95_ms']:.1f} | "
                     f"{row['cost_per_million']:.3f} | {row['labels']:,} | {row['train_seconds']:.1f} | "
                     f"{missed_kpis(row['missed'], lang) or t['met']} |")
    explanation = result["explanation"]
    slices = [s for s in result["slices"][chosen["candidate"]] if s["flagged"]]
    slice_text = "; ".join(f"{s['slice']} {s['accuracy']:.3f} (n={s['n']})" for s in slices)
    rule = result["slice_rule"]
    gap = dict(name=candidate_name(chosen["candidate"], lang), gap=100 * rule["max_gap"], min_n=rule["min_size"], list=slice_text)
    lines += ["", f"{'#' * (level + 1)} {t['risks']}", "",
              "- " + t["explain"].format(att=_signed(explanation["attention"]), grad=_signed(explanation["gradient x input"]),
                                         n=result["explanation_sentences"], thr=kpis.min_explanation_agreement),
              "- " + (t["slices"] if slices else t["no_slices"]).format(**gap),
              *_thin_margin(t, result, best, kpis, lang),
              "- " + t["licence"].format(items="; ".join(f"{p['item']} ({p['licence'].split(';')[0]})"
                                                          for p in PROVENANCE[:2])),
              "", f"{'#' * (level + 1)} {t['next']}", "", _next_stage(t, result, rows, kpis, best), ""]
    record = result["record"]
    lines.append("<small>" + t["record"].format(commit=record["commit"], torch=record["torch"],
                                                 transformers=record["transformers"], sklearn=record["scikit-learn"],
                                                 seeds=record["seeds"], sha=record["data"]["test"]["sha256"]) + "</small>")
    return "\n".join(lines) + "\n"


CLOUD_VOLUMES = (10_000, 1_000_000, 100_000_000)  # predictions a day: a team, a product, a platform
CLOUD_TEXT = {
    "en": dict(caption="Measured on {hardware} (profile `{profile}`); hourly prices are assumptions: CPU box "
                       "${cpu:.2f}, GPU ${gpu:.2f}.",
               header="| candidate | hardware | predictions/s | $ / million | " + " | ".join(
                   f"$ / month at {v:,} a day" for v in CLOUD_VOLUMES) + " |"),
    "ja": dict(caption="計測環境：{hardware}（プロファイル `{profile}`）。1 時間あたりの価格は仮定：CPU サーバー "
                       "{cpu:.2f} ドル、GPU {gpu:.2f} ドル。",
               header="| 候補 | ハードウェア | 件/秒 | 100 万件あたり ($) | " + " | ".join(
                   f"1 日 {v:,} 件の月額 ($)" for v in CLOUD_VOLUMES) + " |"),
}


def cloud_table(result: dict, lang: str = "en") -> str:
    """Markdown: each measured candidate on each hardware, cost per million and monthly cost at three volumes."""
    t = CLOUD_TEXT[lang]
    lines = [t["caption"].format(hardware=result["hardware"], profile=result["profile"], cpu=result["prices"]["cpu"],
                                 gpu=result["prices"]["gpu"]), "", t["header"], "|" + " --- |" * (4 + len(CLOUD_VOLUMES))]
    for row in result["rows"]:
        if row["labels"] == 0:  # the majority class serves nothing worth pricing
            continue
        monthly = [f"{monthly_cost(v, row['throughput_per_s'], row['hourly_price']):,.0f}" for v in CLOUD_VOLUMES]
        lines.append(f"| {candidate_name(row['candidate'], lang)} | {row['hardware'].upper()} | "
                     f"{row['throughput_per_s']:,.0f} | {row['cost_per_million']:.3f} | " + " | ".join(monthly) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the figure, in English or Japanese

LABELS = {
    "en": dict(accuracy="test accuracy\n(dot: mean over seeds)", cost="\\$ per million predictions (log)",
               floor=";\n\\$0 drawn at 1e-4", kpi="KPI threshold", seed="one seed",
               met="meets every KPI", missed="misses a KPI", missed_header="KPIs missed",
               title="Candidates against the KPIs"),
    "ja": dict(accuracy="テスト正解率\n（点：シードの平均）", cost="100 万件あたりのコスト（ドル、対数）",
               floor="\n0 ドルは 1e-4 に表示", kpi="KPI の基準", seed="各シード",
               met="すべての KPI を満たす", missed="未達の KPI あり", missed_header="未達の KPI",
               title="候補と KPI の比較"),
}
MET_COLOUR, MISSED_COLOUR = "tab:green", "tab:gray"


def japanese_font():
    """The FontProperties of IPAexGothic, shipped inside the matplotlib-fontja package (no download, no system font)."""
    from matplotlib.font_manager import FontProperties, fontManager
    from matplotlib_fontja import get_font_ttf_path

    path = get_font_ttf_path()
    fontManager.addfont(path)
    return FontProperties(fname=path)


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
    names = [f"{candidate_name(row['candidate'], lang)} ({row['hardware'].upper()})" for row in rows]
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
        ax.set_xlabel(title, fontproperties=font)
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
    fig.suptitle(f"{labels['title']} ({result['hardware']})", fontproperties=font, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.legend(handles=legend, loc="lower center", ncol=4, prop=font, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    return fig


# ---------------------------------------------------------------- the what-if widget


def format_months(months: float) -> str:
    """Break-even as words: "never", "3.2 days" (under a month) or "4.5 months"."""
    if math.isinf(months):
        return "never"
    return f"{months * 30.4:.1f} days" if months < 1 else f"{months:.1f} months"


def what_if_table(rows: list[dict]) -> str:
    """HTML table of ``poc.what_if`` rows (scrolls sideways inside itself on a phone)."""
    head = ("<tr><th>candidate</th><th>hw</th><th>$/M</th><th>machines</th><th>monthly $</th><th>one-off $</th>"
            "<th>break-even</th><th>KPIs missed</th></tr>")
    body = []
    for row in rows:
        even = format_months(row["break_even_months"])
        body.append(f"<tr><td>{row['candidate']}</td><td>{row['hardware'].upper()}</td>"
                    f"<td>{row['cost_per_million']:.3f}</td><td>{row['machines']}</td><td>{row['monthly']:,.0f}</td>"
                    f"<td>{row['one_off']:,.0f}</td><td>{even}</td><td>{missed_kpis(row['missed']) or 'none'}</td></tr>")
    return f"<div style='overflow-x:auto'><table>{head}{''.join(body)}</table></div>"


def what_if_widget(result: dict):
    """Sliders: daily volume, CPU and GPU hourly price, price per label; below them the table and the choice."""
    import ipywidgets as widgets

    kpis = KPIs(**result["kpis"])
    volume = widgets.FloatLogSlider(value=1e5, base=10, min=3, max=8, step=0.25, description="per day",
                                    readout_format=",.0f")
    cpu = widgets.FloatSlider(value=result["prices"]["cpu"], min=0.02, max=2.0, step=0.02, description="CPU $/h")
    gpu = widgets.FloatSlider(value=result["prices"]["gpu"], min=0.5, max=12.0, step=0.25, description="GPU $/h")
    label = widgets.FloatSlider(value=0.10, min=0.01, max=2.0, step=0.01, description="$/label")
    table = widgets.HTML()

    def update(_=None):
        rows = what_if(result["rows"], volume.value, cpu.value, gpu.value, label.value, kpis)
        best, _closest = choose(rows, kpis)
        verdict = (f"<b>Meets all KPIs, cheapest: {best['candidate']} on {best['hardware'].upper()}</b>" if best
                   else "<b>No candidate meets all KPIs at these prices.</b>")
        table.value = (f"<p>{verdict} Manual triage at the label price: ${rows[0]['manual_monthly']:,.0f} a month."
                       f"</p>{what_if_table(rows)}")

    for control in (volume, cpu, gpu, label):
        control.observe(update, "value")
    update()
    return widgets.VBox([widgets.HBox([volume, cpu]), widgets.HBox([gpu, label]), table])


# ---------------------------------------------------------------- from a stored notebook to the book


def result_from_notebook(path: str | Path) -> dict:
    """The result dict that an executed lesson-10 notebook stored as a JSON output."""
    import nbformat

    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(RESULT_MIME)
            if isinstance(data, dict) and "rows" in data and "kpis" in data:
                return data
    raise LookupError(f"{path} holds no stored lesson-10 result: execute it first")


def for_book(markdown: str) -> str:
    """``markdown`` with every dollar sign escaped: the book's MyST parser reads a pair of them as inline math
    ("CPU box $0.10/h, GPU $4.00/h" would become a formula and load MathJax, which breaks the widgets' pages)."""
    return re.sub(r"(?<!\\)\$", r"\\$", markdown)


def write_book_pages(notebook: str | Path, root: Path = ROOT) -> list[Path]:
    """Write the memo and the cost table (book/decision/ and book/ja/) and the Japanese figure from ``notebook``."""
    import matplotlib

    matplotlib.use("Agg")
    result = result_from_notebook(notebook)
    written = []
    for lang, folder in (("en", "decision"), ("ja", "ja")):
        for name, text in (("memo.md", for_book(memo(result, lang, level=2))),
                           ("cloud_table.md", for_book(cloud_table(result, lang)))):
            path = root / "book" / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    for lang, folder in (("en", "decision"), ("ja", "ja")):
        figure = root / "book" / folder / "figures" / "poc_candidates.png"
        figure.parent.mkdir(parents=True, exist_ok=True)
        plot_candidates(result, lang).savefig(figure, dpi=110)
        written.append(figure)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_course.memo", description=__doc__.splitlines()[0])
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

