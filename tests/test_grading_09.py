"""Lesson 09's checks accept right answers (written differently from the library's) and reject plausible
wrong ones with the diagnosis that fits."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_course.grading import check
from attention_course.grading._core import CheckFailed

# ---------------------------------------------------------------- right answers, written independently


def patchify_unfold(images, patch):
    x = images if images.dim() == 4 else images[:, None]
    return F.unfold(x, kernel_size=patch, stride=patch).transpose(1, 2)


def info_nce_loop(image_emb, text_emb, temperature):
    a = image_emb / image_emb.norm(dim=-1, keepdim=True)
    b = text_emb / text_emb.norm(dim=-1, keepdim=True)
    sims = a @ b.T / temperature
    i2t = -torch.log_softmax(sims, dim=1).diagonal().mean()
    t2i = -torch.log_softmax(sims, dim=0).diagonal().mean()
    return (i2t + t2i) / 2


def masks(tokens, pad_id, n_patches):
    b, t = tokens.shape
    self_mask = torch.zeros(b, t, t, dtype=torch.bool)
    for row in range(b):
        for q in range(t):
            for k in range(q + 1):
                self_mask[row, q, k] = bool(tokens[row, k] != pad_id)
    return self_mask, torch.ones(b, t, n_patches, dtype=torch.bool)


def seasonal_naive(history, horizon, season):
    last = np.asarray(history)[-season:]
    return np.array([last[h % season] for h in range(horizon)])


def mase(y_true, y_pred, y_train, season):
    y_train = np.asarray(y_train)
    return float(np.abs(np.asarray(y_true) - np.asarray(y_pred)).mean() / np.abs(y_train[season:] - y_train[:-season]).mean())


CORRECT = {"09.patchify": patchify_unfold, "09.info_nce": info_nce_loop, "09.decoder_masks": masks,
           "09.seasonal_naive": seasonal_naive, "09.mase": mase}


@pytest.mark.parametrize("task_id", sorted(CORRECT))
def test_right_answers_pass(task_id, capsys):
    for _ in range(3):  # fresh random cases each time
        check(task_id, CORRECT[task_id])
    assert "passed" in capsys.readouterr().out


# ---------------------------------------------------------------- plausible wrong answers


def _grid(images, patch):
    x = images if images.dim() == 4 else images[:, None]
    b, c, h, w = x.shape
    return x.reshape(b, c, h // patch, patch, w // patch, patch), b, (h // patch) * (w // patch)


def patchify_reshape(images, patch):
    x = images if images.dim() == 4 else images[:, None]
    b, c, h, w = x.shape
    return x.reshape(b, (h // patch) * (w // patch), c * patch * patch)


def patchify_columns_first(images, patch):
    grid, b, n = _grid(images, patch)
    return grid.permute(0, 4, 2, 1, 3, 5).reshape(b, n, -1)


def patchify_transposed_patch(images, patch):
    grid, b, n = _grid(images, patch)
    return grid.permute(0, 2, 4, 1, 5, 3).reshape(b, n, -1)


def patchify_channels_last(images, patch):
    grid, b, n = _grid(images, patch)
    return grid.permute(0, 2, 4, 3, 5, 1).reshape(b, n, -1)


def nce_unnormalised(a, b, t):
    logits = a @ b.T / t
    y = torch.arange(len(a))
    return (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)) / 2


def nce_times_temperature(a, b, t):
    return info_nce_loop(a, b, 1 / t)


def nce_one_direction(a, b, t):
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / t
    return F.cross_entropy(logits, torch.arange(len(a)))


def nce_summed(a, b, t):
    return 2 * info_nce_loop(a, b, t)


def masks_no_padding(tokens, pad_id, n):
    b, t = tokens.shape
    return torch.ones(t, t, dtype=torch.bool).tril().expand(b, t, t), torch.ones(b, t, n, dtype=torch.bool)


def masks_not_causal(tokens, pad_id, n):
    b, t = tokens.shape
    return (tokens != pad_id)[:, None, :].expand(b, t, t), torch.ones(b, t, n, dtype=torch.bool)


def masks_strict(tokens, pad_id, n):
    b, t = tokens.shape
    return torch.ones(t, t, dtype=torch.bool).tril(-1) & (tokens != pad_id)[:, None, :], torch.ones(b, t, n, dtype=torch.bool)


def masks_padding_on_queries(tokens, pad_id, n):
    b, t = tokens.shape
    return torch.ones(t, t, dtype=torch.bool).tril() & (tokens != pad_id)[:, :, None], torch.ones(b, t, n, dtype=torch.bool)


def masks_causal_cross(tokens, pad_id, n):
    self_mask, _ = masks(tokens, pad_id, n)
    b, t = tokens.shape
    return self_mask, torch.ones(t, n, dtype=torch.bool).tril().expand(b, t, n)


def masks_inverted(tokens, pad_id, n):
    self_mask, cross = masks(tokens, pad_id, n)
    return ~self_mask, cross


def naive_repeat_last(history, horizon, season):
    return np.full(horizon, np.asarray(history)[-1])


def naive_first_season(history, horizon, season):
    return np.resize(np.asarray(history)[:season], horizon)


def naive_no_wrap(history, horizon, season):  # right for horizon <= season only
    history = np.asarray(history)
    return np.array([history[len(history) - season + min(h, season - 1)] for h in range(horizon)])


def mase_lag_one(y_true, y_pred, y_train, season):
    return mase(y_true, y_pred, y_train, 1)


def mase_unscaled(y_true, y_pred, y_train, season):
    return float(np.abs(np.asarray(y_true) - np.asarray(y_pred)).mean())


def mase_rmse(y_true, y_pred, y_train, season):
    y_train = np.asarray(y_train)
    return float(np.sqrt(((np.asarray(y_true) - np.asarray(y_pred)) ** 2).mean())
                 / np.abs(y_train[season:] - y_train[:-season]).mean())


def mase_inverted(y_true, y_pred, y_train, season):
    return 1 / mase(y_true, y_pred, y_train, season)


WRONG = [
    ("09.patchify", patchify_reshape, "strips of consecutive pixels"),
    ("09.patchify", patchify_columns_first, "column by column"),
    ("09.patchify", patchify_transposed_patch, "transposed"),
    ("09.patchify", patchify_channels_last, "channel first"),
    ("09.info_nce", nce_unnormalised, "COSINE"),
    ("09.info_nce", nce_times_temperature, "don't multiply"),
    ("09.info_nce", nce_one_direction, "BOTH directions"),
    ("09.info_nce", nce_summed, "divide by 2"),
    ("09.decoder_masks", masks_no_padding, "padding KEYS"),
    ("09.decoder_masks", masks_not_causal, "later words"),
    ("09.decoder_masks", masks_strict, "keep the diagonal"),
    ("09.decoder_masks", masks_padding_on_queries, "not the queries"),
    ("09.decoder_masks", masks_causal_cross, "NOT causal"),
    ("09.decoder_masks", masks_inverted, "inverted"),
    ("09.seasonal_naive", naive_repeat_last, "naive forecast"),
    ("09.seasonal_naive", naive_first_season, "LAST season"),
    ("09.seasonal_naive", naive_no_wrap, "repeated"),
    ("09.mase", mase_lag_one, "one-step naive"),
    ("09.mase", mase_unscaled, "scale the MAE"),
    ("09.mase", mase_rmse, "ABSOLUTE"),
    ("09.mase", mase_inverted, "upside down"),
]


@pytest.mark.parametrize("task_id, answer, diagnosis", WRONG, ids=[f"{t}-{a.__name__}" for t, a, _ in WRONG])
def test_plausible_wrong_answers_fail_with_their_diagnosis(task_id, answer, diagnosis):
    for _ in range(3):
        with pytest.raises(CheckFailed) as failure:
            check(task_id, answer)
        assert diagnosis in str(failure.value), str(failure.value)


def test_checks_use_fresh_cases():
    """A function that returns one memorised answer fails, whatever it memorised."""
    seen = {}

    def memorise(images, patch):
        return seen.setdefault("answer", patchify_unfold(images, patch))

    with pytest.raises(CheckFailed):
        check("09.patchify", memorise)
