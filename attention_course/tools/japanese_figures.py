"""Japanese-labelled versions of lesson figures that the Japanese site would otherwise show with English labels.

A lesson's figures are outputs of its English notebook, which both sites share. For the figures listed in
``FIGURES`` this module draws the same data again with Japanese titles, axes and legends, from what the lesson
stored (the table it printed, or the ``results/`` file it read), and the Japanese build (``tools.book``) puts each
in place of the English image. Nothing is measured here: a figure the stored data cannot redraw is an error, never
an English figure on a Japanese page. Names (LSTM, SDPA, DDP, GPU models) and units stay as they are.

Command line: ``python -m attention_course.tools.japanese_figures OUT`` writes them as PNG files to look at.
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


def sweep_from_table(text: str) -> tuple[str, list[dict]]:
    """(hardware, rows) from the table lesson 04's sweep cell prints: one row per method and length, ``ms`` and
    ``peak_mib`` None where the table says "out of memory" or "-"."""
    lines = text.strip().splitlines()
    header = HEADER.match(lines[0].strip()) if lines else None
    if header is None:
        raise ValueError(f"not lesson 04's sweep table: its first line is {lines[:1]}")
    rows = []
    for line in lines[2:]:
        match = ROW.match(line)
        if match is None:
            raise ValueError(f"a line of the sweep table that is not a row: {line!r}")
        rows.append({"method": match["method"], "T": int(match["T"]),
                     "ms": None if match["ms"] == "out of memory" else float(match["ms"]),
                     "peak_mib": None if match["peak"] == "-" else float(match["peak"])})
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
}


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
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    args = parser.parse_args(argv)
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
