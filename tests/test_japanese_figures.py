"""The Japanese site shows lesson 04's charts with Japanese labels, drawn again from the data the lesson stored."""

import base64
import copy
import json
import re

import matplotlib
import pytest
from test_poc import japanese_glyphs_missing

from attention_course.core.course import course
from attention_course.tools import book
from attention_course.tools import japanese_figures as J

matplotlib.use("Agg")
LESSON04 = course().root / "notebooks" / "04_parallelism.ipynb"
NAMES = {"LSTM", "SDPA", "NVIDIA", "H200", "H100", "AMD", "EPYC", "CPU", "GPU", "DDP", "GPT", "MiB", "ms", "T", "MLP",
         "QKV", "LM", "LayerNorm", "GELU", "AdamW", "FLOP", "TFLOP", "s", "nanoGPT", "CUDA", "small", "μs",
         "MiniLM", "TF", "IDF", "int8", "KPI", "p95", "HBM3", "GB", "e"}  # names, units, 1e-4


@pytest.fixture(scope="module")
def lesson04():
    return json.loads(LESSON04.read_text(encoding="utf-8"))


def labels(fig) -> list[str]:
    """A figure's words: titles, axis labels, legend entries, annotations and tick labels (numbers written as
    mathtext, "$10^{-4}$", aside)."""
    texts = [fig._suptitle.get_text()] if fig._suptitle else []
    for legend in fig.legends:
        texts += [text.get_text() for text in legend.get_texts()]
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()] + [text.get_text() for text in ax.texts]
        texts += [tick.get_text() for tick in ax.get_xticklabels() + ax.get_yticklabels()]
        if ax.get_legend():
            texts += [text.get_text() for text in ax.get_legend().get_texts()]
    return [text for text in texts if text and not text.startswith("$")]


def english_words(texts) -> list[str]:
    return [word for text in texts for word in re.findall(r"[A-Za-z][A-Za-z0-9]*", text) if word not in NAMES]


def test_the_sweep_is_read_from_the_table_the_lesson_printed(lesson04):
    hardware, rows = J.sweep_from_table(J.stored_text(lesson04, "c005"))
    assert hardware == "NVIDIA H200" and len(rows) == 21
    assert rows[0] == {"method": "LSTM", "T": 64, "ms": 3.59, "peak_mib": 48.0}
    assert rows[-1] == {"method": "fused SDPA", "T": 4096, "ms": 18.27, "peak_mib": 713.0}
    assert {row["method"] for row in rows} == set(J.METHODS)
    text = "one layer, forward + backward, width 8, batch 2, on CPU\n method T time peak\n naive attention 64 out of memory -\n"
    assert J.sweep_from_table(text)[1] == [{"method": "naive attention", "T": 64, "ms": None, "peak_mib": None}]
    with pytest.raises(ValueError, match="not lesson 04's sweep table"):
        J.sweep_from_table("roofline of NVIDIA H200")
    with pytest.raises(ValueError, match="not a row"):
        J.sweep_from_table(text + "LSTM sixty-four fast\n")


def test_the_roofline_is_read_from_the_table_the_lesson_printed(lesson04):
    gpu, operations = J.roofline_from_table(J.stored_text(lesson04, "c012"))
    assert gpu == "NVIDIA H200" and list(operations) == list(J.OPERATIONS)
    assert operations["MLP matmul (tokens x 768 x 3072)"] == 585.14
    with pytest.raises(ValueError, match="not lesson 04's roofline"):
        J.roofline_from_table("GPT 123.6M parameters")


@pytest.mark.parametrize("page,cell", list(J.FIGURES))
def test_each_figure_is_drawn_with_japanese_labels_only(page, cell):
    figures = J.FIGURES[(page, cell)](json.loads((course().root / f"{page}.ipynb").read_text(encoding="utf-8")))
    assert figures
    for fig in figures:
        words = labels(fig)
        assert len(words) >= 4 and english_words(words) == [], words
        missing, checked = japanese_glyphs_missing(fig)
        assert checked >= 3 and not missing, missing


def test_the_checks_catch_english():
    assert english_words(["time per step on NVIDIA H200", "LSTM"]) == ["time", "per", "step", "on"]
    with pytest.raises(KeyError, match="no Japanese"):
        J._japanese(J.METHODS, "linear attention")
    assert J.device("CPU (AMD EPYC, 2 cores; 1 thread used)") == "CPU（AMD EPYC、2 コア、1 スレッドを使用）"


def test_the_japanese_site_gets_the_japanese_images(lesson04, tmp_path):
    english = {cell["id"]: [o["data"][J.PNG] for o in cell.get("outputs", []) if J.PNG in o.get("data", {})]
               for cell in lesson04["cells"]}
    for language in ("en", "ja"):
        book.stage_notebook(LESSON04, tmp_path / f"{language}.ipynb", language)
    staged = {language: {cell["id"]: [o["data"][J.PNG] for o in cell.get("outputs", []) if J.PNG in o.get("data", {})]
                         for cell in json.loads((tmp_path / f"{language}.ipynb").read_text(encoding="utf-8"))["cells"]}
              for language in ("en", "ja")}
    assert staged["en"] == english  # the English site is untouched
    replaced = {cell for page, cell in J.FIGURES if page == "notebooks/04_parallelism"}
    for cell, images in english.items():
        if cell in replaced:
            assert len(staged["ja"][cell]) == len(images) and all(
                new != old for new, old in zip(staged["ja"][cell], images, strict=True))
            assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in staged["ja"][cell])
        else:
            assert staged["ja"][cell] == images, cell


def test_a_changed_notebook_is_an_error_not_an_english_figure(lesson04):
    renamed = copy.deepcopy(lesson04)
    for cell in renamed["cells"]:
        if cell.get("id") == "c016":
            cell["id"] = "c016-renamed"
    with pytest.raises(LookupError, match="c016"):
        J.replace_figures("notebooks/04_parallelism", renamed)
    doubled = copy.deepcopy(lesson04)
    for cell in doubled["cells"]:
        if cell.get("id") == "c006":
            cell["outputs"] = cell["outputs"] * 2
    with pytest.raises(ValueError, match="stored images"):
        J.replace_figures("notebooks/04_parallelism", doubled)


@pytest.mark.parametrize("lang", [pytest.param("en", marks=pytest.mark.xfail(
    strict=True, reason="the English labels overlap too (book/decision/figures/poc_candidates.png, lesson 10's stored "
    "figure); left for the lead: fixing them changes the English figure")), "ja"])
def test_the_candidates_figures_axis_labels_do_not_run_into_each_other(lang):
    """The decision pages' figure (book/decision and book/ja): its two panels are narrow, and the Japanese labels,
    at first one line each at 10 pt, overlapped."""
    from attention_course.proof import memo

    fig = memo.plot_candidates(memo.result_from_notebook(course().root / "notebooks" / "10_proof_of_concept.ipynb"), lang)
    renderer = fig.canvas.get_renderer()
    left, right = (ax.xaxis.label.get_window_extent(renderer) for ax in fig.axes[:2])
    assert left.x1 < right.x0, (left, right)
    if lang == "ja":
        assert english_words(labels(fig)) == [] and "、CPU）" in fig.axes[0].get_yticklabels()[1].get_text()
