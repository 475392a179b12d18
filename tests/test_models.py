import pytest
import torch

from attention_course.core import data, models
from attention_course.core.training import accuracy


def test_transformer_classifier_solves_long_range_recall():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x, y = data.make_recall_task(2048, 40, vocab_size=4, generator=g)
    model = models.TransformerClassifier(4, 32, 2, 1, 4, max_len=64)
    losses = models.fit_classifier(model, x, y, steps=150, lr=3e-3, generator=g, progress=False)
    assert losses[-1] < losses[0]
    x_test, y_test = data.make_recall_task(512, 40, vocab_size=4, generator=g)
    assert accuracy(model, x_test, y_test) > 0.9


def test_recurrent_classifier_shapes_and_cells():
    for cell in ("rnn", "gru", "lstm"):
        model = models.RecurrentClassifier(5, 8, 3, cell=cell)
        assert model(torch.randint(5, (4, 9))).shape == (4, 3)
    with pytest.raises(ValueError, match="cell must be one of"):
        models.RecurrentClassifier(5, 8, 3, cell="transformer")


def test_padding_is_ignored_by_the_transformer_classifier():
    torch.manual_seed(0)
    model = models.TransformerClassifier(6, 16, 2, 1, 2, pad_id=0).eval()
    tokens = torch.tensor([[3, 4, 5, 0, 0]])
    torch.testing.assert_close(model(tokens), model(tokens[:, :3]), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="exceeds max_len"):
        model(torch.ones(1, 600, dtype=torch.long))


def test_causal_transformer_classifier_reads_the_last_real_position():
    torch.manual_seed(0)
    model = models.TransformerClassifier(6, 16, 2, 1, 3, causal=True).eval()
    tokens = torch.randint(1, 6, (2, 7))
    changed = tokens.clone()
    changed[:, 2:6] = (changed[:, 2:6] % 5) + 1  # earlier tokens change: the last position sees them
    assert not torch.allclose(model(tokens), model(changed))
    # the answer depends only on positions up to the last one: a longer sequence changes it, a prefix is its own answer
    prefix = model(tokens[:, :4])
    assert not torch.allclose(prefix, model(tokens))
    padded = models.TransformerClassifier(6, 16, 2, 1, 3, causal=True, pad_id=0).eval()
    padded.load_state_dict(model.state_dict())
    with_pad = torch.cat([tokens[:, :4], torch.zeros(2, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(padded(with_pad), padded(tokens[:, :4]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded(tokens[:, :4]), prefix, atol=1e-5, rtol=1e-5)


def test_fit_classifier_returns_one_loss_per_step():
    model = models.RecurrentClassifier(4, 8, 4)
    x, y = data.make_recall_task(64, 5, vocab_size=4, generator=torch.Generator().manual_seed(0))
    losses = models.fit_classifier(model, x, y, steps=7, batch_size=8, progress=False)
    assert len(losses) == 7 and all(isinstance(v, float) for v in losses)
