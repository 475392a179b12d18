"""The serving measurements: percentiles, cost per million, the cost table and its Pareto front."""

import doctest
import time

import numpy as np
import pytest
import torch

from attention_course.deploy import cost as serving
from attention_course.deploy.cost import (
    cheapest_meeting,
    cost_per_million,
    cost_table,
    latency_percentiles,
    pareto_front,
)


def test_docstring_examples():
    assert doctest.testmod(serving).failed == 0


def test_latency_percentiles_match_linear_interpolation():
    rng = np.random.default_rng(0)
    timings = rng.exponential(0.01, size=37)
    got = latency_percentiles(timings, (50, 95, 99))
    assert set(got) == {"p50", "p95", "p99"}
    for q in (50, 95, 99):
        ordered = np.sort(timings)
        rank = q / 100 * (len(ordered) - 1)
        low, high = int(np.floor(rank)), int(np.ceil(rank))
        expected = ordered[low] + (rank - low) * (ordered[high] - ordered[low])
        assert got[f"p{q}"] == pytest.approx(expected)
    assert got["p50"] == pytest.approx(float(np.median(timings)))
    assert got["p50"] <= got["p95"] <= got["p99"]


def test_latency_percentiles_reject_bad_input():
    with pytest.raises(ValueError):
        latency_percentiles([])
    with pytest.raises(ValueError):
        latency_percentiles([1.0, -1.0])
    with pytest.raises(ValueError):
        latency_percentiles([1.0], (101,))
    assert latency_percentiles([0.5]) == {"p50": 0.5, "p95": 0.5}


def test_cost_per_million():
    # 100 predictions/s for an hour = 360,000 predictions for $1.80 -> $5 per million
    assert cost_per_million(100.0, 1.80) == pytest.approx(5.0)
    # twice the throughput halves the cost; twice the price doubles it
    assert cost_per_million(200.0, 1.80) == pytest.approx(2.5)
    assert cost_per_million(100.0, 3.60) == pytest.approx(10.0)
    assert cost_per_million(50.0, 0.0) == 0.0
    for bad in ((0.0, 1.0), (-1.0, 1.0), (1.0, -0.5)):
        with pytest.raises(ValueError):
            cost_per_million(*bad)


MEASUREMENTS = [
    {"variant": "teacher fp32", "hardware": "cpu", "accuracy": 0.86, "throughput_per_s": 100.0, "p95_ms": 30.0},
    {"variant": "teacher int8", "hardware": "cpu", "accuracy": 0.855, "throughput_per_s": 250.0, "p95_ms": 15.0},
    {"variant": "student", "hardware": "cpu", "accuracy": 0.84, "throughput_per_s": 400.0, "p95_ms": 10.0},
    {"variant": "teacher bf16", "hardware": "gpu", "accuracy": 0.86, "throughput_per_s": 40000.0, "p95_ms": 4.0},
    {"variant": "bad", "hardware": "cpu", "accuracy": 0.80, "throughput_per_s": 90.0, "p95_ms": 40.0},
]


def test_cost_table_adds_prices_and_sorts_cheapest_first():
    table = cost_table(MEASUREMENTS, {"cpu": 0.36, "gpu": 3.6})
    assert list(table.columns[:2]) == ["variant", "hardware"]
    assert table["cost_per_million"].is_monotonic_increasing
    row = table.set_index("variant").loc["teacher fp32"]
    assert row["hourly_price"] == 0.36
    assert row["cost_per_million"] == pytest.approx(1.0)
    assert table.set_index("variant").loc["teacher bf16", "cost_per_million"] == pytest.approx(0.025)
    assert "p95_ms" in table.columns and "accuracy" in table.columns


def test_cost_table_errors():
    with pytest.raises(ValueError, match="no hourly price"):
        cost_table(MEASUREMENTS, {"cpu": 1.0})
    with pytest.raises(ValueError, match="lacks"):
        cost_table([{"variant": "x", "hardware": "cpu"}])
    assert set(cost_table(MEASUREMENTS)["hourly_price"]) == set(serving.DEFAULT_HOURLY_PRICES.values())


def test_pareto_front():
    table = cost_table(MEASUREMENTS, {"cpu": 0.36, "gpu": 3.6})
    front = dict(zip(table["variant"], pareto_front(table), strict=True))
    # GPU bf16 is the cheapest and among the most accurate: on the front; 'bad' and CPU fp32 are dominated
    assert front["teacher bf16"]
    assert not front["bad"] and not front["teacher fp32"]
    latency_front = dict(zip(table["variant"], pareto_front(table, minimize="p95_ms"), strict=True))
    assert latency_front["teacher bf16"] and not latency_front["bad"]
    # ties are not dominated
    assert pareto_front([{"accuracy": 1, "cost_per_million": 1}, {"accuracy": 1, "cost_per_million": 1}]) == [True, True]


def test_cheapest_meeting():
    table = cost_table(MEASUREMENTS, {"cpu": 0.36, "gpu": 3.6})
    assert cheapest_meeting(table, 0.85, 20.0)["variant"] == "teacher bf16"
    cpu_only = table[table["hardware"] == "cpu"]
    assert cheapest_meeting(cpu_only, 0.85, 20.0)["variant"] == "teacher int8"
    assert cheapest_meeting(cpu_only, 0.83, 20.0)["variant"] == "student"
    assert cheapest_meeting(cpu_only, 0.90, 100.0) is None
    assert cheapest_meeting(cpu_only, 0.80, 5.0) is None


def test_time_calls_and_throughput():
    samples = serving.time_calls(lambda: time.sleep(0.002), repeats=5, warmup=1)
    assert len(samples) == 5 and min(samples) >= 0.002
    rate = serving.throughput(lambda: time.sleep(0.002), batch_size=8, repeats=3, warmup=0)
    assert 0 < rate <= 8 / 0.002
    with pytest.raises(ValueError):
        serving.time_calls(lambda: None, repeats=0)


def test_peak_memory_sees_a_large_allocation():
    def allocate():
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB
        time.sleep(0.05)
        return block.sum()

    assert serving.peak_memory_mib(allocate) > 32
    assert serving.peak_memory_mib(lambda: None) < 16


def test_size_and_parameters(tmp_path):
    model = torch.nn.Linear(256, 256)
    assert serving.parameter_count(model) == 256 * 256 + 256
    size = serving.size_on_disk_mib(model)
    assert 0.2 < size < 0.3  # 65,792 floats of 4 bytes plus a little pickle
    (tmp_path / "a.bin").write_bytes(b"x" * 2**20)
    assert serving.size_on_disk_mib(tmp_path / "a.bin") == pytest.approx(1.0)
    assert serving.size_on_disk_mib(tmp_path) == pytest.approx(1.0)


def test_cpu_threads_restores_the_previous_count():
    before = torch.get_num_threads()
    with serving.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


class _LengthRecorder(torch.nn.Module):
    """A 2-class 'model' that records the input length of every call (to check what measure_variant warms up)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(1, 2)
        self.calls: list[int] = []

    def forward(self, input_ids, attention_mask):
        self.calls.append(input_ids.shape[1])
        return self.linear(attention_mask.float().sum(1, keepdim=True))


def test_measure_variant_runs_every_input_length_once_before_timing_it():
    rng = np.random.default_rng(1)
    lengths = rng.integers(3, 30, size=40)  # requests of many lengths, as they arrive
    mask = (torch.arange(32)[None] < torch.as_tensor(lengths)[:, None]).long()
    inputs = {"input_ids": torch.randint(1, 100, (40, 32)) * mask, "attention_mask": mask}
    model = _LengthRecorder()
    row = serving.measure_variant("recorder", model, inputs, torch.zeros(40, dtype=torch.long), "cpu", "cpu",
                                  requests=12, throughput_batch=8, throughput_batches=3)
    timed = model.calls[-(12 + 3 + 1):-1]  # the timed requests and batches (the last call measures peak memory)
    warmed = model.calls[: len(model.calls) - len(timed) - 1]
    assert set(timed) <= set(warmed), "a timed call met an input length for the first time"
    assert row["p95_ms"] >= row["p50_ms"] > 0 and row["throughput_per_s"] > 0
