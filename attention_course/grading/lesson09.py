"""Checks for lesson 09: patches in the right order, InfoNCE with a temperature, the decoder's two masks,
seasonal naive and MASE.

Every check draws fresh random cases (a hard-coded answer fails) and names the plausible mistake it sees.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..beyond.forecast import mase, seasonal_naive
from ..beyond.multimodal import decoder_masks, info_nce
from ..beyond.vision import patchify
from ._core import call, expect_number, expect_tensor, expect_tuple, fresh_generator, fresh_rng, task
from ._messages import tr

# ---------------------------------------------------------------- 09.patchify


def _patchify_mistakes(images: torch.Tensor, patch: int) -> list[tuple[torch.Tensor, str]]:
    x = images if images.dim() == 4 else images[:, None]
    b, c, h, w = x.shape
    gh, gw = h // patch, w // patch
    grid = x.reshape(b, c, gh, patch, gw, patch)
    return [
        (x.reshape(b, gh * gw, c * patch * patch), tr("a plain reshape cuts the image into strips of consecutive "
                                                      "pixels, not squares: split rows and columns into (grid, "
                                                      "patch) first, then permute so that the two grid axes come "
                                                      "before the patch axes")),
        (grid.permute(0, 4, 2, 1, 3, 5).reshape(b, gh * gw, -1), tr("the patches go column by column; order them row "
                                                                    "by row over the grid (left to right, then top "
                                                                    "to bottom)")),
        (grid.permute(0, 2, 4, 1, 5, 3).reshape(b, gh * gw, -1), tr("inside each patch, flatten row by row (a "
                                                                    "patch's rows first, then its columns): the "
                                                                    "patch came out transposed")),
        (grid.permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, -1), tr("flatten each patch channel first: (channel, "
                                                                    "row, column), as images[b, :, rows, "
                                                                    "cols].flatten() does")),
    ]


@task("09.patchify")
def check_patchify(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = []
    for _ in range(2):  # non-square grids catch rows and columns swapped
        patch, rows = rng.choice([2, 3, 4]), rng.randint(2, 4)
        cols = rng.choice([c for c in range(2, 6) if c != rows])
        cases.append((torch.rand(rng.randint(1, 3), patch * rows, patch * cols, generator=g), patch))
    patch = rng.choice([2, 4])
    cases.append((torch.rand(2, 3, patch * 2, patch * 3, generator=g), patch))  # colour images (B, C, H, W)
    cases.append((torch.arange(16.0).reshape(1, 4, 4), 2))  # one 4x4 image, patches of 2: easy to follow by hand
    for images, patch in cases:
        case = tr("images {shape}, patch {patch}", shape=tuple(images.shape), patch=patch)
        got = call("09.patchify", case, fn, images, patch)
        expect_tensor("09.patchify", case, got, patchify(images, patch),
                      tr("(B, H, W) or (B, C, H, W) -> (B, patches, C*p*p): patches row by row over the grid, each "
                         "flattened (channel, row, column)"), _patchify_mistakes(images, patch), atol=0, rtol=0)
    return len(cases)


# ---------------------------------------------------------------- 09.info_nce


def _one_way(image_emb, text_emb, temperature, transpose=False):
    logits = F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T / temperature
    logits = logits.T if transpose else logits
    return F.cross_entropy(logits, torch.arange(len(logits))).item()


@task("09.info_nce")
def check_info_nce(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = [(rng.randint(3, 9), rng.randint(4, 16), rng.choice([0.05, 0.1, 0.5])) for _ in range(3)]
    cases.append((2, 3, 1.0))  # temperature 1: only the normalisation matters
    for batch, dim, temperature in cases:
        image_emb = torch.randn(batch, dim, generator=g) * rng.uniform(0.5, 3)
        noise = 0.8
        while True:  # pairs resemble each other, but not so closely that the loss vanishes below the tolerance,
            text_emb = image_emb + torch.randn(batch, dim, generator=g) * noise  # where mistakes look alike
            if min(_one_way(image_emb, text_emb, temperature, transpose) for transpose in (False, True)) > 0.01:
                break
            noise *= 1.5
        case = tr("batch {batch}, dim {dim}, temperature {temperature}", batch=batch, dim=dim, temperature=temperature)
        got = call("09.info_nce", case, fn, image_emb, text_emb, temperature)
        raw = image_emb @ text_emb.T
        targets = torch.arange(batch)
        diagnoses = [
            ((F.cross_entropy(raw / temperature, targets) + F.cross_entropy(raw.T / temperature, targets)).item() / 2,
             tr("normalise both embeddings to unit length first: InfoNCE compares COSINE similarities")),
            (info_nce(image_emb, text_emb, 1 / temperature).item(), tr("divide the similarities by the temperature, "
                                                                       "don't multiply (a small temperature makes "
                                                                       "the softmax sharper)")),
            (info_nce(image_emb, text_emb, 1.0).item(), tr("divide the cosine similarities by the temperature")),
            (_one_way(image_emb, text_emb, temperature), tr("average BOTH directions: image->text (rows) and "
                                                            "text->image (columns, i.e. the transposed logits)")),
            (_one_way(image_emb, text_emb, temperature, transpose=True), tr("average BOTH directions: image->text "
                                                                            "and text->image")),
            (2 * info_nce(image_emb, text_emb, temperature).item(), tr("average the two directions (divide by 2), "
                                                                       "don't add them")),
        ]
        if temperature == 1.0:
            diagnoses = diagnoses[:1] + diagnoses[3:]
        expect_number("09.info_nce", case, got, info_nce(image_emb, text_emb, temperature).item(),
                      tr("cosine similarities (normalise rows) / temperature; cross-entropy with target i for row i, "
                         "in both directions, averaged"), diagnoses, tol=1e-4)
    return len(cases)


# ---------------------------------------------------------------- 09.decoder_masks


def _tokens(g, rng, batch: int, length: int, pad_id: int) -> torch.Tensor:
    tokens = torch.randint(pad_id + 1, pad_id + 20, (batch, length), generator=g)
    for row in range(batch):
        real = rng.randint(1, length)  # right padding: the first `real` tokens are words
        tokens[row, real:] = pad_id
    tokens[0, :] = tokens[0, :].clamp(min=pad_id + 1)  # one sequence without padding
    tokens[-1, rng.randint(1, length - 1):] = pad_id  # and one with: a case with no padding cannot tell pad ids apart
    return tokens


@task("09.decoder_masks")
def check_decoder_masks(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    # both pad ids every time: an answer that hard-codes either one fails on every run, whatever the seed
    cases = [(rng.randint(2, 4), rng.randint(3, 7), rng.randint(2, 9), pad_id) for pad_id in (0, 1, rng.choice([0, 1]))]
    for batch, length, n_patches, pad_id in cases:
        tokens = _tokens(g, rng, batch, length, pad_id)
        case = tr("tokens {shape} (pad id {pad_id}), {n_patches} patches",
                  shape=tuple(tokens.shape), pad_id=pad_id, n_patches=n_patches)
        got = expect_tuple("09.decoder_masks", case, call("09.decoder_masks", case, fn, tokens, pad_id, n_patches),
                           ("self_mask", "cross_mask"))
        self_mask, cross_mask = decoder_masks(tokens, pad_id, n_patches)
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        real = tokens != pad_id
        expect_tensor("09.decoder_masks", case + ": self_mask", got[0], self_mask,
                      tr("self_mask[b, t, s] is True when s <= t (causal) and token s of sequence b is not padding"),
                      [(causal.expand(batch, -1, -1), tr("also hide the padding KEYS: AND the causal mask with "
                                                         "(tokens != pad_id)[:, None, :]")),
                       (real[:, None, :].expand(-1, length, -1), tr("the decoder must not see later words: AND with "
                                                                    "a causal (lower-triangular) mask")),
                       (causal & real[:, :, None], tr("mask padding among the KEYS (last axis), not the queries")),
                       (torch.ones(length, length, dtype=torch.bool).tril(-1) & real[:, None, :],
                        tr("a position may attend to itself: keep the diagonal (tril, not tril(-1))")),
                       (torch.ones(length, length, dtype=torch.bool).triu() & real[:, None, :],
                        tr("upper triangle: that lets each word see the FUTURE; use the lower triangle (tril)")),
                       (~self_mask, tr("True means 'may attend': the mask came out inverted"))])
        expect_tensor("09.decoder_masks", case + ": cross_mask", got[1], decoder_masks(tokens, pad_id, n_patches)[1],
                      tr("cross_mask (B, T, n_patches) is all True: every word may look at every patch"),
                      [(torch.ones(length, n_patches, dtype=torch.bool).tril().expand(batch, -1, -1),
                        tr("the image is known whole from the start: cross-attention is NOT causal")),
                       (real[:, :, None].expand(-1, -1, n_patches), tr("the keys of cross-attention are image "
                                                                       "patches, which are never padding: every "
                                                                       "entry is True"))])
    return len(cases)


# ---------------------------------------------------------------- 09.seasonal_naive and 09.mase


@task("09.seasonal_naive")
def check_seasonal_naive(fn) -> int:
    rng = fresh_rng()
    cases = [(rng.randint(3, 7), rng.randint(1, 3), rng.randint(2, 3)) for _ in range(2)] + [(4, 2, 1), (12, 3, 1)]
    for season, seasons_of_history, horizon_seasons in cases:
        history = np.round(np.array([rng.uniform(0, 10) for _ in range(season * seasons_of_history + rng.randint(0, 2))]), 2)
        horizon = season * horizon_seasons + rng.randint(0, season - 1)
        case = tr("history of {n_history}, season {season}, horizon {horizon}",
                  n_history=len(history), season=season, horizon=horizon)
        got = call("09.seasonal_naive", case, fn, history, horizon, season)
        expected = seasonal_naive(history, horizon, season)
        got_tensor = torch.as_tensor(np.asarray(got, dtype=float)) if isinstance(got, (np.ndarray, list)) else got
        mistakes = [(torch.full((horizon,), history[-1]), tr("that is the naive forecast (repeat the last value); "
                                                             "seasonal naive repeats the value one SEASON earlier")),
                    (torch.as_tensor(np.resize(history[:season], horizon)),
                     tr("take the LAST season of the history, not the first"))]
        expect_tensor("09.seasonal_naive", case, got_tensor, torch.as_tensor(expected),
                      tr("y_hat[h] = history[len(history) - season + (h % season)]: the last season, repeated"),
                      [(w.double(), hint) for w, hint in mistakes], atol=1e-9)
    return len(cases)


@task("09.mase")
def check_mase(fn) -> int:
    rng = fresh_rng()
    cases = [(rng.choice([4, 7, 12]), rng.randint(3, 6), rng.randint(5, 20)) for _ in range(3)]
    for season, train_seasons, test_length in cases:
        t = np.arange(season * train_seasons + test_length)
        series = 10 + 3 * np.sin(2 * np.pi * t / season) + 0.05 * t + np.array([rng.gauss(0, 1) for _ in t])
        y_train, y_true = series[: season * train_seasons], series[season * train_seasons :]
        y_pred = y_true + np.array([rng.gauss(0, 1.5) for _ in y_true])
        case = tr("season {season}, {n_y_train} training values, {n_y_true} forecasts",
                  season=season, n_y_train=len(y_train), n_y_true=len(y_true))
        got = call("09.mase", case, fn, y_true, y_pred, y_train, season)
        mae = np.mean(np.abs(y_true - y_pred))
        diagnoses = [(mae / np.mean(np.abs(np.diff(y_train))), tr("scale by the SEASONAL naive error, mean |y[t] - "
                                                                  "y[t - season]|, not by the one-step naive error "
                                                                  "|y[t] - y[t - 1]|")),
                     (mae, tr("scale the MAE: divide by the in-sample seasonal-naive MAE of the training series")),
                     (mae / np.mean(np.abs(y_true[season:] - y_true[:-season])) if len(y_true) > season else -1.0,
                      tr("compute the scale on the TRAINING series, not on the test values")),
                     (np.sqrt(np.mean((y_true - y_pred) ** 2)) / np.mean(np.abs(y_train[season:] - y_train[:-season])),
                      tr("MASE uses the mean ABSOLUTE error, not the root mean squared error")),
                     (np.mean(np.abs(y_train[season:] - y_train[:-season])) / mae, tr("upside down: the forecast's "
                                                                                      "MAE goes on top, the "
                                                                                      "seasonal-naive MAE below"))]
        expect_number("09.mase", case, got, mase(y_true, y_pred, y_train, season),
                      tr("MASE = mean |y_true - y_pred| / mean |y_train[t] - y_train[t - season]|"), diagnoses, tol=1e-6)
    return len(cases)
