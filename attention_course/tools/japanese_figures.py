"""Japanese-labelled versions of lesson figures that the Japanese site would otherwise show with English labels.

A lesson's figures are outputs of its English notebook, which both sites share. For the figures listed in
``FIGURES`` this module draws the same data again with Japanese titles, axes and legends, from what the lesson
stored (the table it printed, or the ``results/`` file it read), and the Japanese build (``tools.book``) puts each
in place of the English image. Nothing is measured here: a figure the stored data cannot redraw is an error, never
an English figure on a Japanese page. Names (LSTM, SDPA, DDP, GPU models) and units stay as they are.

The other figures keep the lesson's English labels; the Japanese page gives each a caption that translates them
(``CAPTIONS``). ``inventory`` lists every figure and which of the two it is.

Command line: ``python -m attention_course.tools.japanese_figures OUT`` writes them as PNG files to look at;
``--list`` prints the inventory.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from ..core.course import course
from ..core.language import figure_style

ROOT = course().root
RESULTS = ROOT / "results"
PNG = "image/png"
METHODS = {"LSTM": "LSTM", "naive attention": "素朴なアテンション", "fused SDPA": "融合 SDPA"}
SHAPES = {"char": "文字単位 GPT", "gpt2": "GPT-2 規模"}  # results/ddp_*.json's model shapes
LABELS = {
    "length": "系列長 T",
    "step_ms": "順伝播 ＋ 逆伝播（ms）",
    "time_on": "{hardware} でのステップあたりの時間",
    "cpu_time_on": "CPU でのステップあたりの時間：{hardware}",
    "memory": "メモリのピーク（MiB）",
    "memory_title": "メモリのピーク：素朴なアテンションは T² に比例して増える",
    "gpus": "GPU 数",
    "efficiency": "スケーリング効率（%）",
    "perfect": "理想的なスケーリング",
    "ddp_title": "DDP のスケーリング（1 GPU あたりのトークン/秒を 1 GPU の場合と比べる）",
    "intensity": "演算強度（1 バイトあたりの FLOP）",
    "attainable": "到達可能な TFLOP/s",
    "roofline": "{gpu} のルーフライン",
    "roofline_title": "{gpu} のルーフライン：折れ点は 1 バイトあたり {ridge:.0f} FLOP",
    "step_axis": "1 ステップのミリ秒（軸は 20 ms から）",
    "idle_title": "GPT-2 small の 1 ステップの時間の内訳（{gpu}）",
    "target": "nanoGPT の既定のステップの 1.10 倍の速さ（{ms:.1f} ms）",
}
# lesson 04's roofline table (cell c012 prints them in English)
OPERATIONS = {
    "MLP matmul (tokens x 768 x 3072)": "MLP の行列積（トークン数 × 768 × 3072）",
    "QKV projection (tokens x 768 x 2304)": "QKV の射影（トークン数 × 768 × 2304）",
    "attention scores, one head (1024 x 64 x 1024)": "アテンションのスコア、ヘッド一つ分（1024 × 64 × 1024）",
    "LM head (tokens x 768 x 50304)": "LM ヘッド（トークン数 × 768 × 50304）",
    "LayerNorm or GELU (about 8 FLOPs per element; read 2 + write 2 bytes)":
        "LayerNorm または GELU（要素あたり約 8 FLOP、読み 2 ＋ 書き 2 バイト）",
    "residual addition (1 FLOP; read 2 x 2 + write 2 bytes)": "残差の足し算（1 FLOP、読み 2 × 2 ＋ 書き 2 バイト）",
    "AdamW update (about 10 FLOPs per 16 bytes)": "AdamW の更新（16 バイトあたり約 10 FLOP）",
}
# results/gpt_idle_*.json: what a step's time is made of, and the runs' names
# "μ" is the Greek letter (U+03BC): IPAexGothic has no micro sign (U+00B5)
IDLE_PARTS = ("カーネルの実行", "3 μs 未満の隙間", "3 μs 以上の隙間", "プロファイルした範囲の外の時間")
IDLE_RUNS = {"course": "講座", "nanoGPT": "nanoGPT", "default": "既定", "reduce-overhead": "CUDA グラフあり"}
SHORT_GAPS = ("0-1 us", "1-2 us", "2-3 us")  # the histogram's bins under 3 µs, as the lesson's cell names them
ROOFLINE = re.compile(r"^roofline of (?P<gpu>.+?): [\d,]+ TFLOP/s dense bf16")
OPERATION = re.compile(r"^\s*(?P<name>.+?)\s+(?P<intensity>[\d.]+)\s+[\d.]+%\s*$")
ROW = re.compile(r"^\s*(?P<method>.+?)\s+(?P<T>\d+)\s+(?P<ms>out of memory|[\d.]+)\s+(?P<peak>-|[\d.]+)\s*$")
HEADER = re.compile(r"^one layer, forward \+ backward, width \d+, batch \d+, on (?P<hardware>.+)$")


def _japanese(table: dict[str, str], name: str) -> str:
    """A name's Japanese from ``table``; a name missing from it is an error, never English on a Japanese figure."""
    if name not in table:
        raise KeyError(f"no Japanese for {name!r}: add it to {__name__}'s tables")
    return table[name]


def device(name: str) -> str:
    """A device name as results/ writes it, in Japanese where it has words: "CPU (AMD EPYC, 2 cores; 1 thread used)"
    -> "CPU（AMD EPYC、2 コア、1 スレッドを使用）"; a GPU's model name stays as it is."""
    match = re.fullmatch(r"CPU \((?P<chip>.+), (?P<cores>\d+) cores?; (?P<threads>\d+) threads? used\)", name)
    if match is None:
        return name
    return f"CPU（{match['chip']}、{match['cores']} コア、{match['threads']} スレッドを使用）"


def stored_text(notebook: dict, cell_id: str) -> str:
    """What a cell printed (its stream outputs), from an executed notebook's JSON."""
    for cell in notebook["cells"]:
        if cell.get("id") == cell_id:
            return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o["output_type"] == "stream")
    raise LookupError(f"the notebook has no cell {cell_id!r}")


def _table_rows(lines: list[str], row: re.Pattern, what: str) -> list[re.Match]:
    """Each line matched by ``row``; a stray line is an error that names the table (``what``)."""
    matches = []
    for line in lines:
        match = row.match(line)
        if match is None:
            raise ValueError(f"a line of {what} that is not a row: {line!r}")
        matches.append(match)
    return matches


def sweep_from_table(text: str) -> tuple[str, list[dict]]:
    """(hardware, rows) from the table lesson 04's sweep cell prints: one row per method and length, ``ms`` and
    ``peak_mib`` None where the table says "out of memory" or "-"."""
    lines = text.strip().splitlines()
    header = HEADER.match(lines[0].strip()) if lines else None
    if header is None:
        raise ValueError(f"not lesson 04's sweep table: its first line is {lines[:1]}")
    rows = [{"method": match["method"], "T": int(match["T"]),
             "ms": None if match["ms"] == "out of memory" else float(match["ms"]),
             "peak_mib": None if match["peak"] == "-" else float(match["peak"])}
            for match in _table_rows(lines[2:], ROW, "the sweep table")]
    if not rows:
        raise ValueError("the sweep table has no rows")
    return header["hardware"], rows


def _lines(ax, sweep: list[dict], key: str) -> None:
    for method in dict.fromkeys(row["method"] for row in sweep):
        rows = [r for r in sweep if r["method"] == method and r[key] is not None]
        ax.loglog([r["T"] for r in rows], [r[key] for r in rows], marker="o", label=_japanese(METHODS, method))


def sequence_length_figures(notebook: dict) -> list:
    """Lesson 04's time and memory against sequence length (cell c006), from the table cell c005 printed."""
    import matplotlib.pyplot as plt

    hardware, sweep = sweep_from_table(stored_text(notebook, "c005"))
    has_memory = any(row["peak_mib"] is not None for row in sweep)
    with plt.rc_context(figure_style("ja")):
        fig, axes = plt.subplots(2 if has_memory else 1, 1, figsize=(6.4, 7.2 if has_memory else 3.8), squeeze=False,
                                 sharex=True)
        _lines(axes[0, 0], sweep, "ms")
        axes[0, 0].set(xlabel=LABELS["length"], ylabel=LABELS["step_ms"], title=LABELS["time_on"].format(hardware=hardware))
        axes[0, 0].legend()
        if has_memory:
            _lines(axes[1, 0], sweep, "peak_mib")
            axes[1, 0].set(xlabel=LABELS["length"], ylabel=LABELS["memory"], title=LABELS["memory_title"])
            axes[1, 0].legend()
            axes[0, 0].xaxis.set_tick_params(labelbottom=True)
        fig.tight_layout()
    return [fig]


def cpu_sequence_length_figures(notebook: dict, results: Path = RESULTS) -> list:
    """Lesson 04's CPU sweeps (cell 4328172c), one figure per ``results/parallelism_cpu*.json``, as the cell reads them."""
    import matplotlib.pyplot as plt

    figures = []
    for path in sorted(results.glob("parallelism_cpu*.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        with plt.rc_context(figure_style("ja")):
            fig, ax = plt.subplots(figsize=(6, 3.6))
            _lines(ax, run["sweep"], "ms")
            ax.set(xlabel=LABELS["length"], ylabel=LABELS["step_ms"],
                   title=LABELS["cpu_time_on"].format(hardware=device(run["device_name"])))
            ax.title.set_fontsize(9)
            ax.legend()
        figures.append(fig)
    return figures


def ddp_scaling_figures(notebook: dict, results: Path = RESULTS) -> list:
    """Lesson 04's DDP scaling efficiency (cell c016) from ``results/ddp_*.json``, as the cell reads them."""
    import matplotlib.pyplot as plt

    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        for path in sorted(results.glob("ddp_*.json")):
            run = json.loads(path.read_text(encoding="utf-8"))
            first = run["runs"][0]
            ax.plot([r["world_size"] for r in run["runs"]], [100 * r["scaling_efficiency"] for r in run["runs"]],
                    marker="o", label=f"{_japanese(SHAPES, run.get('shape', 'char'))}、{run.get('date', '?')}、"
                          f"{device(first['device_name'])}")
        ax.axhline(100, color="gray", linestyle=":", label=LABELS["perfect"])
        ax.set(xlabel=LABELS["gpus"], ylabel=LABELS["efficiency"], ylim=(0, 110), title=LABELS["ddp_title"])
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="lower left")
    return [fig]


def roofline_from_table(text: str) -> tuple[str, dict[str, float]]:
    """(GPU, {operation: FLOP per byte}) from the roofline table lesson 04's cell c012 prints."""
    lines = text.strip().splitlines()
    header = ROOFLINE.match(lines[0]) if lines else None
    if header is None:
        raise ValueError(f"not lesson 04's roofline table: its first line is {lines[:1]}")
    operations = {}
    for line in lines[2:]:
        match = OPERATION.match(line)
        if match is None:
            raise ValueError(f"a line of the roofline table that is not an operation: {line!r}")
        operations[match["name"]] = float(match["intensity"])
    return header["gpu"], operations


def roofline_figures(notebook: dict) -> list:
    """Lesson 04's roofline (cell c012): the GPU's data-sheet roof and the operations the cell printed."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..parallel.gpt_step import roofline_specs

    gpu, operations = roofline_from_table(stored_text(notebook, "c012"))
    peak, bandwidth = roofline_specs(gpu)
    intensity = np.logspace(-1, 4, 200)
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(7.5, 4.4))
        ax.loglog(intensity, np.minimum(peak, intensity * bandwidth) / 1e12, color="black",
                  label=LABELS["roofline"].format(gpu=gpu))
        for (name, value), marker in zip(operations.items(), "osD^vP*", strict=False):
            ax.loglog([value], [min(peak, value * bandwidth) / 1e12], marker=marker, linestyle="", markersize=8,
                      label=_japanese(OPERATIONS, name))
        ax.axvline(peak / bandwidth, color="gray", linestyle=":")
        ax.set(xlabel=LABELS["intensity"], ylabel=LABELS["attainable"],
               title=LABELS["roofline_title"].format(gpu=gpu, ridge=peak / bandwidth))
        ax.legend(fontsize=6.5, loc="lower right")
    return [fig]


def idle_figures(notebook: dict, results: Path = RESULTS) -> list:
    """Lesson 04's step-time bars (cell 6dd3eba1) from ``results/gpt_idle_H200.json``, as the cell reads it."""
    import matplotlib.pyplot as plt

    idle = json.loads((results / "gpt_idle_H200.json").read_text(encoding="utf-8"))
    parts: list[list[float]] = [[] for _ in IDLE_PARTS]
    names = []
    for name, run in idle["runs"].items():
        gaps = run["kernel_gaps"]
        short = sum(row["ms"] for label, row in gaps["gap_histogram"].items() if label in SHORT_GAPS)
        for values, ms in zip(parts, (gaps["busy_ms"], short, gaps["idle_ms"] - short, run["step_ms"] - gaps["span_ms"]),
                              strict=True):
            values.append(ms)
        names.append("、".join(_japanese(IDLE_RUNS, part) for part in name.split(" | ")))
    target = idle["runs"]["nanoGPT | default"]["step_ms"] / 1.10
    gpu = idle["hardware"].split(" (")[0].removeprefix("one ")
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        left = [0.0] * len(names)
        for part, values, color in zip(IDLE_PARTS, parts, ("C0", "C1", "C3", "lightgray"), strict=True):
            ax.barh(names, values, left=left, color=color, label=part)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.axvline(target, color="black", linestyle="--", label=LABELS["target"].format(ms=target))
        ax.invert_yaxis()
        ax.set_xlim(20, 27.5)
        ax.set(xlabel=LABELS["step_axis"], title=LABELS["idle_title"].format(gpu=f"{gpu} 1 基"))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8, frameon=False)
        fig.tight_layout()
    return [fig]


def candidates_figures(notebook: dict) -> list:
    """Lesson 10's candidates against the KPIs (cell 51b4ecdc): the memo's own figure, in Japanese."""
    from ..proof.memo import plot_candidates, stored_result

    return [plot_candidates(stored_result(notebook), "ja")]


def coverage_figures(notebook: dict) -> list:
    """Lesson 10's coverage against accuracy (cell poc10cov): the memo's own figure, in Japanese."""
    from ..proof.memo import plot_coverage, stored_result

    return [plot_coverage(stored_result(notebook), "ja", hardware="cpu")]


# lesson 08: the run its generation section printed (results/generation_gpu_lesson_H100.json), its methods, and the
# cost table's variants
GENERATION_FILE = "generation_gpu_lesson_H100.json"
GENERATION_METHODS = {"naive loop": "素朴なループ", "growing cache, eager": "伸びるキャッシュ（コンパイルなし）",
                      "static cache, compiled": "静的キャッシュ（コンパイル済み）",
                      "transformers GPT2LMHeadModel, static cache": "transformers の GPT2LMHeadModel（静的キャッシュ）",
                      "static cache, compiled, matmul linear layers": "静的キャッシュ（コンパイル済み、線形層は行列積）"}
GENERATION_MARKERS = {"naive": "v", "growing": "o", "static": "s", "transformers": "D"}  # as cell 5f65f52e draws them
GENERATION_ROW = re.compile(r"^\s*(?P<model>.+?)\s+(?P<batch>\d+)\s+(?P<prompt>\d+)\s+(?P<method>\S.*?)\s+"
                            r"(?P<tokens_per_s>[\d.]+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(?:NaN|[\d.]+)\s*$")
GENERATION_HEADER = re.compile(r"^(?P<device>.+?), (?P<dtype>\w+), torch \S+, transformers \S+; (?P<seconds>\d+) s$")
STUDENTS = {"scratch student": "ゼロからの生徒モデル", "shallow student": "浅い生徒モデル", "teacher": "教師モデル"}
HARDWARE = {"cpu": "CPU", "gpu": "GPU"}
COST_HEADER = re.compile(r"^CPU: CPU \([^,()]+, (?P<threads>\d+) threads? of \d+ cores?\); GPU: .+; "
                         r"assumed prices per hour: \{.*\}; throughput at batch \d+$")
COST_COLUMNS = ("accuracy", "params", "size_mib", "peak_mib", "p50_ms", "p95_ms", "throughput_per_s", "cost_per_million")
COST_ROW = re.compile(r"^\s*(?P<variant>.+?)\s+(?P<hardware>cpu|gpu)" + "".join(rf"\s+(?P<{c}>[\d.]+)" for c in COST_COLUMNS)
                      + r"\s*$")
# lesson 11: the data-efficiency table (cell 414638c0) and the demand table's header (cell 9f0b5f40)
CURVE_ROW = re.compile(r"^\s*(?P<model>.+?)\s+(?P<labels>[\d,]+)\s+(?P<mean>[\d.]+)\s+(?P<std>[\d.]+)\s+"
                       r"(?:\[(?P<low>[\d.]+), (?P<high>[\d.]+)\]|n/a \(one seed\))\s+(?P<seeds>\d+)\s*$")
DEMAND_HEADER = re.compile(r"^\d+ training windows, (?P<origins>\d+) test origins \(from (?P<year>\d{4})-(?P<month>\d\d)\)")
DEMAND_ROW = re.compile(r"^\s*(?P<method>.+?)\s+(?P<all>[\d.]+) \[[\d.]+, [\d.]+\]\s+(?P<h1>[\d.]+)\s+(?P<h3>[\d.]+)\s+"
                        r"(?P<h6>[\d.]+)\s+(?P<h12>[\d.]+)\s*$")
HORIZONS = (1, 3, 6, 12)
LABELS.update({
    "batch": "バッチ（同時に生成する系列の数）",
    "new_tokens": "1 秒あたりの新しいトークン数",
    "ceiling": "上限：定格の帯域で 1 ステップごとに重みと KV キャッシュを 1 回読む場合",
    "generation_title": "{model}、プロンプト {prompt} トークン、ウォームな呼び出し\n{device}",
    "cost": "100 万件あたりのコスト（ドル、仮定の価格）",
    "p95": "バッチ 1 での p95 レイテンシ（ms）",
    "test_accuracy": "テストデータでの正解率",
    "cost_title": "正解率とコスト：パレートフロント（輪郭線つき）",
    "p95_title": "正解率とテールレイテンシ：パレートフロント（輪郭線つき）",
    "on_front": "：フロント上",
    "shapes": "丸：CPU（{threads} スレッド）、四角：GPU",
    "labelled": "ラベル付きの学習画像の数（対数目盛）",
    "recall": "誤検知率 0.05 以下での検出率",
    "kpi_recall": "KPI：検出率 {recall}",
    "efficiency_title": "データ効率（{hardware}、プロファイル {profile}）",
    "year": "年",
    "kilolitres": "販売量（キロリットル）",
    "sales": "販売量",
    "test_months": "テスト期間",
    "wine_title": "オーストラリアのワイン販売量、月次（wineind）",
})


def cell_constant(notebook: dict, cell_id: str, name: str):
    """The literal a cell's code assigns to ``name`` (lesson 08's bandwidth table), read from the code that ran."""
    import ast

    for cell in notebook["cells"]:
        if cell.get("id") == cell_id:
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
                    return ast.literal_eval(node.value)
            raise LookupError(f"cell {cell_id!r} assigns no literal to {name!r}")
    raise LookupError(f"the notebook has no cell {cell_id!r}")


def generation_from_table(text: str) -> tuple[str, dict[tuple, float]]:
    """(device, {(model, batch, prompt, method): warm tokens/s}) from what lesson 08's cell ca47e162 printed."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = next((match for line in lines if (match := GENERATION_HEADER.match(line))), None)
    start = next((i for i, line in enumerate(lines) if line.split()[:3] == ["model", "batch", "prompt"]), None)
    if header is None or start is None:
        raise ValueError("not lesson 08's generation table: no device line or no column header")
    rows = {}
    for line in lines[start + 1:]:
        match = GENERATION_ROW.match(line)
        if match is None:
            raise ValueError(f"a line of the generation table that is not a row: {line!r}")
        rows[(match["model"], int(match["batch"]), int(match["prompt"]), match["method"])] = float(match["tokens_per_s"])
    if not rows:
        raise ValueError("the generation table has no rows")
    return header["device"], rows


def generation_run(notebook: dict, results: Path = RESULTS) -> dict:
    """``results/`` + ``GENERATION_FILE``, checked to be the run lesson 08's cell ca47e162 printed: same device
    and the same warm tokens/s in every row (as printed, to the token); another run is an error."""
    run = json.loads((results / GENERATION_FILE).read_text(encoding="utf-8"))
    device_name, printed = generation_from_table(stored_text(notebook, "ca47e162"))
    stored = {(r["model"], r["batch"], r["prompt"], r["method"]): float(round(r["tokens_per_s"])) for r in run["rows"]}
    if device_name != run["device_name"] or stored != printed:
        raise ValueError(f"results/{GENERATION_FILE} is not the run lesson 08 printed (cell ca47e162): the Japanese "
                         f"figure would not show the English one's numbers")
    return run


def generation_figures(notebook: dict, results: Path = RESULTS) -> list:
    """Lesson 08's new tokens per second against batch (cell 5f65f52e), from the run its table came from, with the
    memory-bandwidth ceiling the cell draws from its own bandwidth table."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    run = generation_run(notebook, results)
    model = next(iter(run["models"]))
    prompt = max(r["prompt"] for r in run["rows"] if r["model"] == model)
    longest = [r for r in run["rows"] if r["model"] == model and r["prompt"] == prompt]
    batches = sorted({r["batch"] for r in longest})
    bandwidth = [value for name, value in cell_constant(notebook, "5f65f52e", "bandwidth").items()
                 if name in run["device_name"]]
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for colour, method in enumerate(dict.fromkeys(r["method"] for r in longest)):
            part = [r for r in longest if r["method"] == method]
            ax.plot([r["batch"] for r in part], [r["tokens_per_s"] for r in part], color=f"C{colour}",
                    marker=GENERATION_MARKERS[method.split()[0].rstrip(",")], label=_japanese(GENERATION_METHODS, method))
        if bandwidth:  # each decode step reads the weights once and, on average, half the final KV cache
            kv_mean = [r["kv_bytes_formula"] / 2 for r in longest if r["method"].startswith("naive")]
            weights = run["models"][model]["weight_bytes"]
            ax.plot(batches, [b * bandwidth[0] / (weights + kv) for b, kv in zip(batches, kv_mean, strict=True)], "k:",
                    label=LABELS["ceiling"])
        ax.set(xscale="log", yscale="log", xlabel=LABELS["batch"], ylabel=LABELS["new_tokens"],
               title=LABELS["generation_title"].format(model=model, prompt=prompt, device=run["device_name"]))
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1)
        fig.tight_layout()
    return [fig]


def cost_from_table(text: str) -> tuple[int, list[dict]]:
    """(CPU threads, rows) from the cost table lesson 08's cell fc73e934 prints, numbers as printed (rounded)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    header = COST_HEADER.match(lines[0]) if lines else None
    if header is None or len(lines) < 3 or lines[1].split()[:2] != ["variant", "hardware"]:
        raise ValueError(f"not lesson 08's cost table: its first line is {lines[:1]}")
    rows = [{"variant": match["variant"], "hardware": match["hardware"],
             **{column: float(match[column]) for column in COST_COLUMNS}}
            for match in _table_rows(lines[2:], COST_ROW, "the cost table")]
    return int(header["threads"]), rows


def variant_name(variant: str, hardware: str) -> str:
    """"teacher fp16", "gpu" -> "教師モデル fp16（GPU）": the model in Japanese, its number format as it is."""
    model, _, precision = variant.rpartition(" ")
    return f"{_japanese(STUDENTS, model)} {precision}（{_japanese(HARDWARE, hardware)}）"


def cost_figures(notebook: dict) -> list:
    """Lesson 08's accuracy against cost and against p95 latency with their Pareto fronts (cell ad1c6f03), from the
    cost table cell fc73e934 printed. The front is computed, as the cell does, from the printed (rounded) numbers; where
    a rounded tie could decide it (three teachers at 0.851 in the H100 and H200 runs), the stored English figure outlines the
    same rows (tests/test_japanese_figures.py holds both fronts)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from ..deploy.cost import pareto_front

    threads, table = cost_from_table(stored_text(notebook, "fc73e934"))
    english = [f"{row['variant']} ({row['hardware']})" for row in table]
    colour_of = {name: f"C{i}" for i, name in enumerate(sorted(english))}  # the English figure's colours and order
    with plt.rc_context(figure_style("ja")):
        fig, axes = plt.subplots(2, 1, figsize=(6.4, 12))
        for ax, x, label in [(axes[0], "cost_per_million", LABELS["cost"]), (axes[1], "p95_ms", LABELS["p95"])]:
            entries = {}
            for on_front, row, name in zip(pareto_front(table, maximize="accuracy", minimize=x), table, english,
                                           strict=True):
                entries[name] = ax.scatter(
                    row[x], row["accuracy"], s=80 if on_front else 40, marker="o" if row["hardware"] == "cpu" else "s",
                    color=colour_of[name], edgecolor="black" if on_front else "none", zorder=3,
                    label=variant_name(row["variant"], row["hardware"]) + (LABELS["on_front"] if on_front else ""))
            ax.set(xscale="log", xlabel=label, ylabel=LABELS["test_accuracy"])
            ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.legend([entries[name] for name in sorted(entries)], [entries[name].get_label() for name in sorted(entries)],
                      fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
        axes[0].set_title(LABELS["cost_title"])
        axes[1].set_title(LABELS["p95_title"])
        fig.suptitle(LABELS["shapes"].format(threads=threads), fontsize=9)
        fig.tight_layout()
    return [fig]


def curve_from_table(text: str) -> list[dict]:
    """Rows of the data-efficiency table lesson 11's cell 414638c0 prints: model, labels, mean, std, interval (None
    with one seed), seeds, as printed (3 decimals)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].split()[:2] != ["model", "labels"]:
        raise ValueError(f"not lesson 11's data-efficiency table: its first line is {lines[:1]}")
    rows = []
    for line in lines[1:]:
        match = CURVE_ROW.match(line)
        if match is None:
            raise ValueError(f"a line of the data-efficiency table that is not a row: {line!r}")
        rows.append({"model": match["model"], "labels": int(match["labels"].replace(",", "")),
                     "mean": float(match["mean"]), "std": float(match["std"]), "seeds": int(match["seeds"]),
                     "interval": None if match["low"] is None else (float(match["low"]), float(match["high"]))})
    return rows


def stored_factory_result(notebook: dict) -> dict:
    """The result lesson 11 stored as a JSON output (cell 9efd64d9): its curve holds each point's lowest and highest
    seed, which the figure's bands show and the printed table does not."""
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("application/json")
            if isinstance(data, dict) and "curve" in data and "kpis" in data:
                return data
    raise LookupError("the notebook holds no stored lesson-11 result: execute it first")


def factory_curve(notebook: dict) -> tuple[dict, list[dict]]:
    """(stored result, its curve), the curve checked against the table cell 414638c0 printed: same rows, and each
    mean, spread and interval equal to the printed one at its 3 decimals."""
    result = stored_factory_result(notebook)
    printed = curve_from_table(stored_text(notebook, "414638c0"))
    rounded = [{"model": r["model"], "labels": r["labels"], "mean": round(r["mean"], 3), "std": round(r["std"], 3),
                "seeds": r["seeds"], "interval": None if r["interval"] is None else tuple(round(v, 3) for v in r["interval"])}
               for r in result["curve"]]
    if rounded != printed:
        raise ValueError("lesson 11's stored result is not the curve its table printed (cell 414638c0)")
    return result, result["curve"]


def data_efficiency_figures(notebook: dict) -> list:
    """Lesson 11's recall against labelled images (cell 310a560a): each model's mean over seeds, a band from its
    lowest to its highest seed, and the recall KPI, from the result the lesson stored."""
    import matplotlib.pyplot as plt

    from ..factory.memo import NAMES_JA

    result, curve = factory_curve(notebook)
    models = list(dict.fromkeys(r["model"] for r in curve))  # as the run named them (its pretrained ViT by pretext)
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for name, marker in zip(models, "osD", strict=True):
            rows = [r for r in curve if r["model"] == name]
            x = [r["labels"] for r in rows]
            ax.plot(x, [r["mean"] for r in rows], marker=marker, label=_japanese(NAMES_JA, name))
            ax.fill_between(x, [r["min"] for r in rows], [r["max"] for r in rows], alpha=0.2)
        recall = result["kpis"]["min_recall"]
        ax.axhline(recall, color="gray", linestyle="--", label=LABELS["kpi_recall"].format(recall=recall))
        ax.set(xscale="log", xlabel=LABELS["labelled"], ylabel=LABELS["recall"], ylim=(0, 1.02),
               title=LABELS["efficiency_title"].format(hardware=result["hardware"].split(" (")[0],
                                                       profile=result["profile"]))
        ax.legend(fontsize=8)
        fig.tight_layout()
    return [fig]


def demand_check(series, text: str) -> None:
    """Check that ``series`` (pmdarima's wineind, as ``factory.demand`` reads it) is the one lesson 11's cell 9f0b5f40
    scored: the same first test month and number of test origins, and the four simple baselines' MASE (overall and
    at each printed horizon) equal to the printed ones at 3 decimals, recomputed from the series."""
    import numpy as np

    from ..beyond.forecast import baseline_forecasts, mase

    lines = [line for line in text.splitlines() if line.strip()]
    header = DEMAND_HEADER.match(lines[0]) if lines else None
    if header is None:
        raise ValueError(f"not lesson 11's demand table: its first line is {lines[:1]}")
    printed = {m["method"]: m for line in lines[2:] if (m := DEMAND_ROW.match(line))}
    origins = np.arange(series.test_start, len(series.values) - 12 + 1)
    start = (series.first_year + series.test_start // 12, series.test_start % 12 + 1)
    if start != (int(header["year"]), int(header["month"])) or len(origins) != int(header["origins"]):
        raise ValueError(f"the demand series has {len(origins)} test origins from {start[0]}-{start[1]:02d}; lesson 11 "
                         f"printed {header['origins']} from {header['year']}-{header['month']}")
    truth = np.stack([series.values[t : t + 12] for t in origins])
    baselines = baseline_forecasts(series, origins, 12)
    for name, predicted in baselines.items():
        if name not in printed:
            raise ValueError(f"lesson 11's demand table has no row {name!r}")
        ours = [mase(truth, predicted, series.train)] + [mase(truth[:, h - 1], predicted[:, h - 1], series.train)
                                                         for h in HORIZONS]
        theirs = [float(printed[name][key]) for key in ("all", *(f"h{h}" for h in HORIZONS))]
        if [round(value, 3) for value in ours] != theirs:
            raise ValueError(f"the demand series is not the one lesson 11 scored: {name} MASE {ours} here, {theirs} "
                             "printed")


def demand_figures(notebook: dict) -> list:
    """Lesson 11's wine sales (cell 168a561d): the series read again from pmdarima's wheel, checked against the demand
    table cell 9f0b5f40 printed, and its test months. Drawn in kilolitres (the English figure: thousands of them)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter

    from ..factory.demand import wine_split

    series = wine_split()
    demand_check(series, stored_text(notebook, "9f0b5f40"))
    years = series.first_year + np.arange(len(series.values)) / 12
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(9, 3.4))
        ax.plot(years, series.values, color="black", linewidth=1, label=LABELS["sales"])
        ax.axvspan(series.first_year + series.test_start / 12, series.first_year + len(series.values) / 12,
                   color="gray", alpha=0.2, label=LABELS["test_months"])
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.set(xlabel=LABELS["year"], ylabel=LABELS["kilolitres"], title=LABELS["wine_title"])
        ax.legend(fontsize=8)
        fig.tight_layout()
    return [fig]


# --- figures whose data is a definition or a calculation, not a measurement: drawn again from the code that ran ---
def _cell(notebook: dict, cell_id: str) -> str:
    for cell in notebook["cells"]:
        if cell.get("id") == cell_id:
            return "".join(cell["source"])
    raise LookupError(f"the notebook has no cell {cell_id!r}")


def _call_arguments(source: str, function: str) -> tuple[list, dict]:
    """The literal arguments of the one call to ``function`` in ``source`` ("range(1, 101)" -> ([1, 101], {})); a
    cell that no longer makes exactly one such call is an error (the figure would not be the cell's)."""
    import ast

    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
             and function in (getattr(node.func, "id", None), getattr(node.func, "attr", None))]
    if len(calls) != 1:
        raise ValueError(f"expected one call to {function}(...) in the cell, found {len(calls)}: update {__name__}")
    return [ast.literal_eval(a) for a in calls[0].args], {k.arg: ast.literal_eval(k.value) for k in calls[0].keywords}


def path_length_figures(notebook: dict) -> list:
    """Lesson 01's dependency path length (cell c007): a recurrent layer needs j - i steps, self-attention one, over
    the distances the cell plots (a definition: nothing to measure)."""
    import matplotlib.pyplot as plt

    distances = list(range(*_call_arguments(_cell(notebook, "c007"), "range")[0]))
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.plot(distances, distances, label="再帰層：j − i ステップ")
        ax.plot(distances, [1] * len(distances), label="セルフアテンション：1 ステップ")
        ax.set(xlabel="二つの位置の距離 j − i", ylabel="依存経路の長さ", title="二つのトークンの間に層を何回適用するか")
        ax.legend()
    return [fig]


def learning_rate_figures(notebook: dict) -> list:
    """Lesson 05's learning-rate schedule (cell c009), from the library's ``warmup_cosine_lr`` with the cell's own
    settings (a formula: nothing to measure)."""
    import matplotlib.pyplot as plt

    from ..core.training import warmup_cosine_lr

    source = _cell(notebook, "c009")
    steps = range(*_call_arguments(source, "range")[0])
    demo = _call_arguments(source, "TrainConfig")[1]
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(list(steps), [warmup_cosine_lr(s, demo["warmup_steps"], demo["max_steps"], demo["lr"], demo["min_lr"])
                              for s in steps])
        ax.set(xlabel="ステップ", ylabel="学習率",
               title=f"直線的なウォームアップ（{demo['warmup_steps']} ステップ）、min_lr までのコサイン減衰")
    return [fig]


SHARDING_NAMES = {"1 GPU": "GPU 1 基", "ddp": "DDP", "zero1": "ZeRO-1", "zero2": "ZeRO-2", "zero3": "ZeRO-3",
                  "tp": "テンソル並列"}
MEMORY_PARTS = {"params": "パラメータ", "grads": "勾配", "optimizer": "オプティマイザの状態", "activations": "活性化",
                "buffers": "バッファ"}


def sharding_memory_figures(notebook: dict) -> list:
    """Lesson 04b's memory per GPU (cell 744b4996), calculated again by ``sharding.memory_per_gpu`` with the cell's
    model, batch and number of GPUs (a calculation: nothing was measured for it)."""
    import matplotlib.pyplot as plt

    from ..parallel import sharding

    source = _cell(notebook, "744b4996")
    (shape,), _ = _call_arguments(source, "model_config")
    found = re.search(r"^world, per_gpu = (\d+), (\d+)$", source, re.M)
    if found is None:
        raise ValueError(f"lesson 04b's cell 744b4996 no longer sets `world, per_gpu`: update {__name__}")
    world, per_gpu = int(found[1]), int(found[2])
    config = sharding.model_config(shape)
    estimates = {"1 GPU": sharding.memory_per_gpu(config, per_gpu, "single", 1)}
    estimates |= {strategy: sharding.memory_per_gpu(config, per_gpu, strategy, world) for strategy in sharding.DISTRIBUTED}
    names = [_japanese(SHARDING_NAMES, name) for name in estimates]
    card_gib = 80e9 / 2**30  # an 80 GB card (H100) in GiB, as the cell draws it
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        left = [0.0] * len(estimates)
        for i, (part, japanese) in enumerate(MEMORY_PARTS.items()):
            values = [estimate.gib()[part] for estimate in estimates.values()]
            ax.barh(names, values, left=left, color=f"C{i}", label=japanese)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.axvline(card_gib, color="black", linestyle="--", linewidth=1)
        ax.invert_yaxis()
        ax.text(card_gib, -0.7, " 80 GB の GPU", va="bottom", fontsize=8)
        ax.set(xlabel="GPU 1 基あたりの GiB（計算値）",
               title=f"パラメータ {sharding.param_count(config) / 1e8:.1f} 億個、GPU 1 基あたり {per_gpu} × 1024 トークン、"
                     f"GPU {world} 基")
        ax.set_ylim(len(estimates) - 0.5, -1.2)  # room above the first bar for the line's label
        ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, -0.32), ncol=5, frameon=False)
        fig.tight_layout()
    return [fig]


# --- figures drawn again from the tables the lessons printed -------------------------------------------------------
LESSON_START = re.compile(r"^Lesson \w+: device \S+ \((?P<hardware>.+)\), profile '(?P<profile>\w+)'", re.M)
RECALL_MODELS = {"vanilla RNN": "素朴な RNN", "GRU": "GRU", "causal Transformer": "因果トランスフォーマー"}
# lesson 07's table cuts each method's name to 22 characters ("TF-IDF + logistic regr")
TRANSFER_METHODS = {"TF-IDF + logistic regression": "TF-IDF ＋ ロジスティック回帰",
                    "Transformer from scratch": "ゼロから学習したトランスフォーマー",
                    "linear probe on MiniLM": "MiniLM の線形プローブ", "fine-tuned MiniLM": "ファインチューニングした MiniLM"}


def lesson_start(notebook: dict) -> dict[str, str]:
    """{"hardware": ..., "profile": ...} from the line a lesson's first cell printed (``start_lesson``)."""
    for cell in notebook["cells"]:
        found = LESSON_START.search("".join("".join(o.get("text", "")) for o in cell.get("outputs", [])))
        if found:
            return found.groupdict()
    raise LookupError("the notebook never printed its `Lesson NN: device ...` line")


def recall_from_table(text: str) -> tuple[int, dict[str, list[tuple[int, float]]]]:
    """(training steps, {model: [(distance, accuracy)]}) from the table lesson 01's cell c013 printed."""
    lines = text.strip().splitlines()
    header = re.match(r"^test accuracy after (\d+) training steps, on .+:$", lines[0]) if lines else None
    if header is None or len(lines) < 3 or not lines[1].startswith("distance"):
        raise ValueError(f"not lesson 01's recall table: it starts {lines[:2]}")
    models = re.split(r"\s{2,}", lines[1].removeprefix("distance").strip())
    curves: dict[str, list[tuple[int, float]]] = {model: [] for model in models}
    for line in lines[2:]:
        values = line.split()
        if len(values) != len(models) + 1 or not all(re.fullmatch(r"\d+(?:\.\d+)?", value) for value in values):
            raise ValueError(f"a line of the recall table that is not a row: {line!r}")
        for model, value in zip(models, values[1:], strict=True):
            curves[model].append((int(values[0]), float(value)))
    return int(header[1]), curves


def recall_figures(notebook: dict) -> list:
    """Lesson 01's accuracy against distance (cell c014), from the table cell c013 printed."""
    import matplotlib.pyplot as plt

    steps, curves = recall_from_table(stored_text(notebook, "c013"))
    profile = lesson_start(notebook)["profile"]
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
        for model, points in curves.items():
            ax.plot(*zip(*points, strict=True), marker="o", label=_japanese(RECALL_MODELS, model))
        ax.axhline(1 / 8, color="gray", linestyle=":", label="偶然の水準（1/8）")
        ax.set_xscale("log")
        ax.set(xlabel="必要なトークンまでの距離（系列長）", ylabel="テスト正解率", ylim=(0, 1.05))
        ax.set_title(f"最初のトークンの想起：距離ごとの正解率（{steps} ステップ、プロファイル {profile}）", fontsize=9)
        ax.legend()
    return [fig]


def transfer_from_table(text: str) -> tuple[str, dict[str, list[tuple[int, float, float]]]]:
    """(hardware, {method: [(labels, mean, std)]}) from the table lesson 07's cell c005 printed."""
    lines = [line for line in text.splitlines() if line.strip()]
    at = next((i for i, line in enumerate(lines) if line.startswith("test accuracy (mean +- std over seeds)")), None)
    if at is None or at + 2 >= len(lines):
        raise ValueError("not lesson 07's data-efficiency table")
    hardware = re.match(r"^test accuracy \(mean \+- std over seeds\), on (.+), [\d,]+ test sentences$", lines[at])[1]
    cut = re.split(r"\s{2,}", lines[at + 1].strip())[1:]
    methods = [next((m for m in TRANSFER_METHODS if m.startswith(name)), name) for name in cut]
    curves: dict[str, list[tuple[int, float, float]]] = {method: [] for method in methods}
    for line in lines[at + 2:]:
        found = re.findall(r"([\d.]+) \+- ([\d.]+)", line)
        if not re.match(r"^\s*\d+\s", line) or len(found) != len(methods):
            raise ValueError(f"a line of the data-efficiency table that is not a row: {line!r}")
        for method, (mean, std) in zip(methods, found, strict=True):
            curves[method].append((int(line.split()[0]), float(mean), float(std)))
    return hardware, curves


def transfer_figures(notebook: dict) -> list:
    """Lesson 07's data-efficiency curve (cell c006), from the table cell c005 printed and the majority class
    cell c008 printed."""
    import matplotlib.pyplot as plt

    hardware, curves = transfer_from_table(stored_text(notebook, "c005"))
    majority = re.search(r"\(majority class ([\d.]+)\)", stored_text(notebook, "c008"))
    if majority is None:
        raise ValueError("lesson 07's cell c008 no longer prints the majority class")
    profile = lesson_start(notebook)["profile"]
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        for method, rows in curves.items():
            n, mean, std = (list(column) for column in zip(*rows, strict=True))
            ax.plot(n, mean, marker="o", label=_japanese(TRANSFER_METHODS, method))
            ax.fill_between(n, [m - s for m, s in zip(mean, std, strict=True)],
                            [m + s for m, s in zip(mean, std, strict=True)], alpha=0.2)
        ax.axhline(float(majority[1]), color="gray", linestyle=":", label="多数派クラス")
        ax.set_xscale("log")
        ax.set(xlabel="ラベル付きの学習用の文の数", ylabel="テスト正解率",
               title=f"Rotten Tomatoes でのデータ効率（{hardware}、プロファイル {profile}）")
        ax.legend(fontsize=8)
    return [fig]


MATMUL_ROW = re.compile(r"^\s*(?P<dtype>\w+)\s+(?P<n>\d+)\s+[\d.]+ ms\s+(?P<tflops>[\d.]+)\s*$")


def matmul_from_table(text: str) -> tuple[str, dict[str, list[tuple[int, float]]]]:
    """(hardware, {dtype: [(n, TFLOP/s)]}) from the table lesson 00's cell c005 printed."""
    lines = text.strip().splitlines()
    header = re.match(r"^Matrix products on (.+):$", lines[0]) if lines else None
    if header is None:
        raise ValueError(f"not lesson 00's matrix-product table: it starts {lines[:1]}")
    rows: dict[str, list[tuple[int, float]]] = {}
    for line in lines[2:]:
        if re.match(r"^\w+: [\d.]+ TFLOP/s at", line):
            break  # the summary lines under the table
        match = MATMUL_ROW.match(line)
        if match is None:
            raise ValueError(f"a line of the matrix-product table that is not a row: {line!r}")
        rows.setdefault(match["dtype"], []).append((int(match["n"]), float(match["tflops"])))
    if not rows:
        raise ValueError("the matrix-product table has no rows")
    return header[1], rows


def matmul_figures(notebook: dict) -> list:
    """Lesson 00's matrix-product throughput (cell c006), from the table cell c005 printed."""
    import matplotlib.pyplot as plt

    hardware, rows = matmul_from_table(stored_text(notebook, "c005"))
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for dtype, points in rows.items():
            ax.plot(*zip(*points, strict=True), marker="o", label=dtype)
        ax.set_xscale("log", base=2)
        ax.set(xlabel="行列のサイズ n（n × n と n × n の積）", ylabel="スループット（TFLOP/s）")
        ax.set_title(f"{device(hardware)} での行列積のスループット", fontsize=9)
        ax.legend()
    return [fig]


VISION_STYLES = {"ViT + shifts": ("tab:blue", "-", "ViT（ずらしによる拡張あり）"), "ViT": ("tab:blue", "--", "ViT"),
                 "CNN + shifts": ("tab:orange", "-", "CNN（ずらしによる拡張あり）"), "CNN": ("tab:orange", "--", "CNN"),
                 "MLP": ("tab:gray", ":", "MLP")}


def vision_from_table(text: str) -> tuple[dict[str, str], dict[str, list[tuple[int, float]]]]:
    """({"images": held-out count, "hardware", "profile"}, {variant: [(training images, accuracy)]}) from the table
    lesson 09's cell 1eab217d printed."""
    lines = text.strip().splitlines()
    header = re.match(r"^test accuracy on (?P<images>\d+) held-out images \((?P<hardware>.+), profile (?P<profile>\w+)\)$",
                      lines[0]) if lines else None
    if header is None or len(lines) < 3 or not lines[1].strip().startswith("images"):
        raise ValueError(f"not lesson 09's accuracy table: it starts {lines[:2]}")
    variants = re.split(r"\s{2,}", lines[1].strip().removeprefix("images").strip())
    curves: dict[str, list[tuple[int, float]]] = {variant: [] for variant in variants}
    for line in lines[2:]:
        if line.endswith("s of training"):
            break
        values = line.split()
        if len(values) != len(variants) + 1 or not all(re.fullmatch(r"\d+(?:\.\d+)?", v) for v in values):
            raise ValueError(f"a line of the accuracy table that is not a row: {line!r}")
        for variant, value in zip(variants, values[1:], strict=True):
            curves[variant].append((int(values[0]), float(value)))
    return header.groupdict(), curves


def vision_figures(notebook: dict) -> list:
    """Lesson 09's accuracy against training images (cell deb83dfd), from the table cell 1eab217d printed."""
    import matplotlib.pyplot as plt

    run, curves = vision_from_table(stored_text(notebook, "1eab217d"))
    with plt.rc_context(figure_style("ja")):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for variant, points in curves.items():
            if variant not in VISION_STYLES:
                raise KeyError(f"no Japanese for {variant!r}: add it to {__name__}.VISION_STYLES")
            color, line, name = VISION_STYLES[variant]
            ax.plot(*zip(*points, strict=True), marker="o", color=color, linestyle=line, label=name)
        ax.set_xscale("log")
        ax.set(xlabel="学習用の画像の数", ylabel=f"テスト正解率（取り分けた {int(run['images']):,} 枚の数字）",
               title=f"MNIST：ViT、CNN、MLP の比較（{run['hardware'].split(' (')[0]}、プロファイル {run['profile']}）")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
    return [fig]

# (source page, cell id) -> the cell's figures drawn again in Japanese, in the order the cell shows them. Lesson
# 04's cell c010b (where one step's time goes) is not here: its numbers were never printed, only drawn.
FIGURES: dict[tuple[str, str], Callable[[dict], list]] = {
    ("notebooks/04_parallelism", "c006"): sequence_length_figures,
    ("notebooks/04_parallelism", "4328172c"): cpu_sequence_length_figures,
    ("notebooks/04_parallelism", "c012"): roofline_figures,
    ("notebooks/04_parallelism", "c016"): ddp_scaling_figures,
    ("notebooks/04_parallelism", "6dd3eba1"): idle_figures,
    ("notebooks/10_proof_of_concept", "51b4ecdc"): candidates_figures,
    ("notebooks/10_proof_of_concept", "poc10cov"): coverage_figures,
    ("notebooks/08_serving", "5f65f52e"): generation_figures,
    ("notebooks/08_serving", "ad1c6f03"): cost_figures,
    ("notebooks/11_factory_floor", "310a560a"): data_efficiency_figures,
    ("notebooks/11_factory_floor", "168a561d"): demand_figures,
    ("notebooks/01_recurrence_to_attention", "c007"): path_length_figures,
    ("notebooks/05_training_a_gpt", "c009"): learning_rate_figures,
    ("notebooks/04b_beyond_data_parallel", "744b4996"): sharding_memory_figures,
    ("notebooks/01_recurrence_to_attention", "c014"): recall_figures,
    ("notebooks/07_transfer_learning", "c006"): transfer_figures,
    ("notebooks/00_setup_and_first_look", "c006"): matmul_figures,
    ("notebooks/09_beyond_text", "deb83dfd"): vision_figures,
}


# Figures the Japanese page shows as the lesson drew them, with English labels: their data is a measurement that only
# the figure holds (nothing stored to draw it again from without re-running the lesson, on a GPU for most). The
# Japanese build gives each a caption that translates its title, axes and legend (``caption_figures``: the cell's
# ``mystnb.figure.caption``, on the Japanese site only); its alt text is translated in the page's catalog as every
# figure's is. Code and names stay as the figure writes them.
CAPTIONS: dict[tuple[str, str], str] = {
    ("notebooks/11_factory_floor", "b1f7fbef"):
        "図中の英語の訳。題：テスト用の表面（上段）とその欠陥マスク（下段）。上段の各画像の題は、上が種類（good は良品、"
        "scratch は傷、spot は斑点、crack はひび割れ、stain は染み）、下が素材（brushed metal はヘアライン加工の金属、"
        "woven fabric は織物、wood は木材、cast は鋳物）。下段の題「mask」はマスク。",
    ("notebooks/11_factory_floor", "0b371515"):
        "図中の英語の訳。題：モデルがどこを見ているか（正解の欠陥を緑の線で囲んでいます）。行の見出し：「image + mask」は"
        "画像とマスク、「rollout (ViT)」は ViT のアテンションロールアウト、「Grad-CAM (CNN)」は CNN の Grad-CAM。各列の題は"
        "欠陥の種類（scratch は傷、spot は斑点、crack はひび割れ、stain は染み）。",
    ("notebooks/01_recurrence_to_attention", "c009"):
        "図中の英語の訳。題：素朴な RNN は最初の入力を指数的な速さで忘れる。横軸：系列長 T。縦軸：`|dh_T / dx_0|` の平均。",
    ("notebooks/02_self_attention", "c007"):
        "図中の英語の訳。左の題：スケーリングしないとスコアのばらつきは sqrt(d) のように増える。右の題：スケーリングしない"
        "ソフトマックスは一つのキーに集中する。横軸：幅 d。縦軸：左はスコアの標準偏差、右は最大の重みの平均（キー 32 個）。"
        "凡例：「unscaled」はスケーリングなし、「scaled」はスケーリングあり、「uniform (1/32)」は一様（1/32）。",
    ("notebooks/02_self_attention", "c011"):
        "図中の英語の訳。題：アテンションの重み（ランダムな射影）。横軸：キー（注目される側）。縦軸：クエリ（注目する側）。"
        "目盛りは文のトークン。",
    ("notebooks/02_self_attention", "c014"):
        "図中の英語の訳。左の題：パディングマスク、`<pad>` には重みを置かない。右の題：因果マスク、未来には重みを置かない。"
        "横軸：キー（注目される側）。縦軸：クエリ（注目する側）。",
    ("notebooks/03_multi_head_attention", "c011"):
        "図中の英語の訳。左の題：正弦波による位置エンコーディング（横軸：位置 t、縦軸：次元）。右の題：内積 `PE_t . PE_s`、"
        "s = t で最大になる（横軸・縦軸：位置）。",
    ("notebooks/04_parallelism", "c010b"):
        "図中の英語の訳。題：学習ステップの時間の内訳（バイアスなし、実行したハードウェア）。横軸：学習ステップあたりの"
        "ミリ秒。棒：カーネルの種類ごとの時間。灰色の棒「outside kernels (launch gaps, Python)」はカーネルの外の時間"
        "（起動の隙間、Python）。",
    ("notebooks/04b_beyond_data_parallel", "446266a6"):
        "図中の英語の訳。題：同じデータ、同じシードで、gloo の 2 プロセスと 1 プロセスを比べる。横軸：ステップ。"
        "縦軸：`|loss - one process's loss|`（1 プロセスの損失との差の絶対値）。破線：許容誤差 1e-3。凡例：並列化の方式"
        "（名前はコードのまま）。",
    ("notebooks/05_training_a_gpt", "c012"):
        "図中の英語の訳。題：シェイクスピアで学習する文字単位の GPT（実行したハードウェアとプロファイル）。横軸：ステップ。"
        "縦軸：交差エントロピー（ナット／文字）。凡例：「training batch loss」は学習バッチの損失、「validation loss」は"
        "検証損失、点線は 1.30 ナット／文字。",
    ("notebooks/05_training_a_gpt", "c016"):
        "図中の英語の訳。題：モデル、シード、学習率、ステップ数は同じで、ドロップアウトだけが違う（実行したハードウェア）。"
        "横軸：ステップ。縦軸：検証損失（ナット／文字）。凡例：「dropout 0.2」と「dropout 0.0」の検証損失。",
    ("notebooks/05_training_a_gpt", "c019"):
        "図中の英語の訳。上の題：ピーク学習率 5e-3（凡例に別の学習率があるものを除く）。縦軸：学習損失（ナット／文字）。"
        "下の題：勾配ノルム。縦軸：クリッピング前の勾配ノルム。横軸：ステップ。凡例：Pre-LN と Post-LN、"
        "「warm-up」はウォームアップ、「clipping」はクリッピング、「no」はなし、「lr」は学習率。",
    ("notebooks/06_attention_maps", "c005"):
        "図中の英語の訳。各図の題：「layer N, mean over 12 heads」は層 N、12 ヘッドの平均。縦軸はクエリ、横軸はキーのトークン。",
    ("notebooks/06_attention_maps", "c007"):
        "図中の英語の訳。上から順に：平均アテンション距離（トークン）、[CLS] と [SEP] に向くアテンションの割合、"
        "直前のトークンへの重み。横軸：ヘッド。縦軸：層。",
    ("notebooks/06_attention_maps", "c014"):
        "図中の英語の訳。題：全 6 層にわたるアテンションロールアウト（静的な描画）。目盛りは文のトークン。",
    ("notebooks/06_attention_maps", "c017"):
        "図中の英語の訳。題：各手法は重要なトークンをどれだけ正しく順位づけるか。縦軸：消去テストとのスピアマン相関。"
        "横軸：手法（「attention」はアテンション、「rollout」はアテンションロールアウト、「gradient x input」は勾配×入力、"
        "「random」はランダム）。",
    ("notebooks/06_attention_maps", "c018"):
        "図中の英語の訳。題：一つのレビューのトークンの重要度を、三つの手法で比べる。縦軸：重要度（最大値を 1 にそろえた値）。"
        "横軸：レビューのトークン。凡例：「erasure」は消去テスト、「attention」はアテンション、「gradient x input」は勾配×入力。",
    ("notebooks/09_beyond_text", "e0f8c603"):
        "図中の英語の訳。左の題：ラベルと、順に番号を付けたパッチ。右の題：系列、パッチ 1 個が 1 行。横軸：パッチの中の"
        "画素（行ごとに並べたもの）。縦軸：パッチ（トークン）の番号。",
    ("notebooks/09_beyond_text", "e6356a4f"):
        "図中の英語の訳。題：[CLS] がどこを見るか（明るいほどアテンションが大きい）。列：「digit」は数字の画像、「rollout」は"
        "アテンションロールアウト、「layer N mean」は層 N の平均、「head h」はヘッド h。行の見出し：「true」は正解、「said」は予測。",
    ("notebooks/09_beyond_text", "c756a6f1"):
        "図中の英語の訳。題：各ヘッドがどこまで遠くを見るか（テスト画像の数とシードの数）。横軸：層。縦軸：平均アテンション"
        "距離（パッチ）。凡例：すべてのヘッドとシードの範囲、一つのヘッド（シード別）、一様なアテンション、"
        "次のパッチだけを見る場合（1.0）。",
    ("notebooks/09_beyond_text", "018a86e8"):
        "図中の英語の訳。題：コサイン類似度、数字ごとに一つのテスト画像とキャプションの比較。横軸：キャプション。縦軸：「image of a N」"
        "は数字 N の画像。カラーバー：コサイン類似度。",
    ("notebooks/09_beyond_text", "e23a0569"):
        "図中の英語の訳。題：生成した各単語の、画像のパッチに対するクロスアテンション。各小図の題は生成された単語。",
    ("notebooks/09_beyond_text", "9c2730da"):
        "図中の英語の訳。題：Nino 1+2 海域の月ごとの海面水温。横軸：年。縦軸：海面水温（℃）。凡例：「validation」は検証期間、"
        "「test (held out)」は取り分けたテスト期間。",
    ("notebooks/09_beyond_text", "1031a105"):
        "図中の英語の訳。題：予測の先の長さごとの誤差（低いほどよい。帯は 95 % 区間）。横軸：何か月先か。縦軸：テスト期間の "
        "MASE。凡例：「forecaster」はアテンションによる予測モデル（「seed」はシード）、「seasonal naive」は季節ナイーブ、"
        "「persistence」は持続予測、「climatology」は気候値、「anomaly persistence」は偏差の持続予測。",
    ("notebooks/09_beyond_text", "489acca9"):
        "図中の英語の訳。題：未来の各月から過去の各月へのアテンション（最後のブロック）。横軸：過去の月（予測の起点から"
        "数えた位置）。縦軸：何か月先か。カラーバー：アテンションの重み。",
}
# The lesson itself draws this one in Japanese (for the Japanese memo).
DRAWN_IN_JAPANESE = {("notebooks/10_proof_of_concept", "c3904179")}
# Lessons being rewritten this session: their remaining English figures wait for the rewrite (see inventory()).
WAITING: tuple[str, ...] = ()  # pages whose figures may stay English without a caption while they are rewritten


def figure_cells(notebook: dict) -> list[str]:
    """The ids of a notebook's code cells that show at least one image."""
    return [cell.get("id") for cell in notebook["cells"] if cell["cell_type"] == "code"
            and any(PNG in output.get("data", {}) for output in cell.get("outputs", []))]


def caption_figures(page: str, notebook: dict) -> int:
    """Give each of ``page``'s figures listed in ``CAPTIONS`` its Japanese caption, in place; returns how many. A
    listed cell that no longer shows a figure is an error (the caption would describe nothing)."""
    wanted = {cell_id: text for (source, cell_id), text in CAPTIONS.items() if source == page}
    shown = set(figure_cells(notebook))
    if set(wanted) - shown:
        raise LookupError(f"{page} shows no figure in cell {sorted(set(wanted) - shown)}: update {__name__}.CAPTIONS")
    for cell in notebook["cells"]:
        if cell.get("id") in wanted:
            cell.setdefault("metadata", {}).setdefault("mystnb", {}).setdefault("figure", {})["caption"] = wanted[cell["id"]]
    return len(wanted)


def inventory(root: Path = ROOT) -> list[tuple[str, str, str]]:
    """(page, cell id, how the Japanese site shows it) for every figure of every lesson and solution: "redrawn in
    Japanese", "drawn in Japanese by the lesson", "English, Japanese caption", or "English" (only in ``WAITING``)."""
    found = []
    for folder in ("notebooks", "solutions"):
        for path in sorted((root / folder).glob("*.ipynb")):
            page = f"{folder}/{path.stem}"
            for cell_id in figure_cells(json.loads(path.read_text(encoding="utf-8"))):
                key = (page, cell_id)
                how = ("redrawn in Japanese" if key in FIGURES else "drawn in Japanese by the lesson"
                       if key in DRAWN_IN_JAPANESE else "English, Japanese caption" if key in CAPTIONS else "English")
                found.append((page, cell_id, how))
    return found


def png(fig) -> str:
    """A figure as the base64 PNG a notebook output holds (closed afterwards)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def replace_figures(page: str, notebook: dict) -> int:
    """Put the Japanese figures of ``page`` ("notebooks/04_parallelism") in place of its English images, in place;
    returns how many. A listed cell whose images do not match the figures drawn again is an error."""
    wanted = {cell_id: draw for (source, cell_id), draw in FIGURES.items() if source == page}
    replaced = 0
    for cell in notebook["cells"]:
        draw = wanted.pop(cell.get("id"), None)
        if draw is None:
            continue
        images = [output for output in cell.get("outputs", []) if PNG in output.get("data", {})]
        figures = draw(notebook)
        if len(figures) != len(images):
            raise ValueError(f"{page}, cell {cell['id']}: {len(images)} stored images but {len(figures)} Japanese "
                             f"figures drawn again; update {__name__}.FIGURES")
        for output, fig in zip(images, figures, strict=True):
            output["data"][PNG] = png(fig)
            output.get("metadata", {}).pop(PNG, None)  # the stored size was the English image's
            replaced += 1
    if wanted:
        raise LookupError(f"{page} has no cell {sorted(wanted)}: update {__name__}.FIGURES")
    return replaced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", help="folder for the PNG files")
    parser.add_argument("--list", action="store_true", help="list every lesson figure and how the Japanese site shows it")
    args = parser.parse_args(argv)
    if args.list or args.out is None:
        for page, cell_id, how in inventory():
            print(f"{page:40s} {cell_id:10s} {how}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for (page, cell_id), draw in FIGURES.items():
        notebook = json.loads((ROOT / f"{page}.ipynb").read_text(encoding="utf-8"))
        for number, fig in enumerate(draw(notebook)):
            target = args.out / f"{Path(page).name}_{cell_id}_{number}.png"
            target.write_bytes(base64.b64decode(png(fig)))
            print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
