"""The three "build it and hit a target" exercises that end the course's parts.

The learner hands over a builder (or a training function); the check trains and measures it on data it
controls, and reports the measured number against the target:

- ``03.build_classifier`` (part I): a Transformer classifier assembled from the learner's own block reaches
  a stated accuracy on lesson 01's recall task;
- ``05.build_gpt`` (part II): a GPT from the learner's own block reaches a stated validation loss on
  Shakespeare's characters;
- ``07.build_200_labels`` (part III): a sentiment classifier trained on 200 labelled sentences reaches a
  stated accuracy on validation sentences it never saw.

Sizes and targets per profile are in ``profiles.BUILD_TASKS`` (the smoke profile keeps CI fast).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..core.profiles import BUILD_TASKS, pick_profile, sizes
from ._core import call, fail, fresh_generator, note, task
from ._messages import tr

# Modules that would make the build "the library's" rather than the learner's own block.
_LIBRARY_BLOCKS = ("TransformerBlock", "MultiHeadAttention", "TransformerClassifier", "GPT")


def _settings(name: str):
    profile = pick_profile(torch.device("cpu"))  # the checks train on the CPU: same numbers on every machine
    return profile, sizes(BUILD_TASKS, profile).__dict__[name]


def _own_block_only(task_id: str, model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        fail(task_id, tr("building the model"), tr("an nn.Module"), model,
             tr("return the model itself (an nn.Module), e.g. `return MyClassifier(...)`"))
    from ..core import attention as library_attention
    from ..core import gpt as library_gpt
    from ..core import models as library_models

    library = tuple(getattr(module, name) for module in (library_attention, library_models, library_gpt)
                    for name in _LIBRARY_BLOCKS if hasattr(module, name))
    torch_blocks = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer,
                    nn.TransformerEncoder, nn.TransformerDecoder, nn.Transformer)
    for name, module in model.named_modules():
        if isinstance(module, library + torch_blocks):
            where = f"'{name}'" if name else tr("'the top'")
            fail(task_id, tr("building the model"), tr("a model built from your own block"),
                 tr("{kind} at {name}", kind=type(module).__name__, name=where),
                 tr("this task asks you to assemble the block yourself (attention, feed-forward, residuals, LayerNorm) "
                    "from the functions you wrote; library and torch.nn Transformer blocks are not allowed here"))
    if not any(p.requires_grad for p in model.parameters()):
        fail(task_id, tr("building the model"), tr("trainable parameters"), tr("none"),
             tr("the model needs parameters to train"))
    return model


# ---------------------------------------------------------------- part I: a classifier on the recall task


@task("03.build_classifier", time_limit=900, forbid=())
def check_build_classifier(build) -> int:
    """``build(vocab_size, d_model, n_heads, n_layers, n_classes, max_len)`` -> module mapping (B, T) tokens to (B, classes)."""
    from ..core.data import make_recall_task
    from ..core.models import fit_classifier
    from ..core.training import accuracy

    task_id = "03.build_classifier"
    profile, s = _settings("classifier")
    g = fresh_generator()
    torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=g)))
    model = call(task_id, tr("building the model"), build, s["vocab"], s["d_model"], s["heads"], s["layers"], s["vocab"],
                 s["distance"])
    model = _own_block_only(task_id, model).cpu()
    x_train, y_train = make_recall_task(s["n_train"], s["distance"], s["vocab"], g)
    x_test, y_test = make_recall_task(s["n_test"], s["distance"], s["vocab"], g)
    out = call(task_id, tr("one batch"), model, x_test[:4])
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (4, s["vocab"]):
        fail(task_id, tr("one batch"), tr("logits of shape (4, {vocab})", vocab=s['vocab']), out,
             tr("the model's forward takes (batch, time) token ids and returns one row of class logits per sequence"))
    call(task_id, tr("training"), lambda: fit_classifier(model, x_train, y_train, steps=s["steps"], lr=s["lr"],
                                                     generator=g, progress=False))
    measured = call(task_id, "evaluating", lambda: accuracy(model, x_test, y_test))
    what = (tr("recall of the first token over {distance} tokens, {steps} training steps (profile {profile}): test "
               "accuracy {measured:.3f}, target {target:.2f}, chance {value:.3f}",
               distance=s['distance'], steps=s['steps'], profile=profile, measured=measured, target=s['target'], value=1 / s['vocab']))
    if measured < s["target"]:
        fail(task_id, tr("the target"), tr("accuracy >= {target:.2f}", target=s['target']), f"{measured:.3f}",
             tr("{what}. Check that attention can reach the first position (no causal mask with a mean over "
                "positions is fine; a causal mask needs the LAST position as the readout), that positions are "
                "encoded, and that the residual connections add rather than replace", what=what))
    note(what)
    return 1


# ---------------------------------------------------------------- part II: a GPT on Shakespeare


def _lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model(x)
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


class UniformAttention(TorchFunctionMode):
    """Inside this mode every softmax and ``F.scaled_dot_product_attention`` spreads its weight evenly over the
    positions its mask allows: the model's attention is switched off, whatever its code calls it.

    A mode (not a patched attribute) reaches ``torch.softmax``, ``F.softmax``, ``Tensor.softmax`` and SDPA however
    the learner's code names them (``from torch.nn.functional import softmax`` included).
    """

    _SOFTMAX = (torch.softmax, nn.functional.softmax, torch.Tensor.softmax, torch.special.softmax)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._SOFTMAX:
            scores, dim = args[0], kwargs.get("dim", args[1] if len(args) > 1 else -1)
            allowed = (scores > -1e3).to(scores.dtype)  # -inf, -1e9 or finfo.min masks (real scores are far above)
            return allowed / allowed.sum(-1 if dim is None else dim, keepdim=True).clamp_min(1)
        if func is nn.functional.scaled_dot_product_attention:
            return self._uniform_sdpa(*args, **kwargs)
        return func(*args, **kwargs)

    @staticmethod
    def _uniform_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, **_):
        allowed = torch.ones(query.shape[-2], key.shape[-2], dtype=torch.bool, device=query.device)
        if is_causal:
            allowed = allowed.tril()
        if attn_mask is not None:
            allowed = allowed & (attn_mask if attn_mask.dtype == torch.bool else attn_mask > -1e3)
        weights = allowed.to(value.dtype)
        return weights / weights.sum(-1, keepdim=True).clamp_min(1) @ value


@task("05.build_gpt", time_limit=1200, forbid=())
def check_build_gpt(build) -> int:
    """``build(vocab_size, block_size, n_layer, n_head, d_model)`` -> module mapping (B, T) ids to (B, T, vocab) logits.

    Beyond the target, the check measures that the number comes from a trained attention model: before training the
    model guesses about uniformly (it does not arrive knowing the text, e.g. as a table of character counts), its
    parameters move in training, and its validation loss gets clearly worse when its attention is made uniform.
    """
    from ..core.data import shakespeare_char_splits
    from ..core.training import make_optimizer, warmup_cosine_lr
    from ..parallel.train import random_batch

    task_id = "05.build_gpt"
    profile, s = _settings("gpt")
    tokenizer, train_ids, val_ids = shakespeare_char_splits()
    g = fresh_generator()
    torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=g)))
    vocab, block = tokenizer.vocab_size, s["block_size"]
    model = call(task_id, tr("building the model"), build, vocab, block, s["layers"], s["heads"], s["d_model"])
    model = _own_block_only(task_id, model).cpu()
    x = torch.randint(vocab, (2, block), generator=g)
    logits = call(task_id, tr("one batch"), model, x)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (2, block, vocab):
        fail(task_id, tr("one batch"), tr("logits of shape (2, {block}, {vocab})", block=block, vocab=vocab), logits,
             tr("forward takes (batch, time) character ids and returns (batch, time, vocab_size) logits"))
    changed = x.clone()
    changed[:, block // 2 :] = (changed[:, block // 2 :] + 1) % vocab
    with torch.no_grad():
        model.eval()
        before, after = call(task_id, tr("causality"), lambda: (model(x), model(changed)))
        model.train()
    if not torch.allclose(before[:, : block // 2], after[:, : block // 2], atol=1e-4, rtol=1e-4):
        fail(task_id, tr("causality"), tr("logits at position t that ignore tokens after t"),
             tr("logits that change when later tokens change"),
             tr("the model peeks at the future: attention needs the causal mask (position t may attend to 0..t only)"))
    device = torch.device("cpu")

    def validation_loss(attention: TorchFunctionMode | None = None) -> float:
        model.eval()
        val_g = torch.Generator().manual_seed(1234)  # the same held-out windows for every measurement
        with torch.no_grad():
            losses = []
            for _ in range(s["eval_batches"]):
                xb, yb = random_batch(val_ids, block, s["batch"], val_g, device)
                if attention is None:
                    losses.append(_lm_loss(model, xb, yb).item())
                    continue
                with attention:
                    out = model(xb)
                losses.append(nn.functional.cross_entropy(out.reshape(-1, vocab), yb.reshape(-1)).item())
        model.train()
        return float(np.mean(losses))

    untrained = call(task_id, tr("before training"), validation_loss)
    if not untrained >= 0.75 * math.log(vocab):
        fail(task_id, tr("before training"),
             tr("a validation loss near a uniform guess ({log:.2f}) before any training", log=math.log(vocab)),
             f"{untrained:.3f}", tr("the check trains your model itself: build it from fresh layers (nothing learnt "
                                    "from the text in advance, such as a table of character counts)"))
    initial = [p.detach().clone() for p in model.parameters()]
    optimizer = make_optimizer(model, s["lr"], 0.1, device)

    def train_and_measure() -> float:
        for step in range(s["steps"]):
            for group in optimizer.param_groups:
                group["lr"] = warmup_cosine_lr(step, s["warmup"], s["steps"], s["lr"], s["lr"] / 10)
            xb, yb = random_batch(train_ids, block, s["batch"], g, device)
            loss = _lm_loss(model, xb, yb)
            if not math.isfinite(loss.item()):
                return float("nan")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        return validation_loss()

    measured = call(task_id, tr("training"), train_and_measure)
    what = (tr("{steps} steps of batch {batch} x {block} characters (profile {profile}): validation loss "
               "{measured:.3f} nats/char, target {target:.2f} (a uniform guess scores {log:.2f})",
               steps=s['steps'], batch=s['batch'], block=block, profile=profile, measured=measured, target=s['target'],
               log=math.log(vocab)))
    if not measured <= s["target"]:
        fail(task_id, tr("the target"), tr("validation loss <= {target:.2f}", target=s['target']), f"{measured:.3f}",
             tr("{what}. Check the Pre-LN order (normalise, sublayer, add), the residual additions, the causal mask, "
                "and that the position embedding is added to the token embedding", what=what))
    moved = sum(int(not torch.equal(p.detach(), p0)) for p, p0 in zip(model.parameters(), initial, strict=True))
    if moved < len(initial) / 2:
        fail(task_id, tr("training"), tr("most parameter tensors changed by training"),
             tr("{moved} of {total}", moved=moved, total=len(initial)),
             tr("every layer of the model should take part in predicting the next character"))
    ablated = call(task_id, tr("attention switched off"), validation_loss, UniformAttention())
    what += tr("; with uniform attention {ablated:.3f}", ablated=ablated)
    if not ablated - measured >= s["attention_gain"]:
        fail(task_id, tr("attention switched off"), tr("a validation loss at least {attention_gain:.3f} worse than "
                                                   "{measured:.3f} when every softmax and "
                                                   "F.scaled_dot_product_attention weighs positions uniformly",
                                                   attention_gain=s['attention_gain'], measured=measured),
             f"{ablated:.3f}", tr("the model must predict through its attention: compute the attention weights with "
                                  "torch.softmax / F.softmax / Tensor.softmax or F.scaled_dot_product_attention (the "
                                  "check switches those off to measure what attention contributes)"))
    note(what)
    return 2


# ---------------------------------------------------------------- part III: 200 labels


@task("07.build_200_labels", time_limit=1200, forbid=())
def check_build_200_labels(train_and_predict) -> int:
    """``train_and_predict(train_texts, train_labels, texts)`` -> predicted labels (0/1) for ``texts``."""
    from ..core.data import rotten_tomatoes

    task_id = "07.build_200_labels"
    profile, s = _settings("labels")
    seed = int(torch.randint(2**31 - 1, (1,), generator=fresh_generator()))
    train = rotten_tomatoes("train").subset(s["n_labels"], seed=seed)
    held_out = rotten_tomatoes("validation").subset(s["n_eval"], seed=seed)
    predictions = call(task_id, tr("training and predicting"), train_and_predict, list(train.texts), list(train.labels),
                       list(held_out.texts))
    try:
        predicted = np.asarray(predictions.cpu() if isinstance(predictions, torch.Tensor) else predictions).reshape(-1)
    except Exception:  # noqa: BLE001  (anything that is not a sequence of labels)
        predicted = None
    if predicted is None or len(predicted) != len(held_out) or not np.isin(predicted, (0, 1)).all():
        fail(task_id, "predicting", tr("{n_held_out} labels, each 0 or 1", n_held_out=len(held_out)), predictions,
             tr("return one predicted label (1 = fresh, 0 = rotten) per text you were given, in order"))
    measured = float(np.mean(predicted == np.asarray(held_out.labels)))
    majority = max(np.mean(held_out.labels), 1 - np.mean(held_out.labels))
    what = (tr("{n_labels} labelled training sentences, {n_held_out} held-out validation sentences (profile "
               "{profile}): accuracy {measured:.3f}, target {target:.2f}, majority class {majority:.3f}",
               n_labels=s['n_labels'], n_held_out=len(held_out), profile=profile, measured=measured, target=s['target'], majority=majority))
    if measured < s["target"]:
        fail(task_id, tr("the target"), tr("accuracy >= {target:.2f}", target=s['target']), f"{measured:.3f}",
             tr("{what}. With so few labels, start from pretrained features (lesson 07's probe or fine-tuning)",
                what=what))
    note(what)
    return 1
