"""Checks for lesson 07: pooling, freezing, the schedule, honest model selection."""

from __future__ import annotations

import torch

from ._core import call, expect_number, expect_tensor, fail, fresh_generator, fresh_rng, task
from ._messages import tr


@task("07.mean_pool")
def check_mean_pool(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = 0
    for batch, length in ((rng.randint(3, 5), rng.randint(4, 9)), (4, 6), (1, rng.randint(2, 5))):
        width = rng.randint(2, 6)
        lengths = torch.randint(1, length + 1, (batch,), generator=g)
        lengths[0] = length  # a row without padding ...
        if batch > 1:
            lengths[1] = 1  # ... and one with a single real token
        mask = (torch.arange(length)[None] < lengths[:, None]).long()
        if batch > 2:
            mask[2] = (torch.arange(length) >= rng.randint(1, length - 1)).long()  # left padding: tokens at the end
        hidden = torch.randn(batch, length, width, generator=g) + 20 * (1 - mask).unsqueeze(-1)  # loud padding
        case = tr("hidden {shape}, real tokens per row {mask}", shape=tuple(hidden.shape), mask=mask.sum(1).tolist())
        weights = mask.unsqueeze(-1).float()
        expected = (hidden * weights).sum(1) / weights.sum(1)
        got = call("07.mean_pool", case, fn, hidden, mask)
        expect_tensor("07.mean_pool", case, got, expected,
                      tr("sum the vectors of the real tokens and divide by how many there are"),
                      [(hidden.mean(1), tr("padding was averaged in: weight each token by the attention mask")),
                       ((hidden * weights).sum(1) / length, tr("divide by the number of REAL tokens, not the padded "
                                                               "length")),
                       ((hidden * weights).sum(1), tr("divide the sum by the number of real tokens")),
                       (torch.stack([hidden[b, : int(n)].mean(0) for b, n in enumerate(mask.sum(1))]),
                        tr("the real tokens are where the mask is 1, not always the first ones: weight by the mask")),
                       ((hidden * weights).mean(-1), tr("pool over the tokens (dim 1), not over the features"))])
        cases += 1
    return cases


class _Classifier(torch.nn.Module):
    """Stands in for lesson 07's SentimentClassifier: an ``encoder`` (a small Transformer) and a linear ``head``."""

    def __init__(self, layers: int, width: int = 16):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Embedding(50, width), *(
            torch.nn.TransformerEncoderLayer(width, 2, 2 * width, batch_first=True) for _ in range(layers)))
        self.head = torch.nn.Linear(width, 2)

    def forward(self, input_ids):
        return self.head(self.encoder(input_ids).mean(1))


@task("07.freeze_encoder")
def check_freeze(fn) -> int:
    task_id = "07.freeze_encoder"
    for layers in (2, 1):
        model = _Classifier(layers)
        encoder, head = model.encoder, model.head
        n_encoder = sum(p.numel() for p in encoder.parameters())
        case = tr("a {layers}-layer Transformer encoder + head", layers=layers)
        got = call(task_id, case, fn, model)
        if got is not model:
            fail(task_id, case, tr("the model you were given"), got,
                 tr("change the model in place and return the same object (no copy)"))
        if model.encoder is not encoder or model.head is not head or \
                sum(p.numel() for p in encoder.parameters()) != n_encoder:
            fail(task_id, case, tr("the same encoder and head"), tr("replaced or changed modules"),
                 tr("don't replace or delete modules: switch off requires_grad on the encoder's parameters"))
        trainable_encoder = [name for name, p in encoder.named_parameters() if p.requires_grad]
        frozen_head = [name for name, p in head.named_parameters() if not p.requires_grad]
        if trainable_encoder:
            hint = tr("loop over model.encoder.parameters() and call p.requires_grad_(False)")
            if getattr(encoder, "requires_grad", None) is False:
                hint = (tr("`model.encoder.requires_grad = False` only sets an attribute on the module: use "
                           "model.encoder.requires_grad_(False) or set it on every parameter"))
            fail(task_id, case, tr("no trainable encoder parameter"),
                 tr("{n_trainable_encoder} still trainable, e.g. {trainable_encoder}",
                    n_trainable_encoder=len(trainable_encoder), trainable_encoder=trainable_encoder[0]), hint)
        if frozen_head:
            fail(task_id, case, tr("a trainable head"), tr("frozen: {frozen_head}", frozen_head=frozen_head),
                 tr("freeze only the encoder: the head must still learn"))
    return 2


@task("07.warmup_linear")
def check_warmup_linear(fn) -> int:
    rng = fresh_rng()
    cases = 0
    for warmup, decay in ((rng.randint(2, 30), rng.randint(3, 40) * 4), (1, 8), (10, 90)):
        total = warmup + decay
        steps = [0, warmup - 1, warmup, warmup + decay // 4, warmup + decay // 2, total - 1, total,
                 total + rng.randint(1, 50)]
        for step in dict.fromkeys(steps):
            case = tr("step {step}, total {total}, warmup {warmup}", step=step, total=total, warmup=warmup)
            expected = (step + 1) / warmup if step < warmup else max(0.0, (total - step) / (total - warmup))
            got = call("07.warmup_linear", case, fn, step, total, warmup)
            if step < warmup:
                hint, wrongs = tr("warm-up: (step + 1) / warmup"), [(step / warmup, tr("warm-up: (step + 1) / warmup, so "
                                                                                   "that step 0 already trains"))]
            else:
                hint = tr("decay: (total - step) / (total - warmup), never below 0")
                wrongs = [((total - step) / (total - warmup), tr("never below 0: max(0.0, ...)")),
                          ((total - step) / total, tr("the decay runs over the steps after warm-up: divide by (total "
                                                      "- warmup)")),
                          ((total - step - 1) / (total - warmup), tr("off by one: the multiplier is 1 at step warmup"))]
            expect_number("07.warmup_linear", case, got, expected, hint,
                          [(w, text) for w, text in wrongs if abs(w - expected) > 1e-9], tol=1e-9)
            cases += 1
    return cases


@task("07.select_by_validation")
def check_selection(fn) -> int:
    rng = fresh_rng()
    cases = 0
    for n_runs in (rng.randint(3, 7), 3, 1):
        while True:
            scores = [(round(rng.uniform(0.6, 0.95), 3), round(rng.uniform(0.6, 0.95), 3)) for _ in range(n_runs)]
            vals, tests = zip(*scores, strict=True)
            distinct = len(set(vals + tests)) == 2 * n_runs
            chosen, by_test, worst = vals.index(max(vals)), tests.index(max(tests)), vals.index(min(vals))
            if distinct and (n_runs == 1 or len({chosen, by_test, worst}) == 3):
                break
        results = [{"lr": lr, "val_accuracy": v, "test_accuracy": t}
                   for lr, (v, t) in zip((1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2), scores, strict=False)]
        best = max(results, key=lambda run: run["val_accuracy"])
        case = tr("{n_runs} run{s}: ", n_runs=n_runs, s="s" if n_runs > 1 else "") + tr(", ").join(
            tr("val {val_accuracy} / test {test_accuracy}",
               val_accuracy=r['val_accuracy'], test_accuracy=r['test_accuracy']) for r in results)
        got = call("07.select_by_validation", case, fn, results)
        if isinstance(got, dict):
            fail("07.select_by_validation", case, best["test_accuracy"], got,
                 tr("return the chosen run's test_accuracy (a number), not the whole run"))
        wrongs = [(max(tests), tr("you chose by TEST accuracy: that overstates what the model will do on new data")),
                  (best["val_accuracy"], tr("report the chosen run's TEST accuracy, not its validation accuracy")),
                  (min(results, key=lambda run: run["val_accuracy"])["test_accuracy"],
                   tr("pick the run with the HIGHEST val_accuracy"))]
        expect_number("07.select_by_validation", case, got, best["test_accuracy"],
                      tr("pick the run with the highest val_accuracy and report ITS test_accuracy"),
                      [(w, text) for w, text in wrongs if abs(w - best["test_accuracy"]) > 1e-9], tol=1e-9)
        cases += 1
    return cases
