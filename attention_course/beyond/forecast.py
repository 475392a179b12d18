"""A time series: attention over past months, against three simple baselines, scored by MASE.

The series is the monthly sea-surface temperature of the Nino 1+2 region (statsmodels' ``elnino``,
1950-2010). The forecaster reads ``context`` past months and predicts the next ``horizon`` months at once:
each past month is a token (its value and its calendar month); each future month is a token that knows
only its calendar month and how far ahead it lies. Transformer blocks mix them, and each future token's
final state gives its forecast, so the attention of future tokens over past ones shows which past months
a forecast reads.

Values are modelled as anomalies: minus the training years' mean for that calendar month (the
climatology), divided by the training anomalies' standard deviation. Nothing from the test years is used
to fit anything.

The baselines: **seasonal naive** (the same month one year earlier), **persistence** (the last observed value,
held flat), **climatology** (the training mean of each calendar month) and **anomaly persistence** (the last
month's departure from climatology, added to the climatology of every future month). Forecast windows overlap, so
neighbouring origins share most of their truth; ``bootstrap_by_year`` resamples whole years of forecast origins
(a block bootstrap) to give 95 % intervals for MASE and for the difference between two methods.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.attention import TransformerBlock
from ..core.data import elnino_monthly
from ..core.language import say
from ..core.training import autocast, make_optimizer, set_lr, update, warmup_cosine_lr

SEASON = 12


def seasonal_naive(history: np.ndarray, horizon: int, season: int = SEASON) -> np.ndarray:
    """Forecast each future step with the value one season earlier: y_hat[t + h] = y[t + h - season*k]."""
    history = np.asarray(history, dtype=float)
    if len(history) < season:
        raise ValueError(f"need at least one season ({season}) of history, got {len(history)}")
    return np.array([history[len(history) - season + h % season] for h in range(horizon)])


def persistence(history: np.ndarray, horizon: int) -> np.ndarray:
    """Forecast every future step with the last observed value: y_hat[t + h] = y[t]."""
    history = np.asarray(history, dtype=float)
    if len(history) == 0:
        raise ValueError("need at least one observed value to persist, got an empty history")
    return np.full(horizon, history[-1])


def climatology_forecast(climatology: np.ndarray, future_months: np.ndarray) -> np.ndarray:
    """Forecast each future month with its training-years mean: y_hat = climatology[calendar month]."""
    climatology, future_months = np.asarray(climatology, dtype=float), np.asarray(future_months)
    if climatology.shape != (SEASON,):
        raise ValueError(f"climatology must hold one mean per calendar month ({SEASON},), got {climatology.shape}")
    return climatology[future_months]


def anomaly_persistence(history: np.ndarray, history_months: np.ndarray, climatology: np.ndarray,
                        future_months: np.ndarray) -> np.ndarray:
    """The last month's anomaly held flat: y_hat[t + h] = climatology[m(t + h)] + (y[t] - climatology[m(t)])."""
    history, history_months = np.asarray(history, dtype=float), np.asarray(history_months)
    if len(history) == 0 or len(history) != len(history_months):
        raise ValueError(f"need a non-empty history with one calendar month per value, got {len(history)} values "
                         f"and {len(history_months)} months")
    last_anomaly = history[-1] - climatology_forecast(climatology, history_months[-1:])[0]
    return climatology_forecast(climatology, future_months) + last_anomaly


def mase(y_true, y_pred, y_train, season: int = SEASON) -> float:
    """Mean absolute scaled error (Hyndman & Koehler, 2006): the forecast's MAE divided by the MAE of the
    in-sample seasonal-naive forecast on the TRAINING series, mean |y_t - y_{t-season}|. Below 1: better than that."""
    y_true, y_pred, y_train = (np.asarray(a, dtype=float) for a in (y_true, y_pred, y_train))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    scale = np.mean(np.abs(y_train[season:] - y_train[:-season]))
    return float(np.mean(np.abs(y_true - y_pred)) / scale)


@dataclass
class SeriesSplit:
    """The series and where the test years start; the climatology and scale come from training only."""

    values: np.ndarray  # (months,)
    months: np.ndarray  # calendar month 0..11 of each value
    test_start: int  # index of the first held-out month
    first_year: int
    climatology: np.ndarray  # (12,) training mean per calendar month
    scale: float  # standard deviation of the training anomalies

    @property
    def train(self) -> np.ndarray:
        return self.values[: self.test_start]

    def anomalies(self) -> np.ndarray:
        return (self.values - self.climatology[self.months]) / self.scale


def elnino_split(test_years: int = 10) -> SeriesSplit:
    """Nino 1+2 monthly temperatures, the final ``test_years`` years held out."""
    years, table = elnino_monthly()
    values = table.reshape(-1)
    months = np.tile(np.arange(12), len(years))
    test_start = len(values) - 12 * test_years
    climatology = table[: len(years) - test_years].mean(0)
    anomalies = values[:test_start] - climatology[months[:test_start]]
    return SeriesSplit(values, months, test_start, int(years[0]), climatology, float(anomalies.std()))


def make_windows(split: SeriesSplit, context: int, horizon: int, start: int, stop: int) -> dict[str, Tensor]:
    """Forecast origins t in [start, stop - horizon]: past anomalies [t - context, t), targets [t, t + horizon)."""
    anomalies = split.anomalies()
    origins = np.arange(max(start, context), stop - horizon + 1)
    past = np.stack([anomalies[t - context : t] for t in origins])
    future = np.stack([anomalies[t : t + horizon] for t in origins])
    months = np.stack([split.months[t - context : t + horizon] for t in origins])
    as_tensor = lambda a, dtype=torch.float32: torch.tensor(a, dtype=dtype)
    return {"past": as_tensor(past), "months": as_tensor(months, torch.long), "target": as_tensor(future),
            "origin": as_tensor(origins, torch.long)}


class AttentionForecaster(nn.Module):
    """Past months (value + calendar month + position) and future months (calendar month + position) as tokens;
    Transformer blocks; a linear read-out of each future token gives its anomaly."""

    def __init__(self, context: int = 36, horizon: int = 12, d_model: int = 32, n_heads: int = 4, n_layers: int = 2,
                 dropout: float = 0.1):
        super().__init__()
        self.context, self.horizon = context, horizon
        self.value = nn.Linear(1, d_model)
        self.future = nn.Parameter(torch.zeros(1, 1, d_model))
        self.month = nn.Embedding(12, d_model)
        self.positions = nn.Parameter(torch.randn(1, context + horizon, d_model))
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads, dropout=dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, 1)

    def forward(self, past: Tensor, months: Tensor) -> Tensor:
        tokens = torch.cat([self.value(past[..., None]), self.future.expand(len(past), self.horizon, -1)], dim=1)
        x = tokens + self.month(months) + self.positions
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm(x[:, self.context :]))[..., 0]


def train_forecaster(model: AttentionForecaster, windows: dict[str, Tensor], epochs: int, batch_size: int = 64,
                     lr: float = 2e-3, weight_decay: float = 0.05, seed: int = 0, progress: bool = True,
                     validation: tuple[SeriesSplit, dict[str, Tensor]] | None = None) -> dict:
    """L1 loss (MASE is an absolute error) with AdamW and a warm-up/cosine schedule.

    With ``validation=(split, windows)`` the MASE on those windows is measured after every epoch and the
    model ends with the weights of its best epoch (selection on validation, never on test)."""
    device = next(model.parameters()).device
    data = {key: value.to(device) for key, value in windows.items()}
    optimizer = make_optimizer(model, lr, weight_decay, device)
    total = epochs * math.ceil(len(data["past"]) / batch_size)
    generator = torch.Generator().manual_seed(seed)
    losses, val_mase, best, step, start = [], [], None, 0, time.perf_counter()
    model.train()
    for _ in tqdm(range(epochs), desc=say("progress_forecaster"), disable=not progress):
        for index in torch.randperm(len(data["past"]), generator=generator).to(device).split(batch_size):
            set_lr(optimizer, warmup_cosine_lr(step, max(1, total // 20), total, lr, 0.0))
            with autocast(device, True):
                loss = F.l1_loss(model(data["past"][index], data["months"][index]).float(), data["target"][index])
            update(optimizer, loss)
            losses.append(loss.detach())
            step += 1
        if validation is not None:
            val_split, val_windows = validation
            val_mase.append(evaluate(val_split, val_windows, predict(model, val_split, val_windows))["attention forecaster"]["mase"])
            if val_mase[-1] == min(val_mase):
                best = {key: value.detach().clone() for key, value in model.state_dict().items()}
            model.train()
    if best is not None:
        model.load_state_dict(best)
    model.eval()
    return {"loss": torch.stack(losses).float().cpu().tolist(), "val_mase": val_mase,
            "best_epoch": int(np.argmin(val_mase)) + 1 if val_mase else epochs, "seconds": time.perf_counter() - start}


@torch.no_grad()
def predict(model: AttentionForecaster, split: SeriesSplit, windows: dict[str, Tensor]) -> np.ndarray:
    """Forecasts in degrees C, (origins, horizon)."""
    model.eval()
    device = next(model.parameters()).device
    anomalies = model(windows["past"].to(device), windows["months"].to(device)).float().cpu().numpy()
    future_months = windows["months"][:, model.context :].numpy()
    return anomalies * split.scale + split.climatology[future_months]


BASELINES = ("seasonal naive", "persistence", "climatology", "anomaly persistence")


def baseline_forecasts(split: SeriesSplit, origins: np.ndarray, horizon: int) -> dict[str, np.ndarray]:
    """Each simple baseline's forecasts (origins, horizon), in degrees, from the history before each origin."""
    return {
        "seasonal naive": np.stack([seasonal_naive(split.values[:t], horizon) for t in origins]),
        "persistence": np.stack([persistence(split.values[:t], horizon) for t in origins]),
        "climatology": np.stack([climatology_forecast(split.climatology, split.months[t : t + horizon]) for t in origins]),
        "anomaly persistence": np.stack([anomaly_persistence(split.values[:t], split.months[:t], split.climatology,
                                                             split.months[t : t + horizon]) for t in origins]),
    }


def evaluate(split: SeriesSplit, windows: dict[str, Tensor], forecasts: np.ndarray) -> dict[str, dict]:
    """MASE (training-scaled) of the model and of every baseline on the same test windows, overall and per
    horizon, and the model's MAE relative to seasonal naive's."""
    origins = windows["origin"].numpy()
    horizon = forecasts.shape[1]
    truth = np.stack([split.values[t : t + horizon] for t in origins])
    methods = {"attention forecaster": forecasts, **baseline_forecasts(split, origins, horizon)}
    results = {}
    for name, predicted in methods.items():
        per_horizon = [mase(truth[:, h], predicted[:, h], split.train) for h in range(horizon)]
        results[name] = {"mase": mase(truth, predicted, split.train), "mase_by_horizon": per_horizon,
                         "mae": float(np.abs(truth - predicted).mean())}
    results["attention forecaster"]["mae_vs_seasonal_naive"] = (
        results["attention forecaster"]["mae"] / results["seasonal naive"]["mae"])
    return results


def bootstrap_by_year(split: SeriesSplit, origins: np.ndarray, forecasts: dict[str, np.ndarray],
                      reference: str | None = None, n_boot: int = 2000, seed: int = 0) -> dict[str, dict]:
    """95 % block-bootstrap intervals: resample the calendar years of the forecast origins with replacement
    (every origin of a drawn year comes along), recompute MASE overall and per horizon.

    Returns, per method, ``mase`` and ``mase_by_horizon`` as (low, high), and with ``reference`` also
    ``minus_reference``: the interval of (method's MASE - reference's MASE), paired on the same draws."""
    origins = np.asarray(origins)
    horizon = next(iter(forecasts.values())).shape[1]
    truth = np.stack([split.values[t : t + horizon] for t in origins])
    scale = np.mean(np.abs(split.train[SEASON:] - split.train[:-SEASON]))
    errors = {name: np.abs(truth - predicted) / scale for name, predicted in forecasts.items()}
    years = origins // 12
    blocks = [np.flatnonzero(years == year) for year in np.unique(years)]
    if len(blocks) < 2:
        raise ValueError(f"the origins span {len(blocks)} year(s): a bootstrap by year needs at least 2")
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in forecasts}
    for _ in range(n_boot):
        rows = np.concatenate([blocks[i] for i in rng.integers(len(blocks), size=len(blocks))])
        for name, error in errors.items():
            draws[name].append(error[rows].mean(0))  # (horizon,) MASE per horizon on this draw
    interval = lambda values: tuple(float(v) for v in np.percentile(values, [2.5, 97.5], axis=0))
    out = {}
    for name, per_draw in draws.items():
        per_draw = np.array(per_draw)  # (n_boot, horizon); equal weight per horizon, so the mean is overall MASE
        out[name] = {"mase": interval(per_draw.mean(1)),
                     "mase_by_horizon": [interval(per_draw[:, h]) for h in range(horizon)]}
        if reference is not None:
            out[name]["minus_reference"] = interval(per_draw.mean(1) - np.array(draws[reference]).mean(1))
    return out


@torch.no_grad()
def attention_over_past(model: AttentionForecaster, past: Tensor, months: Tensor) -> Tensor:
    """(layers, B, heads, horizon, context): how each future token's attention spreads over the past months."""
    attns = [block.attn for block in model.blocks]
    model.eval()
    device = next(model.parameters()).device
    try:
        for attn in attns:
            attn.fused = False
        model(past.to(device), months.to(device))
        weights = torch.stack([attn.last_weights.float().cpu() for attn in attns])
    finally:
        for attn in attns:
            attn.fused = True
    return weights[..., model.context :, : model.context]
