import pytest
import torch

from attention_course.core import device as D
from attention_course.core import profiles as P


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv(P.PROFILE_ENV, "cpu")
    assert P.pick_profile() == "cpu"
    monkeypatch.setenv(P.PROFILE_ENV, "huge")
    with pytest.raises(ValueError, match="expected one of smoke, cpu, gpu"):
        P.pick_profile()
    monkeypatch.delenv(P.PROFILE_ENV)
    assert P.pick_profile(torch.device("cuda")) == "gpu"
    assert P.pick_profile(torch.device("cpu")) == "cpu"


def test_pick_device_and_name(monkeypatch):
    monkeypatch.setenv("ATTENTION_COURSE_DEVICE", "cpu")
    assert D.pick_device().type == "cpu"
    assert D.device_name("cpu").startswith("CPU")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            D.pick_device("cuda")


def test_every_size_table_has_every_profile():
    tables = {name: table for name, table in vars(P).items()
              if name.isupper() and not name.startswith("_") and isinstance(table, dict)}
    tables.update({f"LESSONS[{number}]": table for number, table in P.LESSONS.items()})
    del tables["LESSONS"]
    assert {"GPT_MODEL", "GPT_TRAIN", "GPT_BENCH", "PARALLELISM", "TRANSFER", "DDP"} <= set(tables)
    for name, table in tables.items():
        assert set(table) == set(P.PROFILES), f"{name} must give sizes for exactly {P.PROFILES}"
    assert P.sizes(P.GPT_BENCH, "smoke").batch == P.GPT_BENCH["smoke"]["batch"]
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        P.sizes(P.GPT_BENCH, "huge")


def test_switches_restore_the_previous_state():
    before = torch.backends.cuda.matmul.allow_tf32
    with D.tf32(not before):
        assert torch.backends.cuda.matmul.allow_tf32 is (not before)
    assert torch.backends.cuda.matmul.allow_tf32 is before
    with pytest.raises(RuntimeError), D.tf32(not before):
        raise RuntimeError("a failing cell")
    assert torch.backends.cuda.matmul.allow_tf32 is before
    import torch._inductor.config as inductor_config

    tuning = inductor_config.coordinate_descent_tuning
    with D.compiler_tuning(not tuning):
        assert inductor_config.coordinate_descent_tuning is (not tuning)
    assert inductor_config.coordinate_descent_tuning is tuning


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
