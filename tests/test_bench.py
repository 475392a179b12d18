import json

import pytest
import torch

from attention_course import bench
from attention_course.cli import main


def test_parallelism_bench_reports_every_method_and_length():
    result = bench.bench_parallelism("smoke")
    assert {row["method"] for row in result["sweep"]} == set(bench.SEQUENCE_MODELS)
    assert all(row["ms"] > 0 for row in result["sweep"])
    assert result["precision"][0]["setting"] == "fp32" and result["profile"] == "smoke"
    assert "LSTM" in bench.format_result(result)


def test_gpt_bench_on_cpu_reports_throughput_and_no_mfu():
    result = bench.bench_gpt("smoke", compile_model=False, repeats=2, micro_batches=2)
    assert result["tokens_per_s"] > 0 and result["mfu"] is None and result["micro_batches"] == 2
    assert result["device_name"].startswith("CPU")


def test_peak_lookup():
    assert bench.peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert bench.peak_bf16_flops("NVIDIA H200") == 989e12
    assert bench.peak_bf16_flops("Some CPU") is None


def test_cli_prints_json(capsys):
    assert main(["bench", "gpt", "--profile", "smoke", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["profile"] == "smoke" and result["torch"]



@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the bench uses NCCL over the GPUs")
def test_ddp_bench_on_cpu_runs_one_and_two_gloo_processes():
    result = bench.bench_ddp("smoke", max_steps=5)
    assert result["backend"] == "gloo" and [run["world_size"] for run in result["runs"]] == [1, 2]
    assert result["runs"][0]["scaling_efficiency"] == 1.0 and result["runs"][1]["tokens_per_s"] > 0
