import json
import re

import nbformat
import pytest

from attention_course.tools.execute import main, prune_widget_state
from attention_course.tools.widget_state import WIDGET_STATE as STATE
from attention_course.tools.widget_state import WIDGET_VIEW as VIEW


def _notebook(path, *sources):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def test_executes_into_another_folder_and_keeps_the_source(tmp_path):
    source = _notebook(tmp_path / "a.ipynb", "print(6 * 7)")
    assert main([str(source), "--output", str(tmp_path / "out")]) == 0
    executed = nbformat.read(tmp_path / "out" / "a.ipynb", as_version=4)
    assert executed.cells[0].outputs[0].text == "42\n"
    assert nbformat.read(source, as_version=4).cells[0].outputs == []


def test_a_failing_cell_is_kept_and_reported(tmp_path):
    source = _notebook(tmp_path / "b.ipynb", "x = 1", "raise ValueError('boom')", "print('never')")
    assert main([str(source), "--output", str(tmp_path / "out")]) == 1
    executed = nbformat.read(tmp_path / "out" / "b.ipynb", as_version=4)
    assert executed.cells[1].outputs[0].ename == "ValueError" and executed.cells[2].outputs == []


def test_refuses_to_overwrite_the_source(tmp_path):
    source = _notebook(tmp_path / "c.ipynb", "1")
    with pytest.raises(SystemExit):
        main([str(source), "--output", str(tmp_path)])


def test_bundle_holds_every_finished_notebook(tmp_path):
    import tarfile

    first = _notebook(tmp_path / "one.ipynb", "print(1)")
    second = _notebook(tmp_path / "two.ipynb", "print(2)")
    archive = tmp_path / "executed.tar.gz"
    assert main([str(first), str(second), "--output", str(tmp_path / "out"), "--bundle", str(archive)]) == 0
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["one.ipynb", "two.ipynb"]


def test_widget_state_is_stored_for_every_widget_shown(tmp_path):
    source = _notebook(tmp_path / "w.ipynb",
                       "import ipywidgets as w\nbox = w.VBox([w.Textarea(value='hi'), w.HTML(value='<b>x</b>')])\nbox",
                       "from attention_course.tools.doctor import in_kernel\nprint(in_kernel())")
    assert main([str(source), "--output", str(tmp_path / "out")]) == 0
    executed = nbformat.read(tmp_path / "out" / "w.ipynb", as_version=4)
    view = executed.cells[0].outputs[0]["data"]["application/vnd.jupyter.widget-view+json"]
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert view["model_id"] in state and state[view["model_id"]]["model_name"] == "VBoxModel"
    children = [ref.removeprefix("IPY_MODEL_") for ref in state[view["model_id"]]["state"]["children"]]
    assert all(child in state for child in children)
    assert executed.cells[1].outputs[0].text == "True\n"  # the doctor knows it runs in a kernel


def test_stale_widget_state_is_pruned_when_executing(tmp_path):
    """Widgets made but never shown (or replaced) leave no state behind; what is shown keeps all it refers to."""
    source = _notebook(tmp_path / "s.ipynb",
                       "import ipywidgets as w\nhidden = [w.IntSlider(value=i) for i in range(5)]",
                       "shown = w.HBox([w.Label('kept'), w.FloatProgress(value=3)])\nshown")
    assert main([str(source), "--output", str(tmp_path / "out")]) == 0
    executed = nbformat.read(tmp_path / "out" / "s.ipynb", as_version=4)
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    names = sorted(model["model_name"] for model in state.values())
    assert "IntSliderModel" not in names and {"HBoxModel", "LabelModel", "FloatProgressModel"} <= set(names), names
    referenced = {ref for model in state.values() for ref in re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(model))}
    assert referenced <= state.keys()


def _model(name, **state):
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0", "state": state}


def test_prune_keeps_what_outputs_show_and_what_that_refers_to():
    ids = {name: f"{index:032x}" for index, name in enumerate(["box", "label", "layout", "out", "inner", "stale", "bar"], 1)}
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "display_data", data={VIEW: {"version_major": 2, "version_minor": 0, "model_id": model}}) for model in
        (ids["box"], ids["out"])])]
    notebook.metadata["widgets"] = {STATE: {"version_major": 2, "version_minor": 0, "state": {
        ids["box"]: _model("VBoxModel", children=[f"IPY_MODEL_{ids['label']}"], layout=f"IPY_MODEL_{ids['layout']}"),
        ids["label"]: _model("LabelModel"), ids["layout"]: _model("LayoutModel"),
        ids["out"]: _model("OutputModel", outputs=[{"output_type": "display_data", "data": {VIEW: {"model_id": ids["inner"]}}}]),
        ids["inner"]: _model("ButtonModel"), ids["stale"]: _model("IntSliderModel"), ids["bar"]: _model("FloatProgressModel")}}}
    assert prune_widget_state(notebook) == 2
    assert set(notebook.metadata["widgets"][STATE]["state"]) == {ids[n] for n in ("box", "label", "layout", "out", "inner")}
    notebook.cells[0].outputs = []  # nothing shown any more: no state at all
    assert prune_widget_state(notebook) == 5 and "widgets" not in notebook.metadata
