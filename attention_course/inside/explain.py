"""Does attention explain a prediction? Compare it with erasure and gradient importance on the same tokens.

A linear sentiment probe on mean-pooled MiniLM features gives a differentiable classifier (``SentimentProbe``);
``ClassifierExplainer`` wraps any two-class model of the course (a fine-tuned or distilled ``SentimentClassifier``,
or a probe fitted elsewhere) the same way, so a candidate's explanations are judged on its own predictions. For each
sentence we score every word-piece token three ways and ask how well each ranking agrees with erasure
(the drop in the predicted probability when the token is removed), the most direct test of "this token
mattered":
- attention: attention the token receives in the last layer, averaged over heads and queries;
- rollout: the same, through attention rollout over all layers;
- gradient x input: |d p / d embedding . embedding|;
- random: a control.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import Tensor, nn

from ..core.training import mean_pool
from .pretrained import eager_attention, embed, tokenize
from .viz import attention_rollout


class SentimentProbe(nn.Module):
    """Frozen encoder + mean pooling + a linear layer fitted by logistic regression."""

    def __init__(self, encoder: nn.Module, tokenizer, texts: list[str], labels: list[int], C: float = 1.0):
        super().__init__()
        from sklearn.linear_model import LogisticRegression

        self.encoder, self.tokenizer = encoder.eval(), tokenizer
        device = next(encoder.parameters()).device
        regression = LogisticRegression(C=C, max_iter=2000).fit(embed(encoder, tokenizer, texts, device), labels)
        self.linear = nn.Linear(regression.coef_.shape[1], 1).to(device)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor(regression.coef_, dtype=torch.float32))
            self.linear.bias.copy_(torch.tensor(regression.intercept_, dtype=torch.float32))

    def positive_probability(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                             inputs_embeds: Tensor | None = None, output_attentions: bool = False):
        with eager_attention(self.encoder) if output_attentions else contextlib.nullcontext():
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                               output_attentions=output_attentions)
        probability = torch.sigmoid(self.linear(mean_pool(out.last_hidden_state, attention_mask)))[:, 0]
        return (probability, out.attentions) if output_attentions else probability


class ClassifierExplainer(nn.Module):
    """The probability of the positive class of a two-class model, in the shape ``token_importances`` asks for.

    ``head`` maps mean-pooled encoder states to two logits (a ``SentimentClassifier``'s head) or, with
    ``linear_probe=True``, to one logit (a logistic regression's weights copied into ``nn.Linear``)."""

    def __init__(self, encoder: nn.Module, head: nn.Module, tokenizer, linear_probe: bool = False):
        super().__init__()
        self.encoder, self.linear, self.tokenizer, self.linear_probe = encoder.eval(), head.eval(), tokenizer, linear_probe

    @classmethod
    def from_classifier(cls, model: nn.Module, tokenizer) -> ClassifierExplainer:
        """For a ``SentimentClassifier`` (encoder + mean pooling + a two-logit head)."""
        return cls(model.encoder, model.head, tokenizer)

    @classmethod
    def from_logistic(cls, encoder: nn.Module, regression, tokenizer) -> ClassifierExplainer:
        """For a scikit-learn logistic regression fitted on mean-pooled features of ``encoder`` (a linear probe)."""
        device = next(encoder.parameters()).device
        linear = nn.Linear(regression.coef_.shape[1], 1).to(device)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(regression.coef_, dtype=torch.float32))
            linear.bias.copy_(torch.tensor(regression.intercept_, dtype=torch.float32))
        return cls(encoder, linear, tokenizer, linear_probe=True)

    def positive_probability(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                             inputs_embeds: Tensor | None = None, output_attentions: bool = False):
        with eager_attention(self.encoder) if output_attentions else contextlib.nullcontext():
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                               output_attentions=output_attentions)
        logits = self.linear(mean_pool(out.last_hidden_state.float(), attention_mask).to(self.linear.weight.dtype))
        probability = torch.sigmoid(logits[:, 0]) if self.linear_probe else torch.softmax(logits.float(), -1)[:, 1]
        return (probability, out.attentions) if output_attentions else probability


def _erasure(probe, ids: Tensor, mask: Tensor, inner: slice, full: float, batched: bool) -> np.ndarray:
    """|change of the positive probability| when each inner token is removed from attention and pooling."""
    if not batched:
        erased = []
        for position in range(inner.start, inner.stop):
            reduced = mask.clone()
            reduced[0, position] = 0  # the token disappears from attention and from the pooling
            erased.append(abs(full - probe.positive_probability(ids, reduced).item()))
        return np.array(erased)
    positions = torch.arange(inner.start, inner.stop, device=ids.device)
    masks = mask.repeat(len(positions), 1)
    masks[torch.arange(len(positions), device=ids.device), positions] = 0  # one copy per erased token
    probabilities = probe.positive_probability(ids.repeat(len(positions), 1), masks).float()
    return (probabilities - full).abs().cpu().numpy()


def token_importances(probe: SentimentProbe, text: str, seed: int = 0, batched: bool = False) -> dict[str, np.ndarray]:
    """Per-token importance of one sentence under each method; special tokens ([CLS], [SEP]) are left out.

    ``probe``: a ``SentimentProbe`` or a ``ClassifierExplainer``. ``batched=True`` erases every token in one batch
    (one forward pass instead of one per token; the same numbers up to float rounding)."""
    device = next(probe.parameters()).device
    batch = tokenize(probe.tokenizer, [text], device)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    inner = slice(1, ids.shape[1] - 1)  # drop [CLS] and [SEP]
    with torch.no_grad():
        full, attentions = probe.positive_probability(ids, mask, output_attentions=True)
        erased = _erasure(probe, ids, mask, inner, full.item(), batched)
    last_layer = attentions[-1][0].float().mean(0).mean(0).cpu().numpy()
    rollout = attention_rollout([a[0] for a in attentions]).mean(0).numpy()
    embeddings = probe.encoder.get_input_embeddings()(ids).detach().requires_grad_(True)
    with torch.enable_grad():
        probe.positive_probability(attention_mask=mask, inputs_embeds=embeddings).sum().backward()
    gradient = (embeddings.grad * embeddings).sum(-1).abs()[0].detach().float().cpu().numpy()
    rng = np.random.default_rng(seed)
    return {"erasure": erased, "attention": last_layer[inner], "rollout": rollout[inner],
            "gradient x input": gradient[inner], "random": rng.random(inner.stop - inner.start),
            "tokens": np.array(probe.tokenizer.convert_ids_to_tokens(ids[0][inner]))}


def agreement_with_erasure(probe: SentimentProbe, texts: list[str], batched: bool = False) -> dict[str, list[float]]:
    """Spearman rank correlation of each method with erasure, one value per sentence (>= 3 tokens)."""
    from scipy.stats import spearmanr

    scores: dict[str, list[float]] = {"attention": [], "rollout": [], "gradient x input": [], "random": []}
    for index, text in enumerate(texts):
        importances = token_importances(probe, text, seed=index, batched=batched)
        if len(importances["erasure"]) < 3 or np.ptp(importances["erasure"]) == 0:
            continue
        for method in scores:
            scores[method].append(float(spearmanr(importances[method], importances["erasure"]).statistic))
    return scores


def tfidf_agreement(vectorizer, model, texts: list[str]) -> dict[str, list[float]]:
    """The explanation a TF-IDF + logistic-regression model can show (each word's weight: the sum of
    coefficient x TF-IDF value over the features that contain it) against erasure (the change of the positive
    probability when every occurrence of the word is removed), Spearman per sentence (>= 3 distinct words)."""
    from scipy.stats import spearmanr

    analyze = vectorizer.build_analyzer()
    tokenize_words = vectorizer.build_tokenizer()
    vocabulary, coef = vectorizer.vocabulary_, model.coef_[0]
    scores: dict[str, list[float]] = {"word weights": [], "random": []}
    rng = np.random.default_rng(0)
    for text in texts:
        words = list(dict.fromkeys(w.lower() for w in tokenize_words(text)))
        if len(words) < 3:
            continue
        row = vectorizer.transform([text])
        weight = {index: coef[index] * value for index, value in zip(row.indices, row.data, strict=True)}
        features = [f for f in analyze(text) if f in vocabulary]
        shown = np.array([abs(sum(weight.get(vocabulary[f], 0.0) for f in set(features) if w in f.split()))
                          for w in words])
        full = model.predict_proba(row)[0, 1]
        erased_texts = [" ".join(t for t in tokenize_words(text) if t.lower() != w) for w in words]
        erased = np.abs(model.predict_proba(vectorizer.transform(erased_texts))[:, 1] - full)
        if np.ptp(erased) == 0 or np.ptp(shown) == 0:
            continue
        scores["word weights"].append(float(spearmanr(shown, erased).statistic))
        scores["random"].append(float(spearmanr(rng.random(len(words)), erased).statistic))
    return scores
