"""Attention views that work offline: bertviz with its scripts inlined, heatmaps, and a live explorer.

Stock bertviz loads require.js, d3 and jQuery from a CDN, so offline (in JupyterLab, in exported HTML,
on the course website) it shows an empty "Layer:" box. ``head_view`` and ``model_view`` here call bertviz
for its HTML and JavaScript, then inline d3 and jQuery (from the npm packages that setup installs) and give
bertviz's script a private ``require`` that hands it those two libraries. Nothing is fetched.
"""

from __future__ import annotations

import json
import os
import re
import string
from pathlib import Path

import torch
from torch import Tensor

from ..core.course import course
from ..core.language import DEFAULT, MESSAGES, figure_style, language, say

JS_ENV = "ATTENTION_COURSE_JS_DIR"
_SCRIPT_FILES = {"d3": ("d3", "dist", "d3.min.js"), "jquery": ("jquery", "dist", "jquery.min.js")}
_CDN_SCRIPT_TAG = re.compile(r"<script src=\"https?://[^\"]+\"></script>")
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.DOTALL)
_SCRIPT_OPEN = '<script type="text/javascript">'
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)
_PARAMS = "const params = "  # where bertviz's head_view.js and model_view.js put their data
_PARAMS_SLOT = "__attention_course_params__"


def _node_modules() -> Path:
    try:
        folder = Path(os.environ.get(JS_ENV) or course().node_modules)
    except FileNotFoundError:  # the library is installed outside a course checkout
        folder = Path("node_modules")
    if not (folder / "d3").exists():
        raise FileNotFoundError(
            f"d3 and jQuery were not found in {folder}. Run `make setup` (it installs them with npm), "
            f"or set {JS_ENV} to a node_modules folder holding d3@5 and jquery@3."
        )
    return folder


def _library_source(name: str) -> str:
    file = _node_modules().joinpath(*_SCRIPT_FILES[name])
    text = file.read_text(encoding="utf-8") if file.is_file() else ""
    if len(text) < 1000:  # missing, empty or cut short: the view would be blank
        raise FileNotFoundError(f"{file} is missing or empty. Run `make setup` (it installs d3 and jQuery with npm), "
                                f"or set {JS_ENV} to a node_modules folder holding d3@5 and jquery@3.")
    return text


def script_json(value) -> str:
    """JSON that is safe inside an HTML ``<script>``: ``<``, ``>``, ``&``, U+2028 and U+2029 are escaped.

    A token such as ``</script><img src=x onerror=...>`` then stays a string in the data and cannot end the
    script element or start markup; JavaScript reads the same string back.
    """
    text = json.dumps(value, ensure_ascii=True)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _script_safe_code(code: str) -> str:
    """Code inlined in a ``<script>``: no ``</script`` or ``<!--`` may end it early or change how it is parsed
    (only strings, regular expressions and comments can hold them, where ``<\\/`` and ``<\\!`` read the same;
    a no-op for d3 5, jQuery 3 and bertviz's own code)."""
    return _SCRIPT_END.sub(r"<\\/\1", code).replace("<!--", "<\\!--")


def offline_bertviz_html(html: str) -> str:
    """Rewrite bertviz's returned HTML so it needs no network, cannot clash with a page's require.js, and
    carries its data (tokens included) as script-safe JSON."""
    d3, jquery = (_script_safe_code(_library_source(name)) for name in ("d3", "jquery"))
    start = html.index(_SCRIPT_OPEN) + len(_SCRIPT_OPEN)
    end = html.rindex("</script>")
    script = html[start:end]
    # Take bertviz's data out first, so that no rewrite below can touch a token's text, then put it back escaped.
    # (bertviz pastes the same JSON a second time, into a comment after it: every copy is replaced.)
    at = script.index(_PARAMS) + len(_PARAMS)
    params, stop = json.JSONDecoder().raw_decode(script, at)
    script = _REQUIRE_CONFIG.sub("", script.replace(script[at:stop], _PARAMS_SLOT))
    script = _script_safe_code(script).replace(_PARAMS_SLOT, script_json(params))
    # Library code runs with define/module/exports hidden, so it never registers with a page's AMD loader.
    private = (
        "(function () {\n"
        "var holder = {};\n"
        f"(function (define, module, exports) {{\n{d3}\n}}).call(holder);\n"
        "var previous = {jQuery: window.jQuery, $: window.$};\n"
        f"(function (define, module, exports) {{\n{jquery}\n}}).call(window);\n"
        "var jq = window.jQuery.noConflict(true);\n"
        "if (previous.jQuery) { window.jQuery = previous.jQuery; window.$ = previous.$; }\n"
        "var require = {config: function () {}};\n"
        "var requirejs = function (names, run) { run(jq, holder.d3); };\n"
        f"{script}\n"
        "})();\n"
    )
    return _CDN_SCRIPT_TAG.sub("", html[:start]) + "\n" + private + html[end:]


def _js_message(key: str, lang: str, **expressions: str) -> str:
    """The message ``key`` as a JavaScript string expression whose placeholders are JavaScript ``expressions``."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(MESSAGES[key][lang]):
        parts += [json.dumps(literal, ensure_ascii=False)] if literal else []
        parts += [expressions[name]] if name else []
    return " + ".join(parts)


# bertviz 1.4.1's own English, as its Python and JavaScript write it, and what replaces it in another language
BERTVIZ_TEXT = {
    'Layer: <select id="layer">': lambda lang: say("bertviz_layer", lang, select='<select id="layer">'),
    '.text("Heads")': lambda lang: f'.text({_js_message("bertviz_heads", lang)})',
    '.text("Layers")': lambda lang: f'.text({_js_message("bertviz_layers", lang)})',
    """.text('Layer ' + config.layers[layerIndex] + ", Head " + config.heads[headIndex])""": lambda lang: (
        f'.text({_js_message("bertviz_detail", lang, layer="config.layers[layerIndex]", head="config.heads[headIndex]")})'),
}


def localise_bertviz(html: str, lang: str | None = None) -> str:
    """bertviz's HTML with its controls' English ("Layer:", "Heads", "Layers", "Layer 2, Head 5") in ``lang``."""
    lang = language(lang)
    if lang == DEFAULT:
        return html
    for english, localised in BERTVIZ_TEXT.items():
        html = html.replace(english, localised(lang))
    return html


def _bertviz_view(kind: str, attention: tuple[Tensor, ...], tokens: list[str], lang: str | None = None, **options):
    from bertviz import head_view as bertviz_head_view
    from bertviz import model_view as bertviz_model_view
    from IPython.display import HTML

    if not attention:
        raise ValueError("no attention tensors: load the model with attn_implementation='eager' "
                         "(attention_course.inside.pretrained.load_minilm does) and pass output_attentions=True")
    if attention[0].shape[-1] != len(tokens):
        raise ValueError(f"attention covers {attention[0].shape[-1]} positions but {len(tokens)} tokens were given")
    attention = tuple(layer.detach().float().cpu() for layer in attention)
    view = bertviz_head_view if kind == "head" else bertviz_model_view
    returned = view(attention, tokens, html_action="return", **options)
    return HTML(offline_bertviz_html(localise_bertviz(returned.data, lang)))


def head_view(attention: tuple[Tensor, ...], tokens: list[str], lang: str | None = None, **options):
    """bertviz's head view (lines from each token to the tokens it attends to), offline, its controls in ``lang``
    (by default the notebook's: ``core.language.language``). Returns an HTML object."""
    return _bertviz_view("head", attention, tokens, lang, **options)


def model_view(attention: tuple[Tensor, ...], tokens: list[str], lang: str | None = None, **options):
    """bertviz's model view (a thumbnail per layer and head), offline, its labels in ``lang``. Returns an HTML object."""
    return _bertviz_view("model", attention, tokens, lang, **options)


# ---------------------------------------------------------------- attention arithmetic


def attention_rollout(attention: tuple[Tensor, ...] | Tensor, residual_weight: float = 0.5) -> Tensor:
    """Attention rollout (Abnar & Zuidema, 2020) for one sentence.

    Each layer's head-averaged attention (T, T) is mixed with the identity for the residual connection,
    row-normalised, and the layers are multiplied from the first up: entry (i, j) estimates how much input
    token j flows into position i at the top.
    """
    layers = torch.stack([a.float() for a in attention]) if isinstance(attention, (tuple, list)) else attention.float()
    if layers.dim() == 5:
        if layers.shape[1] != 1:
            raise ValueError(f"rollout is for one sentence: got a batch of {layers.shape[1]}")
        layers = layers[:, 0]
    if layers.dim() != 4:
        raise ValueError(f"expected (layers, heads, T, T) attention, got shape {tuple(layers.shape)}")
    size = layers.shape[-1]
    rollout = torch.eye(size)
    for layer in layers:
        mixed = (1 - residual_weight) * layer.mean(0).cpu() + residual_weight * torch.eye(size)
        mixed = mixed / mixed.sum(-1, keepdim=True)
        rollout = mixed @ rollout
    return rollout


def mean_attention_distance(weights: Tensor) -> Tensor:
    """Mean |i - j| under each head's attention distribution, averaged over query positions: (..., T, T) -> (...)."""
    size = weights.shape[-1]
    positions = torch.arange(size, dtype=weights.dtype, device=weights.device)
    distance = (positions[:, None] - positions[None, :]).abs()
    return (weights * distance).sum(-1).mean(-1)


def plot_heatmap(weights: Tensor, tokens: list[str], title: str, ax=None, fontsize: int = 8, lang: str | None = None):
    """A labelled (T, T) heatmap: rows attend (queries), columns are attended to (keys); tick labels at ``fontsize``;
    axis labels in ``lang`` (by default the notebook's: ``core.language.language``)."""
    import matplotlib.pyplot as plt

    lang = language(lang)
    with plt.rc_context(figure_style(lang)):
        ax = ax or plt.subplots(figsize=(0.35 * len(tokens) + 2.5, 0.35 * len(tokens) + 2))[1]
        image = ax.imshow(weights.detach().float().cpu(), cmap="viridis", vmin=0)
        labels = [str(token).replace("$", r"\$") for token in tokens]  # a token is text, never matplotlib mathtext
        ax.set_xticks(range(len(tokens)), labels, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(len(tokens)), labels, fontsize=fontsize)
        ax.set_xlabel(say("keys", lang))
        ax.set_ylabel(say("queries", lang))
        ax.set_title(title, fontsize=fontsize + 1)
        ax.figure.colorbar(image, ax=ax, fraction=0.046, label=say("weight", lang))
    return ax
