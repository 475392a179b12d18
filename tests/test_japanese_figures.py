"""The Japanese site shows lesson charts with Japanese labels, drawn again from the data the lessons stored (or the
definition or calculation they plot); every other lesson figure gets a Japanese caption there."""

import base64
import copy
import json
import re

import matplotlib
import pytest
from test_poc import japanese_glyphs_missing

from attention_course.core.course import course
from attention_course.factory.memo import NAMES_JA
from attention_course.tools import book
from attention_course.tools import japanese_figures as J

matplotlib.use("Agg")
LESSON04 = course().root / "notebooks" / "04_parallelism.ipynb"
LESSON08 = course().root / "notebooks" / "08_serving.ipynb"
LESSON11 = course().root / "notebooks" / "11_factory_floor.ipynb"
NAMES = {"LSTM", "SDPA", "NVIDIA", "H200", "H100", "AMD", "EPYC", "CPU", "GPU", "DDP", "GPT", "MiB", "ms", "T", "MLP",
         "QKV", "LM", "LayerNorm", "GELU", "AdamW", "FLOP", "TFLOP", "s", "nanoGPT", "CUDA", "small", "μs",
         "MiniLM", "TF", "IDF", "int8", "KPI", "p95", "HBM3", "GB", "e", "transformers", "GPT2LMHeadModel", "KV",
         "fp32", "fp16", "CNN", "ViT", "gpu", "wineind", "ZeRO", "GiB", "B", "min", "lr", "i", "j", "RNN", "GRU",
         "Rotten", "Tomatoes", "float32", "bfloat16", "n", "MNIST", "cpu", "CutPaste"}  # names, units,
# 1e-4, a profile's name, min_lr, the positions i and j


@pytest.fixture(scope="module")
def lesson04():
    return json.loads(LESSON04.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def lesson08():
    return json.loads(LESSON08.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def lesson11():
    return json.loads(LESSON11.read_text(encoding="utf-8"))


def with_output(notebook: dict, cell_id: str, old: str, new: str) -> dict:
    """A copy of ``notebook`` whose cell ``cell_id`` printed ``new`` where it printed ``old`` (which it must have)."""
    changed = copy.deepcopy(notebook)
    cell = next(cell for cell in changed["cells"] if cell.get("id") == cell_id)
    hits = 0
    for output in cell["outputs"]:
        if output["output_type"] == "stream":
            text = "".join(output["text"])
            hits += old in text
            output["text"] = text.replace(old, new)
    assert hits == 1, (cell_id, old)
    return changed


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


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_candidates_figures_axis_labels_do_not_run_into_each_other(lang):
    """The decision pages' figure (book/decision and book/ja): its two panels are narrow, and the labels, at first
    one line each at 10 pt, overlapped in both languages."""
    from attention_course.proof import memo

    fig = memo.plot_candidates(memo.result_from_notebook(course().root / "notebooks" / "10_proof_of_concept.ipynb"), lang)
    renderer = fig.canvas.get_renderer()
    left, right = (ax.xaxis.label.get_window_extent(renderer) for ax in fig.axes[:2])
    assert left.x1 < right.x0, (left, right)
    if lang == "ja":
        assert english_words(labels(fig)) == [] and "、CPU）" in fig.axes[0].get_yticklabels()[1].get_text()


def test_the_generation_figure_draws_the_run_lesson_08_printed(lesson08, tmp_path):
    device, printed = J.generation_from_table(J.stored_text(lesson08, "ca47e162"))
    run = J.generation_run(lesson08)
    assert device == run["device_name"] == "NVIDIA H100 80GB HBM3" and len(printed) == len(run["rows"]) == 9
    assert printed[("GPT-2 small", 1, 512, "static cache, compiled")] == 2134.0
    assert set(method for *_, method in printed) == set(J.GENERATION_METHODS)
    [fig] = J.generation_figures(lesson08)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    static = lines[J.GENERATION_METHODS["static cache, compiled"]]
    assert list(static.get_xdata()) == [1, 8]
    assert list(static.get_ydata()) == [r["tokens_per_s"] for r in run["rows"] if r["method"] == "static cache, compiled"]
    # the ceiling at batch 1: the H100's 3.35 TB/s over 249 MB of weights and half the final KV cache (28 MB)
    assert lines[J.LABELS["ceiling"]].get_ydata()[0] == pytest.approx(3.35e12 / (248879616 + 28274688 / 2))
    matmul = lines[J.GENERATION_METHODS["static cache, compiled, matmul linear layers"]]  # the batch-1-only row
    assert list(matmul.get_xdata()) == [1] and list(matmul.get_ydata()) == [
        r["tokens_per_s"] for r in run["rows"] if r["method"] == "static cache, compiled, matmul linear layers"]
    other = json.loads((J.RESULTS / J.GENERATION_FILE).read_text(encoding="utf-8"))
    other["rows"][2]["tokens_per_s"] = 2100.0  # a later run, which the lesson did not print
    (tmp_path / J.GENERATION_FILE).write_text(json.dumps(other), encoding="utf-8")
    with pytest.raises(ValueError, match="is not the run lesson 08 printed"):
        J.generation_figures(lesson08, tmp_path)
    with pytest.raises(ValueError, match="is not the run lesson 08 printed"):
        J.generation_figures(with_output(lesson08, "ca47e162", " 2134.0 ", " 2135.0 "))
    with pytest.raises(ValueError, match="not lesson 08's generation table"):
        J.generation_from_table("GPT-2 small: 124.4 M parameters")


def test_the_cost_figure_draws_the_table_lesson_08_printed(lesson08):
    threads, table = J.cost_from_table(J.stored_text(lesson08, "fc73e934"))
    assert threads == 16 and len(table) == 9
    assert table[0] == {"variant": "scratch student fp32", "hardware": "cpu", "accuracy": 0.751, "params": 4303874.0,
                        "size_mib": 16.4, "peak_mib": 16.0, "p50_ms": 0.5, "p95_ms": 0.6, "throughput_per_s": 20955.0,
                        "cost_per_million": 0.011}
    assert table[-1]["variant"] == "teacher fp32" and table[-1]["cost_per_million"] == 0.194
    [fig] = J.cost_figures(lesson08)
    cost, latency = fig.axes[:2]
    points = sorted(tuple(map(float, c.get_offsets()[0])) for c in cost.collections)
    assert points == sorted((row["cost_per_million"], row["accuracy"]) for row in table)
    points = sorted(tuple(map(float, c.get_offsets()[0])) for c in latency.collections)
    assert points == sorted((row["p95_ms"], row["accuracy"]) for row in table)

    def front(ax):
        return {text.get_text().removesuffix(J.LABELS["on_front"]) for text in ax.get_legend().get_texts()
                if text.get_text().endswith(J.LABELS["on_front"])}

    # the fronts the stored English figure outlines (read off its image, and the lesson's "Reading the table")
    both = {"ゼロからの生徒モデル fp32（CPU）", "浅い生徒モデル fp16（GPU）", "浅い生徒モデル int8（CPU）", "教師モデル fp16（GPU）"}
    assert front(cost) == both and front(latency) == both  # the same four rows in both panels of the H200 run
    with pytest.raises(ValueError, match="not a row"):
        J.cost_figures(with_output(lesson08, "fc73e934", "teacher fp32      cpu", "teacher fp32      tpu"))
    with pytest.raises(ValueError, match="not lesson 08's cost table"):
        J.cost_from_table("the int8 rows keep the word embeddings in fp32")
    with pytest.raises(KeyError, match="no Japanese"):
        J.variant_name("tiny student fp32", "cpu")


def test_the_data_efficiency_figure_draws_the_curve_lesson_11_stored(lesson11):
    printed = J.curve_from_table(J.stored_text(lesson11, "414638c0"))
    assert len(printed) == 9 and printed[0] == {"model": "CNN", "labels": 50, "mean": 0.664, "std": 0.033, "seeds": 3,
                                                 "interval": (0.583, 0.745)}
    assert printed[5]["labels"] == 1000 and printed[5]["model"] == "ViT from scratch"
    result, curve = J.factory_curve(lesson11)
    [fig] = J.data_efficiency_figures(lesson11)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    cnn = [r for r in curve if r["model"] == "CNN"]
    assert list(lines["CNN"].get_ydata()) == [r["mean"] for r in cnn] and list(lines["CNN"].get_xdata()) == [50, 200, 1000]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]  # the CNN's band: its lowest and highest seeds
    assert {round(float(v), 6) for v in band} == {r[key] for r in cnn for key in ("min", "max")}
    assert list(lines[J.LABELS["kpi_recall"].format(recall=0.95)].get_ydata()) == [0.95, 0.95]
    # the pretrained ViT under the name the run gave it (by its pretext), whatever the library calls it now
    pretrained = [r for r in curve if r["model"].startswith("ViT pretrained")]
    assert list(lines[NAMES_JA[pretrained[0]["model"]]].get_ydata()) == [r["mean"] for r in pretrained]
    assert len(lines) == 4, "three models and the KPI"
    assert result["hardware"] == "NVIDIA H100 80GB HBM3" and "H100" in ax.get_title()
    with pytest.raises(ValueError, match="is not the curve its table printed"):
        J.data_efficiency_figures(with_output(lesson11, "414638c0", " 0.664 ", " 0.665 "))
    with pytest.raises(ValueError, match="not a row"):
        J.curve_from_table(" model labels\n CNN fifty 0.5 0.1 [0.4, 0.6] 3\n")


def test_the_demand_figure_draws_the_series_lesson_11_scored(lesson11):
    from attention_course.factory import demand

    series = demand.wine_split()
    text = J.stored_text(lesson11, "9f0b5f40")
    J.demand_check(series, text)  # the baselines' MASE, recomputed from the series, equal the printed ones
    [fig] = J.demand_figures(lesson11)
    ax = fig.axes[0]
    [line] = ax.get_lines()
    assert list(line.get_ydata()) == list(demand.wine_sales()) and len(line.get_ydata()) == 176
    [span] = ax.patches
    assert span.get_x() == pytest.approx(1991 + 8 / 12)  # the first test month the table printed: 1991-09
    changed = copy.deepcopy(series)
    changed.values[150] += 1000  # one test month different: the baselines score otherwise
    with pytest.raises(ValueError, match="not the one lesson 11 scored"):
        J.demand_check(changed, text)
    with pytest.raises(ValueError, match="test origins"):
        J.demand_check(series, text.replace("(from 1991-09)", "(from 1991-10)"))
    with pytest.raises(ValueError, match="not lesson 11's demand table"):
        J.demand_check(series, "lowest MASE overall")


@pytest.mark.parametrize("page,fixture", [("notebooks/08_serving", "lesson08"), ("notebooks/11_factory_floor", "lesson11")])
def test_lessons_08_and_11_images_are_replaced_and_a_renamed_cell_is_an_error(page, fixture, request):
    notebook = request.getfixturevalue(fixture)
    staged = copy.deepcopy(notebook)
    cells = {cell for source, cell in J.FIGURES if source == page}
    assert J.replace_figures(page, staged) == len(cells) == 2
    for old, new in zip(notebook["cells"], staged["cells"], strict=True):
        images = [[o["data"][J.PNG] for o in c.get("outputs", []) if J.PNG in o.get("data", {})] for c in (old, new)]
        assert (images[0] != images[1]) == (old.get("id") in cells), old.get("id")
    renamed = copy.deepcopy(notebook)
    for cell in renamed["cells"]:
        if cell.get("id") in cells:
            cell["id"] += "-renamed"
            break
    with pytest.raises(LookupError, match="has no cell"):
        J.replace_figures(page, renamed)


# --- every figure of a Japanese page: redrawn in Japanese, or captioned in Japanese ----------------------------------
def test_every_figure_on_the_japanese_site_is_japanese_or_has_a_japanese_caption():
    found = J.inventory()
    assert len(found) >= 40  # every lesson's figures were seen: an inventory that found none fails
    english = [(page, cell) for page, cell, how in found if how == "English"]
    assert all(page in J.WAITING for page, _ in english), english  # only lessons being rewritten may wait
    hows = {(page, cell): how for page, cell, how in found}
    for key in [*J.FIGURES, *J.CAPTIONS, *J.DRAWN_IN_JAPANESE]:
        assert key in hows, f"{key} shows no figure: a stale entry"
    assert not set(J.FIGURES) & set(J.CAPTIONS)


def caption_numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:[.,]\d+)*(?:e-\d+)?", text))


@pytest.mark.parametrize("page,cell", list(J.CAPTIONS))
def test_each_caption_is_japanese_and_keeps_to_the_figures_numbers(page, cell):
    from test_i18n import english_left

    caption = J.CAPTIONS[(page, cell)]
    assert caption.startswith("図中の英語の訳。") and re.search(r"[ぁ-んァ-ン]", caption)
    assert not english_left(caption), english_left(caption)
    notebook = json.loads((course().root / f"{page}.ipynb").read_text(encoding="utf-8"))
    source = next(c for c in notebook["cells"] if c.get("id") == cell)
    # what the figure can show: its code, its alt text, and what the lesson printed
    shown = "".join(source["source"]) + source["metadata"]["mystnb"]["image"]["alt"] + "".join(
        "".join(o.get("text", "")) for c in notebook["cells"] for o in c.get("outputs", []))
    assert caption_numbers(caption) <= caption_numbers(shown), caption_numbers(caption) - caption_numbers(shown)


def test_the_caption_checks_can_fail():
    from test_i18n import english_left

    assert english_left("図中の英語の訳。題：how well does each method rank tokens")
    assert caption_numbers("横軸：キー 32 個、1e-3、1,000 個") == {"32", "1e-3", "1,000"}


def test_the_japanese_site_captions_the_english_figures(tmp_path):
    notebook = course().root / "notebooks" / "09_beyond_text.ipynb"
    wanted = {cell: text for (page, cell), text in J.CAPTIONS.items() if page == "notebooks/09_beyond_text"}
    for language in ("en", "ja"):
        book.stage_notebook(notebook, tmp_path / f"{language}.ipynb", language)
    captions = {language: {c.get("id"): c["metadata"].get("mystnb", {}).get("figure", {}).get("caption")
                           for c in json.loads((tmp_path / f"{language}.ipynb").read_text(encoding="utf-8"))["cells"]}
                for language in ("en", "ja")}
    assert len(wanted) == 8 and {cell: captions["ja"][cell] for cell in wanted} == wanted
    assert not any(captions["en"].values())  # the English site is untouched
    # a caption for a cell that no longer shows a figure is an error, not a caption under nothing
    content = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in content["cells"]:
        if cell.get("id") == "9c2730da":
            cell["outputs"] = []
    with pytest.raises(LookupError, match="9c2730da"):
        J.caption_figures("notebooks/09_beyond_text", content)


def test_lessons_01_and_07_curves_are_read_from_the_tables_they_printed():
    lesson01, lesson07 = (json.loads((course().root / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
                          for name in ("01_recurrence_to_attention", "07_transfer_learning"))
    steps, curves = J.recall_from_table(J.stored_text(lesson01, "c013"))
    assert steps == 1000 and list(curves) == list(J.RECALL_MODELS)
    assert curves["GRU"][3] == (50, 0.12) and curves["vanilla RNN"][1] == (10, 0.25) and len(curves["GRU"]) == 6
    hardware, rows = J.transfer_from_table(J.stored_text(lesson07, "c005"))
    assert hardware == "NVIDIA H200" and list(rows) == list(J.TRANSFER_METHODS)
    assert rows["fine-tuned MiniLM"][-1] == (10201, 0.849, 0.002) and rows["TF-IDF + logistic regression"][0] == (50, 0.603, 0.006)
    assert J.lesson_start(lesson07) == {"hardware": "NVIDIA H200", "profile": "gpu"}
    with pytest.raises(ValueError, match="not lesson 01's recall table"):
        J.recall_from_table("roofline of NVIDIA H200")
    with pytest.raises(ValueError, match="not a row"):
        J.recall_from_table("test accuracy after 5 training steps, on CPU:\ndistance  GRU\n 5 one\n")
    with pytest.raises(ValueError, match="not lesson 07's"):
        J.transfer_from_table("test accuracy, on CPU")


def test_lessons_00_and_09_curves_are_read_from_the_tables_they_printed():
    lesson00, lesson09 = (json.loads((course().root / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
                          for name in ("00_setup_and_first_look", "09_beyond_text"))
    hardware, rows = J.matmul_from_table(J.stored_text(lesson00, "c005"))
    assert hardware == "NVIDIA H200" and list(rows) == ["float32", "bfloat16"]
    assert rows["bfloat16"][-1] == (8192, 743.69) and len(rows["float32"]) == 4
    run, curves = J.vision_from_table(J.stored_text(lesson09, "1eab217d"))
    assert run == {"images": "1000", "hardware": "NVIDIA H100 80GB HBM3", "profile": "gpu"}
    assert list(curves) == list(J.VISION_STYLES) and curves["ViT"][0] == (250, 0.663)
    with pytest.raises(ValueError, match="not lesson 00's"):
        J.matmul_from_table("roofline of NVIDIA H200")
    with pytest.raises(ValueError, match="not a row"):
        J.matmul_from_table("Matrix products on CPU:\n dtype n time TFLOP/s\n float32 1024 fast\n")
    with pytest.raises(ValueError, match="not lesson 09's"):
        J.vision_from_table("test accuracy, on CPU")

