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
}
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


# (source page, cell id) -> the cell's figures drawn again in Japanese, in the order the cell shows them
FIGURES: dict[tuple[str, str], Callable[[dict], list]] = {
    ("notebooks/04_parallelism", "c006"): sequence_length_figures,
    ("notebooks/04_parallelism", "4328172c"): cpu_sequence_length_figures,
    ("notebooks/04_parallelism", "c016"): ddp_scaling_figures,
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
