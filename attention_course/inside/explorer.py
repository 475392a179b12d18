"""A live attention explorer for JupyterLab: type a sentence, pick a layer and a head, see the map.

Bad input never raises into the notebook: the widget shows a message instead (empty text, text longer
than the model's 512 tokens, which is truncated with a notice). Any Unicode is accepted; characters the
WordPiece vocabulary lacks become [UNK]. Labels, messages and the map speak the notebook's language
(``lang="ja"``, or as ``core.language.language`` finds it).
"""

from __future__ import annotations

import base64
import html
import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import display

from ..core.language import figure_style, language, say
from .viz import attention_rollout, plot_heatmap

MAX_TOKENS = 512
ROLLOUT = "rollout"
MEAN = "mean"


class ExplorerBox(widgets.VBox):
    """The explorer's box. Its display also carries a static HTML snapshot (sentence, most attended tokens,
    heatmap), which is what shows where the live widget cannot: an untrusted notebook, a viewer without a
    kernel (GitHub, nbviewer). Where widgets render, JupyterLab prefers the widget itself."""

    def __init__(self, children, snapshot):
        super().__init__(children)
        self._snapshot = snapshot

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            try:
                bundle["text/html"] = self._snapshot()
            except Exception:  # a snapshot is a courtesy: never let it stop the widget from showing
                pass
        return bundle


class AttentionExplorer:
    """Widgets around a pretrained encoder: ``display(explorer.widget)`` shows it. ``lang`` ("en" or "ja") is the
    language of its labels and messages; by default the notebook's (``core.language.language``)."""

    def __init__(self, model, tokenizer, text: str = "The film was not good, but the actors were brilliant.",
                 top_k: int = 5, lang: str | None = None):
        self.model, self.tokenizer, self.top_k = model, tokenizer, top_k
        self.lang = lang = language(lang)
        n_layers, n_heads = model.config.num_hidden_layers, model.config.num_attention_heads
        self.text = widgets.Textarea(value=text, description=say("sentence", lang), layout=widgets.Layout(width="95%"))
        self.layer = widgets.Dropdown(description=say("layer", lang), value=n_layers - 1,
                                      options=[(say("layer_n", lang, n=i), i) for i in range(n_layers)]
                                      + [(say("rollout_all", lang), ROLLOUT)])
        self.head = widgets.Dropdown(description=say("head", lang), value=MEAN,
                                     options=[(say("mean_heads", lang), MEAN)]
                                     + [(say("head_n", lang, n=h), h) for h in range(n_heads)])
        self.message = widgets.HTML()
        self.top_tokens = widgets.HTML()
        self.output = widgets.Output()
        self.tokens: list[str] = []
        self.weights: torch.Tensor | None = None
        for control in (self.text, self.layer, self.head):
            control.observe(lambda change: self.update(), names="value")
        self.widget = ExplorerBox([self.text, widgets.HBox([self.layer, self.head]), self.message,
                                   self.top_tokens, self.output], self.snapshot_html)
        self.update()

    def _encode(self, text: str):
        full_length = len(self.tokenizer(text)["input_ids"])
        batch = self.tokenizer(text, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        notice = ""
        if full_length > MAX_TOKENS:
            notice = say("too_long", self.lang, tokens=full_length, limit=MAX_TOKENS)
        return batch, notice

    @torch.no_grad()
    def compute(self, text: str, layer, head) -> tuple[list[str], torch.Tensor, str]:
        """(tokens, (T, T) weights, notice) for a sentence, layer (or 'rollout') and head (or 'mean')."""
        batch, notice = self._encode(text)
        device = next(self.model.parameters()).device
        outputs = self.model(**{k: v.to(device) for k, v in batch.items()}, output_attentions=True)
        if not outputs.attentions:
            raise RuntimeError("the model returned no attentions: load it with attn_implementation='eager'")
        attentions = [a[0].float().cpu() for a in outputs.attentions]  # each (heads, T, T)
        if layer == ROLLOUT:
            weights = attention_rollout(attentions)
        else:
            chosen = attentions[layer]
            weights = chosen.mean(0) if head == MEAN else chosen[head]
        tokens = self.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
        return tokens, weights, notice

    def update(self) -> None:
        """Recompute and redraw; problems become a message in the widget, never a traceback."""
        text = self.text.value.strip()
        self.head.disabled = self.layer.value == ROLLOUT
        if not text:
            self._show_message(say("type_sentence", self.lang), clear=True)
            return
        try:
            tokens, weights, notice = self.compute(text, self.layer.value, self.head.value)
        except Exception as error:  # shown to the learner in the widget, not raised into the notebook
            self._show_message(say("no_attention", self.lang, error=html.escape(str(error))), clear=True)
            return
        self.tokens, self.weights = tokens, weights
        self._show_message(notice)
        received = weights.mean(0)  # attention each token receives, averaged over the queries
        order = received.argsort(descending=True).tolist()[: self.top_k]
        listed = say("list_separator", self.lang).join(
            say("token_weight", self.lang, token=html.escape(tokens[i]), weight=float(received[i])) for i in order)
        self.top_tokens.value = say("top_tokens", self.lang, listed=listed)
        self._draw(tokens, weights)

    def _title(self) -> str:
        if self.layer.value == ROLLOUT:
            return say("rollout_title", self.lang)
        head = say("mean_heads", self.lang) if self.head.value == MEAN else say("head_n", self.lang, n=self.head.value)
        return say("layer_title", self.lang, layer=self.layer.value, head=head)

    def _figure(self, tokens: list[str], weights: torch.Tensor):
        with plt.rc_context(figure_style(self.lang)):
            if len(tokens) > 60:
                fig, ax = plt.subplots(figsize=(7, 6))
                image = ax.imshow(weights, cmap="viridis")
                ax.set(xlabel=say("key_positions", self.lang), ylabel=say("query_positions", self.lang),
                       title=self._title())
                fig.colorbar(image, ax=ax, label=say("weight", self.lang))
                return fig
            return plot_heatmap(weights, tokens, self._title(), lang=self.lang).figure

    def _draw(self, tokens: list[str], weights: torch.Tensor) -> None:
        with self.output:
            self.output.clear_output(wait=True)
            fig = self._figure(tokens, weights)
            display(fig)
            plt.close(fig)

    def snapshot_html(self) -> str:
        """A static picture of the explorer as it stands: the sentence, the map's title, the most attended
        tokens (all text escaped) and the heatmap as an embedded PNG."""
        parts = [f"<p>{say('snapshot', self.lang, name='<b>' + say('explorer', self.lang) + '</b>')}</p>",
                 f"<p>{say('sentence_is', self.lang, text=html.escape(self.text.value))}</p>",
                 f"<p>{html.escape(self._title())}</p>"]
        parts += [f"<p>{value}</p>" for value in (self.message.value, self.top_tokens.value) if value]
        if self.weights is not None:
            fig = self._figure(self.tokens, self.weights)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
            plt.close(fig)
            image = base64.b64encode(buffer.getvalue()).decode("ascii")
            parts.append(f'<img src="data:image/png;base64,{image}" alt="{html.escape(self._title())}">')
        return "<div class=\"attention-explorer-snapshot\">" + "".join(parts) + "</div>"

    def _show_message(self, text: str, clear: bool = False) -> None:
        self.message.value = f"<span style='color:#a15c00'>{text}</span>" if text else ""
        if clear:
            self.tokens, self.weights = [], None
            self.top_tokens.value = ""
            self.output.clear_output()
