import numpy as np
import pytest
import torch

from attention_course.core.data import rotten_tomatoes
from attention_course.core.training import mean_pool, warmup_linear
from attention_course.inside import explain, transfer


def test_mean_pool_ignores_padding():
    hidden = torch.arange(12.0).view(1, 3, 4)
    pooled = mean_pool(hidden, torch.tensor([[1, 1, 0]]))
    torch.testing.assert_close(pooled, hidden[0, :2].mean(0, keepdim=True))


def test_warmup_linear():
    assert warmup_linear(0, 100, 10) == pytest.approx(0.1)
    assert warmup_linear(55, 100, 10) == pytest.approx(0.5)
    assert warmup_linear(200, 100, 10) == 0.0


@pytest.fixture(scope="module")
def setup():
    return transfer.prepare(torch.device("cpu"), test_limit=60, train_limit=120)


def test_every_method_runs_and_selection_uses_validation(setup):
    fit = transfer.FitConfig(epochs=1, min_steps=3, max_steps=3, batch_size=16)
    records = transfer.data_efficiency_curve(setup, [40], [0], transfer.METHODS, fit, progress=False)
    assert [r["method"] for r in records] == list(transfer.METHODS)
    for record in records:
        assert 0.0 <= record["test_accuracy"] <= 1.0 and 0.0 <= record["val_accuracy"] <= 1.0
        assert record["n_labels"] == 40
    summary = transfer.summarise(records)
    assert {row["method"] for row in summary} == set(transfer.METHODS) and all(row["runs"] == 1 for row in summary)
    with pytest.raises(ValueError, match="method must be one of"):
        transfer.run_method(setup, "svm", np.arange(10), 0, fit)


def test_fine_tuning_restarts_from_the_pretrained_weights(setup):
    before = {k: v.clone() for k, v in setup.encoder.state_dict().items()}
    fit = transfer.FitConfig(epochs=1, min_steps=2, max_steps=2, batch_size=8, lr=1e-3)
    transfer.run_method(setup, "finetune", np.arange(16), 0, fit)
    changed = any(not torch.equal(before[k], v) for k, v in setup.encoder.state_dict().items())
    setup.encoder.load_state_dict(setup.pretrained_state)
    assert changed  # fine-tuning trains the encoder; run_method reloads the pretrained weights each time


def test_explanation_scores_cover_every_token(setup):
    train = rotten_tomatoes("train").subset(80, seed=0)
    probe = explain.SentimentProbe(setup.encoder, setup.tokenizer, train.texts, train.labels)
    scores = explain.token_importances(probe, "A dull, tedious film.")
    n = len(scores["tokens"])
    assert n == len(setup.tokenizer.tokenize("A dull, tedious film."))
    assert all(len(scores[m]) == n for m in ("erasure", "attention", "rollout", "gradient x input"))
    agreement = explain.agreement_with_erasure(probe, ["A dull, tedious film.", "Great acting and a clever plot."])
    assert set(agreement) == {"attention", "rollout", "gradient x input", "random"}
    assert all(-1.0 <= value <= 1.0 for values in agreement.values() for value in values)


def test_choosing_on_test_overstates_and_choosing_on_validation_does_not():
    from types import SimpleNamespace

    import numpy as np

    from attention_course.core.data import LabelledTexts
    from attention_course.inside.transfer import selection_on_test

    rng = np.random.default_rng(0)
    splits, features = {}, {}
    for name, n in (("train", 400), ("validation", 300), ("test", 300)):
        labels = rng.integers(0, 2, n)
        features[name] = rng.normal(size=(n, 16)) + 0.3 * labels[:, None]  # a weak signal
        splits[name] = LabelledTexts([str(i) for i in range(n)], labels.tolist())
    result = selection_on_test(SimpleNamespace(splits=splits, features=features), n_labels=50, repeats=100)
    on_test, on_val = result["chosen_on_test"], result["chosen_on_validation"]
    assert result["candidates"] == 40 and result["half_size"] == 150
    assert on_test["reported"] - on_test["new_data"] > 0.02
    assert abs(on_val["reported"] - on_val["new_data"]) < 0.02
