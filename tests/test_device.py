import pytest
import torch

from attention_course import device as D


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv(D.PROFILE_ENV, "cpu")
    assert D.pick_profile() == "cpu"
    monkeypatch.setenv(D.PROFILE_ENV, "huge")
    with pytest.raises(ValueError, match="expected one of smoke, cpu, gpu"):
        D.pick_profile()
    monkeypatch.delenv(D.PROFILE_ENV)
    assert D.pick_profile(torch.device("cuda")) == "gpu"
    assert D.pick_profile(torch.device("cpu")) == "cpu"


def test_pick_device_and_name(monkeypatch):
    monkeypatch.setenv("ATTENTION_COURSE_DEVICE", "cpu")
    assert D.pick_device().type == "cpu"
    assert D.device_name("cpu").startswith("CPU")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            D.pick_device("cuda")


def test_sized():
    assert D.sized("smoke", smoke=1, cpu=2, gpu=3) == 1
    with pytest.raises(ValueError, match="no value given"):
        D.sized("gpu", smoke=1)


def test_seed_everything_repeats():
    D.seed_everything(3)
    a = torch.rand(3)
    D.seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_time_fn_reports_median_of_repeats():
    calls = []
    timing = D.time_fn(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7 and timing.repeats == 5
    assert timing.minimum <= timing.median <= timing.maximum
    with pytest.raises(ValueError):
        D.time_fn(lambda: None, repeats=0)
