"""A real demand series and every classical baseline, for lesson 11's forecasting part.

The series is Australian wine makers' monthly sales of wine in bottles of one litre or less, January 1980 to
August 1994 (176 months, thousands of litres; the Australian Bureau of Statistics series distributed as
``wineind`` in R's forecast package and shipped in the ``pmdarima`` wheel, MIT licence). It has what demand
planners know: a strong calendar pattern (a December peak, a January trough) on a slowly moving level.

The last ``TEST_MONTHS`` are held out; the ``VALIDATION_MONTHS`` before them pick the forecaster's epoch. The
lesson-09 machinery (``forecast.SeriesSplit``, windows, MASE, the block bootstrap) is reused as it is; this module
adds the loader and the classical model the issue asks for: Holt-Winters exponential smoothing from statsmodels,
refitted at every forecast origin on the history before it.
"""

from __future__ import annotations

import ast
import warnings

import numpy as np

from ..beyond.forecast import SEASON, SeriesSplit
from ..core.data import MissingDataError, package_folder

PMDARIMA_INSTALL = "pip install --no-deps --force-reinstall pmdarima==2.1.1"
FIRST_YEAR = 1980
TEST_MONTHS = 36
VALIDATION_MONTHS = 24
CLASSICAL = "exponential smoothing"


def wine_sales() -> np.ndarray:
    """The 176 monthly sales (Jan 1980 - Aug 1994), read from pmdarima's ``datasets/wineind.py`` without
    importing pmdarima (its compiled parts and dependencies are not needed for a list of numbers)."""
    path = package_folder("pmdarima", "pmdarima", PMDARIMA_INSTALL) / "datasets" / "wineind.py"
    if not path.is_file():
        raise MissingDataError(f"{path} is missing: reinstall with `{PMDARIMA_INSTALL}`")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "rslt":
            call = node.value.func.value if isinstance(node.value.func, ast.Attribute) else node.value
            values = np.array(ast.literal_eval(call.args[0]), dtype=float)
            if values.shape == (176,) and np.all(values > 0):
                return values
    raise MissingDataError(f"{path} does not hold the 176 monthly values expected; reinstall with `{PMDARIMA_INSTALL}`")


def wine_split(test_months: int = TEST_MONTHS) -> SeriesSplit:
    """The series as lesson 09's ``SeriesSplit``: climatology (mean per calendar month) and scale from the training
    months only (everything before the last ``test_months``)."""
    values = wine_sales()
    months = np.arange(len(values)) % 12  # the series starts in January
    test_start = len(values) - test_months
    climatology = np.array([values[:test_start][months[:test_start] == m].mean() for m in range(12)])
    anomalies = values[:test_start] - climatology[months[:test_start]]
    return SeriesSplit(values, months, test_start, FIRST_YEAR, climatology, float(anomalies.std()))


def exponential_smoothing(history: np.ndarray, horizon: int, season: int = SEASON) -> np.ndarray:
    """Holt-Winters (statsmodels' ``ExponentialSmoothing``): damped additive trend, multiplicative season,
    parameters fitted by maximum likelihood on ``history``; the next ``horizon`` values."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    history = np.asarray(history, dtype=float)
    if len(history) < 2 * season:
        raise ValueError(f"exponential smoothing needs two seasons ({2 * season}) of history, got {len(history)}")
    with warnings.catch_warnings():  # convergence notes on short histories: the fit is still the best found
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(history, trend="add", damped_trend=True, seasonal="mul",
                                     seasonal_periods=season, initialization_method="estimated")
        return np.asarray(model.fit().forecast(horizon), dtype=float)


def classical_forecasts(split: SeriesSplit, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Exponential smoothing refitted at every origin on the values before it: (origins, horizon)."""
    return np.stack([exponential_smoothing(split.values[:t], horizon) for t in origins])


def windows_for(split: SeriesSplit, context: int, horizon: int,
                validation_months: int = VALIDATION_MONTHS) -> dict[str, dict]:
    """Training, validation and test windows (lesson 09's ``make_windows``): forecast origins in each part, the
    validation part being the ``validation_months`` before the test months."""
    from ..beyond.forecast import make_windows

    validation_start = split.test_start - validation_months
    parts = {"train": (0, validation_start), "validation": (validation_start, split.test_start),
             "test": (split.test_start, len(split.values))}
    return {name: make_windows(split, context, horizon, start, stop) for name, (start, stop) in parts.items()}


def by_horizon_table(scores: dict[str, dict], bands: dict[str, dict], horizons=(1, 3, 6, 12)) -> list[dict]:
    """Rows (one per method) of MASE at each of ``horizons`` (1-based) and overall, with 95 % intervals."""
    rows = []
    for name, score in scores.items():
        row = {"method": name, "mase": score["mase"], "interval": bands[name]["mase"]}
        for h in horizons:
            row[f"h{h}"] = score["mase_by_horizon"][h - 1]
            row[f"h{h}_interval"] = bands[name]["mase_by_horizon"][h - 1]
        rows.append(row)
    return sorted(rows, key=lambda r: r["mase"])
