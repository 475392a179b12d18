"""Lesson 09's time series: the El Nino split, seasonal naive, MASE, windows, the forecaster and its attention."""

import numpy as np
import pytest
import torch

from attention_course.beyond import forecast as FC


def test_elnino_split_uses_training_years_only_for_its_statistics():
    split = FC.elnino_split(test_years=10)
    assert len(split.values) == 732 and split.test_start == 612 and split.first_year == 1950
    table = split.values.reshape(-1, 12)
    assert np.allclose(split.climatology, table[:51].mean(0))
    changed = FC.SeriesSplit(split.values.copy(), split.months, split.test_start, 1950, split.climatology, split.scale)
    changed.values[-5:] += 100  # test values never enter training statistics
    assert np.allclose(FC.elnino_split().climatology, split.climatology)


def test_seasonal_naive_repeats_the_last_season():
    history = np.arange(10.0)
    assert FC.seasonal_naive(history, 6, season=4).tolist() == [6, 7, 8, 9, 6, 7]
    with pytest.raises(ValueError):
        FC.seasonal_naive(np.arange(3.0), 2, season=4)


def test_persistence_repeats_the_last_value():
    assert FC.persistence(np.array([3.0, 1.0, 4.0]), 4).tolist() == [4.0, 4.0, 4.0, 4.0]
    assert FC.persistence([2.5], 1).tolist() == [2.5]
    with pytest.raises(ValueError, match="empty"):
        FC.persistence(np.array([]), 3)


def test_climatology_forecast_reads_the_calendar_month():
    climatology = np.arange(12.0) * 10
    assert FC.climatology_forecast(climatology, np.array([11, 0, 1])).tolist() == [110.0, 0.0, 10.0]
    with pytest.raises(ValueError, match="one mean per calendar month"):
        FC.climatology_forecast(np.arange(4.0), np.array([0]))


def test_anomaly_persistence_adds_the_last_departure_to_the_climatology():
    climatology = np.arange(12.0)
    # last value 9.5 in month 3 (climatology 3): anomaly +6.5, added to months 4, 5 and 0
    assert FC.anomaly_persistence(np.array([1.0, 9.5]), np.array([2, 3]), climatology, np.array([4, 5, 0])).tolist() == [
        10.5, 11.5, 6.5]
    with pytest.raises(ValueError, match="one calendar month per value"):
        FC.anomaly_persistence(np.array([1.0, 2.0]), np.array([0]), climatology, np.array([1]))


def test_baselines_on_the_series_follow_their_formulas():
    split = FC.elnino_split()
    origins = np.array([split.test_start, split.test_start + 7])
    forecasts = FC.baseline_forecasts(split, origins, 3)
    t = split.test_start + 7  # an August origin: the forecasts are for August, September, October
    assert forecasts["persistence"][1].tolist() == [split.values[t - 1]] * 3
    assert forecasts["seasonal naive"][1].tolist() == split.values[t - 12 : t - 9].tolist()
    assert forecasts["climatology"][1].tolist() == split.climatology[[7, 8, 9]].tolist()
    anomaly = split.values[t - 1] - split.climatology[6]  # July's departure, carried to August..October
    assert np.allclose(forecasts["anomaly persistence"][1], split.climatology[[7, 8, 9]] + anomaly)


def test_bootstrap_by_year_resamples_whole_years_and_pairs_the_difference():
    # a toy split: one origin per test month, perfect forecasts in year A and errors of 1 (scale 1) in year B
    values = np.tile(np.arange(12.0), 4)  # seasonal: y_t - y_{t-12} = 0 ... so make the scale 1 by hand below
    values[:24] += np.repeat([0.0, 1.0], 12)  # training years 0 and 1 differ by 1 every month: scale = 1
    months = np.tile(np.arange(12), 4)
    split = FC.SeriesSplit(values, months, 24, 2000, np.zeros(12), 1.0)
    origins = np.arange(24, 47)  # years 2 and 3 (23 origins: 12 in year 2, 11 in year 3)
    truth = np.stack([values[t : t + 1] for t in origins])
    wrong = truth + np.where(origins // 12 == 3, 1.0, 0.0)[:, None]
    bands = FC.bootstrap_by_year(split, origins, {"exact": truth, "off in year 3": wrong}, reference="exact",
                                 n_boot=400, seed=1)
    assert bands["exact"]["mase"] == (0.0, 0.0) and bands["exact"]["minus_reference"] == (0.0, 0.0)
    low, high = bands["off in year 3"]["mase"]
    assert low == 0.0 and high == 1.0  # draws of only year 2 give 0, of only year 3 give 1
    assert bands["off in year 3"]["minus_reference"] == (low, high)
    assert len(bands["exact"]["mase_by_horizon"]) == 1
    with pytest.raises(ValueError, match="at least 2"):
        FC.bootstrap_by_year(split, origins[:5], {"exact": truth[:5]})


def test_mase_is_one_for_the_in_sample_seasonal_naive_and_scales_by_training():
    y_train = np.array([1.0, 5, 2, 6, 3, 7, 4, 8])
    assert FC.mase(y_train[2:], y_train[:-2], y_train, season=2) == pytest.approx(1.0)
    assert FC.mase([3.0, 4.0], [3.0, 4.0], y_train, season=2) == 0.0
    assert FC.mase([3.0], [5.0], y_train, season=2) == pytest.approx(2.0)  # scale is mean |y_t - y_{t-2}| = 1


def test_windows_line_up_with_the_series():
    split = FC.elnino_split()
    windows = FC.make_windows(split, context=24, horizon=12, start=split.test_start, stop=len(split.values))
    assert windows["past"].shape == (109, 24) and windows["target"].shape == (109, 12)
    origin = int(windows["origin"][0])
    anomalies = split.anomalies()
    assert origin == split.test_start
    assert np.allclose(windows["target"][0].numpy(), anomalies[origin : origin + 12], atol=1e-6)
    assert np.allclose(windows["past"][0].numpy(), anomalies[origin - 24 : origin], atol=1e-6)
    assert windows["months"][0, 24].item() == 0  # the test years start in January


def test_forecaster_predicts_in_degrees_and_its_attention_covers_the_past():
    torch.manual_seed(0)
    split = FC.elnino_split()
    train = FC.make_windows(split, 12, 12, 0, split.test_start - 60)
    val = FC.make_windows(split, 12, 12, split.test_start - 60, split.test_start)
    test = FC.make_windows(split, 12, 12, split.test_start, len(split.values))
    model = FC.AttentionForecaster(12, 12, d_model=16, n_heads=2, n_layers=1)
    history = FC.train_forecaster(model, train, epochs=3, batch_size=64, progress=False, validation=(split, val))
    assert len(history["val_mase"]) == 3 and 1 <= history["best_epoch"] <= 3
    predictions = FC.predict(model, split, test)
    assert predictions.shape == (109, 12) and 15 < predictions.mean() < 30  # degrees C, not anomalies
    scores = FC.evaluate(split, test, predictions)
    assert set(scores) == {"attention forecaster", "seasonal naive", "persistence", "climatology", "anomaly persistence"}
    assert scores["seasonal naive"]["mase"] == pytest.approx(0.741, abs=0.01)
    weights = FC.attention_over_past(model, test["past"][:4], test["months"][:4])
    assert weights.shape == (1, 4, 2, 12, 12)
    assert all(block.attn.fused for block in model.blocks)


def test_missing_statsmodels_names_the_install_command(monkeypatch):
    import importlib.util

    from attention_course.core import data

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.MissingDataError, match="pip install statsmodels==0.15.0"):
        data.elnino_monthly()
