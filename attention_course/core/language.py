"""The language of what the library shows a learner (widget labels, buttons, legends, verdicts), and the one table
of those messages in English and Japanese.

Which language a widget speaks, first match wins:

1. the ``lang`` argument the notebook passes (``"en"`` or ``"ja"``);
2. ``$ATTENTION_COURSE_LANG`` (set it for a whole session, or for a headless run of a Japanese notebook);
3. the folder of the notebook the kernel runs: a notebook in ``notebooks-ja/``, ``exercises-ja/`` or
   ``solutions-ja/`` (the folders ``attention-course i18n notebooks`` writes) speaks Japanese. Jupyter Server tells
   its kernel the notebook's path in ``$JPY_SESSION_NAME``; VS Code puts it in ``__vsc_ipynb_file__``;
4. English.

So a Japanese notebook shares every code cell with the English one (``memo.what_if_widget(result)``) and still
shows Japanese widgets. Names (MiniLM, CPU, GPU, KPI, [CLS]), numbers and units stay as they are in both languages.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

LANGUAGES = ("en", "ja")
DEFAULT = "en"
LANG_ENV = "ATTENTION_COURSE_LANG"
SESSION_ENV = "JPY_SESSION_NAME"  # Jupyter Server: the path of the notebook a kernel was started for
NOTEBOOK_FOLDERS = ("notebooks", "exercises", "solutions")


def localised_folder(folder: str, lang: str) -> str:
    """Where the ``lang`` notebooks of ``folder`` live: a sibling folder (``notebooks-ja``), so that a lesson's
    relative paths (``../results``) lead where they do from the English notebook."""
    return folder if lang == DEFAULT else f"{folder}-{lang}"


def check_language(lang: str) -> str:
    """``lang`` if the course speaks it, else a ValueError that names the choices."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {', '.join(map(repr, LANGUAGES))}, not {lang!r}")
    return lang


def notebook_language(path: str | os.PathLike | None) -> str | None:
    """The language of a notebook by its folder ("notebooks-ja/06_x.ipynb" -> "ja"), or None for any other path."""
    if not path:
        return None
    folder = Path(str(path)).parent.name
    for lang in LANGUAGES:
        if lang != DEFAULT and folder in {localised_folder(name, lang) for name in NOTEBOOK_FOLDERS}:
            return lang
    return None


# What `attention-course i18n notebooks` records in a notebook it writes: {"language": "ja", "source": ..., ...}
GENERATED_METADATA = "attention_course_i18n"


def metadata_language(metadata: dict) -> str | None:
    """The language a notebook's metadata records (a Japanese notebook, or an assignment made from one), or None."""
    lang = (metadata or {}).get(GENERATED_METADATA, {}).get("language")
    return lang if lang in LANGUAGES else None


def _running_notebook() -> str | None:
    """The path of the notebook this kernel runs, where the front end says it (None outside a notebook)."""
    if os.environ.get(SESSION_ENV):
        return os.environ[SESSION_ENV]
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell.user_ns.get("__vsc_ipynb_file__") if shell is not None else None


def language(lang: str | None = None) -> str:
    """The language to show: ``lang`` if given, else ``$ATTENTION_COURSE_LANG``, else the running notebook's folder,
    else English. A language the course does not speak is a ValueError naming the choices."""
    if lang is not None:
        return check_language(lang)
    if os.environ.get(LANG_ENV):
        return check_language(os.environ[LANG_ENV].strip().lower())
    return notebook_language(_running_notebook()) or DEFAULT


# One entry per message: {"en": ..., "ja": ...}, with the same {placeholders} in both. Japanese follows
# book/locales/STYLE.md (です・ます in sentences, 層 and ヘッド, アテンション, ドル, half-width numbers).
MESSAGES: dict[str, dict[str, str]] = {
    # controls shared by the attention explorers (lessons 06 and 09)
    "layer": {"en": "Layer", "ja": "層"},
    "layer_n": {"en": "layer {n}", "ja": "層 {n}"},
    "head": {"en": "Head", "ja": "ヘッド"},
    "head_n": {"en": "head {n}", "ja": "ヘッド {n}"},
    "mean_heads": {"en": "mean over heads", "ja": "ヘッドの平均"},
    # lesson 06: inside.explorer.AttentionExplorer
    "sentence": {"en": "Sentence", "ja": "文"},
    "rollout_all": {"en": "rollout over all layers", "ja": "全層のロールアウト"},
    "too_long": {"en": "Your text has {tokens} tokens; the model reads at most {limit}, so only the first {limit} "
                       "are shown.",
                 "ja": "入力は {tokens} トークンです。モデルが読めるのは最大 {limit} トークンなので、最初の {limit} "
                       "トークンだけを表示します。"},
    "type_sentence": {"en": "Type a sentence above to see where the model's attention goes.",
                      "ja": "上の欄に文を入力すると、モデルのアテンションがどこに向かうかを表示します。"},
    "no_attention": {"en": "Could not compute attention: {error}", "ja": "アテンションを計算できませんでした：{error}"},
    "top_tokens": {"en": "Most attended tokens (mean weight received): {listed}",
                   "ja": "アテンションを最も集めたトークン（受け取った重みの平均）：{listed}"},
    "token_weight": {"en": "<b>{token}</b> ({weight:.2f})", "ja": "<b>{token}</b>（{weight:.2f}）"},
    "list_separator": {"en": ", ", "ja": "、"},
    "rollout_title": {"en": "Attention rollout over all layers", "ja": "全層のアテンションロールアウト"},
    "layer_title": {"en": "Layer {layer}, {head}", "ja": "層 {layer}、{head}"},
    "explorer": {"en": "Attention explorer", "ja": "アテンション・エクスプローラー"},
    "snapshot": {"en": "{name} (a snapshot; run the notebook to use the controls)",
                 "ja": "{name}（スナップショットです。操作するにはノートブックを実行してください）"},
    "sentence_is": {"en": "Sentence: {text}", "ja": "文：{text}"},
    # heatmaps (inside.viz.plot_heatmap and the explorer's long-text map)
    "keys": {"en": "attended to (key)", "ja": "参照される側（キー）"},
    "queries": {"en": "attending (query)", "ja": "参照する側（クエリ）"},
    "key_positions": {"en": "attended to (token position)", "ja": "参照される側（トークンの位置）"},
    "query_positions": {"en": "attending (token position)", "ja": "参照する側（トークンの位置）"},
    "weight": {"en": "attention weight", "ja": "アテンションの重み"},
    # bertviz's own controls (inside.viz.head_view and model_view)
    "bertviz_layer": {"en": "Layer: {select}", "ja": "層：{select}"},
    "bertviz_layers": {"en": "Layers", "ja": "層"},
    "bertviz_heads": {"en": "Heads", "ja": "ヘッド"},
    "bertviz_detail": {"en": "Layer {layer}, Head {head}", "ja": "層 {layer}、ヘッド {head}"},
    # lesson 09: beyond.vision.attention_explorer
    "image": {"en": "Image", "ja": "画像"},
    "rollout_layers": {"en": "rollout (all layers)", "ja": "ロールアウト（全層）"},
    "cls_note": {"en": "Bright = where the [CLS] token looks (its attention over the patches). With rollout, the head "
                       "choice does not apply.",
                 "ja": "明るいところが [CLS] トークンの見ている場所です（パッチへのアテンション）。ロールアウトでは、"
                       "ヘッドの選択は使われません。"},
    "image_caption": {"en": "test image {i}: a {label} (model says {predicted})",
                      "ja": "テスト画像 {i}：正解 {label}（モデルの予測 {predicted}）"},
    # progress bars (tqdm's widget in a notebook): what runs
    "progress_training": {"en": "training", "ja": "学習"},
    "progress_runs": {"en": "runs", "ja": "実行"},
    "progress_students": {"en": "students", "ja": "生徒モデル"},
    "progress_candidates": {"en": "candidates", "ja": "候補"},
    "progress_contrastive": {"en": "contrastive", "ja": "対照学習"},
    "progress_captioner": {"en": "captioner", "ja": "キャプション生成"},
    "progress_forecaster": {"en": "forecaster", "ja": "予測モデル"},
    "progress_pretraining": {"en": "pretraining (no labels)", "ja": "事前学習（ラベルなし）"},
    "progress_inspection": {"en": "inspection runs", "ja": "検査の実行"},
    "progress_images": {"en": "{name}, {n} images", "ja": "{name}、画像 {n} 枚"},
    "progress_labels": {"en": "{name}, {n} labels", "ja": "{name}、ラベル {n} 件"},
    # lesson 11's probe-first fine-tuning: its two phases, each a bar of its own
    "progress_head_only": {"en": "{desc}, head only", "ja": "{desc}、ヘッドのみ"},
    "progress_whole_network": {"en": "{desc}, whole network", "ja": "{desc}、ネットワーク全体"},
    # lesson 10: proof.memo.what_if_widget
    "volume": {"en": "sentences a day", "ja": "1 日の文の数"},
    "peak": {"en": "peak / average", "ja": "ピーク ÷ 平均"},
    "cpu_price": {"en": "CPU box $/hour", "ja": "CPU サーバー（ドル/時）"},
    "gpu_price": {"en": "GPU $/hour", "ja": "GPU（ドル/時）"},
    "label_price": {"en": "person's decision $", "ja": "人の判断 1 件（ドル）"},
    "miss_price": {"en": "missed negative $", "ja": "見逃した否定的な文（ドル）"},
    "alarm_price": {"en": "false alarm $", "ja": "誤って人に回した文（ドル）"},
    "threshold": {"en": "confidence threshold", "ja": "確信度のしきい値"},
    "times": {"en": "{value:.1f}x", "ja": "{value:.1f} 倍"},
    "dollars": {"en": "${value:.2f}", "ja": "{value:.2f} ドル"},
    "cheapest": {"en": "Meets all KPIs, cheapest: {named}", "ja": "すべての KPI を満たす最安の候補：{named}"},
    "none_meets": {"en": "No candidate meets all KPIs (they do not depend on these sliders).",
                   "ja": "すべての KPI を満たす候補はありません（KPI の判定はこれらのスライダーでは変わりません）。"},
    "without_model": {"en": "Without a model (the cheaper of people deciding everything and nobody reading anything): "
                            "${monthly:,.0f} a month.",
                      "ja": "モデルを使わない場合（人がすべてを判断するか、誰も読まないかの安いほう）は月額 {monthly:,.0f} "
                            "ドルです。"},
    "verdict_line": {"en": "<b>{verdict}</b> {without}", "ja": "<b>{verdict}</b>{without}"},
    "col_candidate": {"en": "candidate", "ja": "候補"},
    "col_hardware": {"en": "hw", "ja": "ハードウェア"},
    "col_machines": {"en": "machines", "ja": "台数"},
    "col_automated": {"en": "automated", "ja": "自動判断の割合"},
    "col_right": {"en": "right when automated", "ja": "自動判断の正解率"},
    "col_serving": {"en": "serving $/month", "ja": "推論（ドル/月）"},
    "col_people": {"en": "people $/month", "ja": "人の判断（ドル/月）"},
    "col_errors": {"en": "errors $/month", "ja": "誤りの損失（ドル/月）"},
    "col_total": {"en": "total $/month", "ja": "合計（ドル/月）"},
    "col_one_off": {"en": "one-off $", "ja": "初期費用（ドル）"},
    "col_break_even": {"en": "break-even", "ja": "投資回収期間"},
    "col_missed": {"en": "KPIs missed", "ja": "未達の KPI"},
    "none": {"en": "none", "ja": "なし"},
    "percent": {"en": "{value:.{digits}%}", "ja": "{percent:.{digits}f} %"},
    # a table cell: the memo writes the payback period as a whole clause, a table as a value
    "never": {"en": "never", "ja": "回収できない"},
    "days": {"en": "{value:.1f} days", "ja": "{value:.1f} 日"},
    "months": {"en": "{value:.1f} months", "ja": "{value:.1f} か月"},
}


def placeholders(template: str) -> set[str]:
    """The names of a template's ``{placeholders}``."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def say(key: str, lang: str | None = None, **values) -> str:
    """The message ``key`` in ``lang`` (see ``language``), with ``values`` filled in."""
    try:
        entry = MESSAGES[key]
    except KeyError:
        raise KeyError(f"no message {key!r} in attention_course.core.language.MESSAGES") from None
    return entry[language(lang)].format(**values)


def percent(value: float, digits: int = 0, lang: str | None = None) -> str:
    """A share as a percentage: "20%" in English, "20 %" in Japanese (STYLE.md: a space before %)."""
    return say("percent", lang, value=value, percent=100 * value, digits=digits)


def japanese_font():
    """The FontProperties of IPAexGothic, shipped inside the matplotlib-fontja package (no download, no system
    font); registering it also lets ``font.family = "IPAexGothic"`` find it."""
    from matplotlib.font_manager import FontProperties, fontManager
    from matplotlib_fontja import get_font_ttf_path

    path = get_font_ttf_path()
    fontManager.addfont(path)
    return FontProperties(fname=path)


def figure_style(lang: str | None = None) -> dict:
    """matplotlib settings for a figure in ``lang``: ``with plt.rc_context(figure_style("ja")):`` draws its text in a
    font with Japanese glyphs; English needs none ({})."""
    if language(lang) != "ja":
        return {}
    return {"font.family": [japanese_font().get_name(), "DejaVu Sans"]}
