"""The widget state a notebook saves (ipywidgets' ``application/vnd.jupyter.widget-state+json``): which models its
outputs show, and the tree of models each one refers to. Headless execution prunes with it; the website build
freezes and switches off with it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# a model names another as "IPY_MODEL_<id>" (children, layout, style, links) or, inside an Output widget's saved
# outputs, as a view's "model_id"
MODEL_REFERENCE = re.compile(r'IPY_MODEL_([0-9a-f]{32})|"model_id":\s*"([0-9a-f]{32})"')


def shown_widgets(notebook: dict) -> set[str]:
    """The ids of the widget models the notebook's outputs display."""
    return {output["data"][WIDGET_VIEW]["model_id"] for cell in notebook["cells"] for output in cell.get("outputs", [])
            if WIDGET_VIEW in output.get("data", {}) and output["data"][WIDGET_VIEW].get("model_id")}


def widget_tree(state: dict, roots: Iterable[str]) -> set[str]:
    """The models ``roots`` and every model they refer to, transitively; ids that ``state`` lacks are left out."""
    seen: set[str] = set()
    todo = [model for model in roots if model in state]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for match in MODEL_REFERENCE.finditer(json.dumps(state[model])):
            referred = match.group(1) or match.group(2)
            if referred in state and referred not in seen:
                todo.append(referred)
    return seen
