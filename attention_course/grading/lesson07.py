"""Checks for lesson 07: pooling, freezing, the schedule, honest model selection."""

from __future__ import annotations

import math

import torch

from ._core import CheckFailed, call, expect_tensor, fail, task


@task("07.mean_pool")
def check_mean_pool(fn) -> int:
    g = torch.Generator().manual_seed(707)
    hidden = torch.randn(3, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    weights = mask.unsqueeze(-1).float()
    expected = (hidden * weights).sum(1) / weights.sum(1)
    got = call("07.mean_pool", "hidden (3, 5, 4) with padding", fn, hidden, mask)
    expect_tensor("07.mean_pool", "hidden (3, 5, 4), masks with 3, 5 and 1 real tokens", got, expected,
                  "sum the vectors of the real tokens and divide by how many there are",
                  [(hidden.mean(1), "padding was averaged in: weight each token by the attention mask"),
                   ((hidden * weights).sum(1) / 5, "divide by the number of REAL tokens, not the padded length")])
    return 1


def _tiny_classifier():
    from transformers import BertConfig, BertModel

    from ..transfer import SentimentClassifier

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    torch.manual_seed(0)
    return SentimentClassifier(BertModel(config))


@task("07.freeze_encoder")
def check_freeze(fn) -> int:
    model = _tiny_classifier()
    got = call("07.freeze_encoder", "a 2-layer BERT + head", fn, model)
    if got is not model:
        raise CheckFailed("07.freeze_encoder: return the same model object you were given (changed in place)")
    trainable_encoder = [name for name, p in model.encoder.named_parameters() if p.requires_grad]
    frozen_head = [name for name, p in model.head.named_parameters() if not p.requires_grad]
    if trainable_encoder:
        fail("07.freeze_encoder", "a 2-layer BERT + head", "no trainable encoder parameter",
             f"{len(trainable_encoder)} still trainable, e.g. {trainable_encoder[0]}",
             "loop over model.encoder.parameters() and call p.requires_grad_(False)")
    if frozen_head:
        fail("07.freeze_encoder", "a 2-layer BERT + head", "a trainable head", f"frozen: {frozen_head}",
             "freeze only the encoder: the head must still learn")
    return 1


@task("07.warmup_linear")
def check_warmup_linear(fn) -> int:
    cases = {(0, 100, 10): 0.1, (9, 100, 10): 1.0, (10, 100, 10): 1.0, (55, 100, 10): 0.5, (100, 100, 10): 0.0,
             (150, 100, 10): 0.0}
    for (step, total, warmup), expected in cases.items():
        got = call("07.warmup_linear", f"step {step}", fn, step, total, warmup)
        if not isinstance(got, (int, float)) or not math.isclose(got, expected, abs_tol=1e-9):
            hint = ("warm-up: (step + 1) / warmup" if step < warmup else
                    "decay: (total - step) / (total - warmup), never below 0")
            fail("07.warmup_linear", f"step {step}, total {total}, warmup {warmup}", expected, got, hint)
    return len(cases)


@task("07.select_by_validation")
def check_selection(fn) -> int:
    results = [{"lr": 1e-5, "val_accuracy": 0.80, "test_accuracy": 0.83},
               {"lr": 3e-5, "val_accuracy": 0.86, "test_accuracy": 0.84},
               {"lr": 1e-4, "val_accuracy": 0.84, "test_accuracy": 0.86}]
    got = call("07.select_by_validation", "3 learning rates", fn, results)
    if got != 0.84:
        hint = ("you chose by TEST accuracy: that overstates what the model will do on new data"
                if got == 0.86 else "pick the run with the highest val_accuracy and report ITS test_accuracy")
        fail("07.select_by_validation", "3 learning rates", 0.84, got, hint)
    return 1
