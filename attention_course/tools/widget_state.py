"""The widget state a notebook saves (ipywidgets' ``application/vnd.jupyter.widget-state+json``): which models its
outputs show, and the tree of models each one refers to. Headless execution prunes with it; the website build
freezes and switches off with it, and the Japanese site reads its English texts back into Japanese
(``localise_widgets``: a notebook's widgets are saved in English, the English notebook being the one executed)."""

from __future__ import annotations

import json
import re
import string
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


# --- saved widgets on the Japanese site -----------------------------------------------------------------------------
# A notebook's widgets are saved in English (the English notebook is the one executed). The Japanese site shows
# them in Japanese: each saved text that a message of core.language produced is read back against the English
# message and written with the Japanese one; names the lesson-10 memo translates (candidates, KPIs) likewise.
NUMBER = r"[-+]?[\d,]*\.?\d+"
SAVED_TEXT_FIELDS = ("description", "tooltip", "placeholder")
SAVED_VALUE_MODELS = {"HTMLModel", "HTMLMathModel", "LabelModel"}


def _english_pattern(template: str) -> re.Pattern:
    """A regular expression that matches what ``template`` writes, one named group per placeholder (a number where
    the placeholder has a numeric format)."""
    parts, seen = [], set()
    for literal, name, spec, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is None:
            continue
        if name in seen:
            parts.append(f"(?P={name})")
        else:
            parts.append(f"(?P<{name}>{NUMBER})" if spec and spec[-1] in "fde%" else f"(?P<{name}>.*?)")
            seen.add(name)
    return re.compile("".join(parts), re.DOTALL)


def _written(template: str, values: dict[str, str]) -> str:
    """``template`` with its placeholders replaced by already formatted ``values``."""
    return "".join(literal + (values[name] if name is not None else "")
                   for literal, name, _, _ in string.Formatter().parse(template))


def _memo_names(text: str, lang: str) -> str | None:
    """Lessons 10 and 11's names in ``lang``: a candidate, a candidate on a machine, a list of KPIs, one of lesson
    11's models; None for other text."""
    from ..factory.memo import NAMES_JA as FACTORY_NAMES
    from ..proof import memo

    if text in FACTORY_NAMES:
        return FACTORY_NAMES[text]
    named = re.fullmatch(r"(?P<name>.+) on (?P<hardware>CPU|GPU)", text)
    if named and named["name"].partition(", ")[0] in memo.CANDIDATES_JA:
        return memo.named_on(named["name"], named["hardware"].lower(), lang)
    if text.partition(", ")[0] in memo.CANDIDATES_JA:
        return memo.candidate_name(text, lang)
    kpis = text.split(", ")
    if all(kpi in memo.KPI_NAMES_JA for kpi in kpis):
        return memo.missed_kpis(kpis, lang)
    return None


def localise_saved_text(text: str, lang: str = "ja") -> str:
    """A text a widget saved in English, in ``lang`` where a message (or a lesson-10 name) wrote it; else as it is."""
    from ..core.language import MESSAGES, percent

    saved, text = text, text.replace("\u2007", " ")  # tqdm pads its progress text with figure spaces
    stripped = text.strip()
    if not stripped or not re.search(r"[A-Za-z]{2,}", stripped) and not re.fullmatch(rf"\$?{NUMBER}[x%]?", stripped):
        return saved
    if (bar := re.fullmatch(r"(?P<desc>.+?):(?P<share>\s+\d+%)", stripped)) is not None:  # a progress bar's "runs: 100%"
        return text.replace(stripped, localise_saved_text(bar["desc"], lang) + ":" + bar["share"])
    if (share := re.fullmatch(rf"({NUMBER})%", stripped)) is not None:
        digits = len(share[1].partition(".")[2])
        return text.replace(stripped, percent(float(share[1]) / 100, digits, lang))
    if (named := _memo_names(stripped, lang)) is not None:  # before the messages: "{name}, {n} labels" is a bar's
        return text.replace(stripped, named)
    for key, entry in MESSAGES.items():
        if key == "percent":
            continue
        pattern = _english_pattern(entry["en"])
        for written in (stripped, text.lstrip()):  # a message ending in an empty placeholder keeps its space
            match = pattern.fullmatch(written)
            if match:
                values = {name: localise_saved_text(value, lang) for name, value in match.groupdict().items()}
                return text.replace(written, _written(entry[lang], values))
    return saved


def localise_saved_html(markup: str, lang: str = "ja") -> str:
    """HTML a widget saved: each text between tags in ``lang`` (``localise_saved_text``); the tags as they are."""
    return "".join(piece if piece.startswith("<") else localise_saved_text(piece, lang)
                   for piece in re.split(r"(<[^>]+>)", markup))


def localise_widgets(notebook: dict, lang: str = "ja") -> int:
    """The notebook's saved widget labels, options and texts, and its bertviz views' controls, in ``lang``;
    changed in place. Returns how many texts changed."""
    from ..inside.viz import localise_bertviz

    changed = 0

    def put(holder, key, new):
        nonlocal changed
        old = list(holder[key]) if isinstance(holder[key], tuple) else holder[key]  # options may be a tuple
        if old != new:
            holder[key], changed = new, changed + 1

    state = notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for model in state.values():
        values = model.get("state", {})
        for field_name in SAVED_TEXT_FIELDS:
            if isinstance(values.get(field_name), str):
                put(values, field_name, localise_saved_text(values[field_name], lang))
        if isinstance(values.get("_options_labels"), (list, tuple)):
            put(values, "_options_labels", [localise_saved_text(label, lang) for label in values["_options_labels"]])
        if model.get("model_name") in SAVED_VALUE_MODELS and isinstance(values.get("value"), str):
            put(values, "value", localise_saved_html(values["value"], lang))
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if isinstance(data.get("text/html"), (str, list)):
                markup = "".join(data["text/html"]) if isinstance(data["text/html"], list) else data["text/html"]
                if (localised := localise_bertviz(markup, lang)) != markup:
                    data["text/html"], changed = localised, changed + 1
    return changed
