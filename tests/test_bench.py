import json
import random
import statistics
from pathlib import Path

import pytest
import torch

from attention_course.core import benchmarks
from attention_course.parallel import gpt_step, idle, scaling, sweeps
from attention_course.tools.cli import main


def test_parallelism_bench_reports_every_method_and_length():
    result = sweeps.bench_parallelism("smoke")
    assert {row["method"] for row in result["sweep"]} == set(sweeps.SEQUENCE_MODELS)
    assert all(row["ms"] > 0 for row in result["sweep"])
    assert result["precision"][0]["setting"] == "fp32" and result["profile"] == "smoke"
    assert "LSTM" in benchmarks.format_result(result)


def test_gpt_bench_on_cpu_reports_throughput_and_no_mfu():
    result = gpt_step.bench_gpt("smoke", compile_model=False, repeats=2, micro_batches=2)
    assert result["tokens_per_s"] > 0 and result["mfu"] is None and result["micro_batches"] == 2
    assert result["device_name"].startswith("CPU")


def test_gpt_bench_options_change_the_model_and_the_attention_kernel():
    plain = gpt_step.bench_gpt("smoke", compile_model=False, repeats=1)
    with_bias = gpt_step.bench_gpt("smoke", compile_model=False, repeats=1, bias=True, attention_backend="math")
    assert not plain["config"]["bias"] and with_bias["config"]["bias"]
    assert with_bias["params"] > plain["params"] and with_bias["attention_backend"] == "math"
    assert "no biases" in benchmarks.format_result(plain) and "with biases" in benchmarks.format_result(with_bias)
    with pytest.raises(ValueError, match="attention_backend must be one of"):
        gpt_step.bench_gpt("smoke", compile_model=False, repeats=1, attention_backend="fast")


def test_kernel_categories():
    assert gpt_step.kernel_category("void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm>") == "matrix products"
    assert gpt_step.kernel_category("nvjet_sm90_tst_128x128_64x6_2x2_h_bz_splitK_NTT") == "matrix products"
    assert gpt_step.kernel_category("void cudnn::fusion::compute_dot_do_o_specialized<true, 64>") == "attention"
    assert gpt_step.kernel_category("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits>") == "attention"
    assert gpt_step.kernel_category("void at::native::(anonymous namespace)::fused_adamw_kernel") == "optimizer (AdamW)"
    assert gpt_step.kernel_category("triton_per_fused__to_copy_add_native_layer_norm_backward_view_5") == gpt_step.OTHER_KERNELS
    assert gpt_step.kernel_category("triton_red_fused__log_softmax__to_copy__unsafe_view_15") == "cross-entropy loss"
    assert gpt_step.kernel_category("void at::native::vectorized_elementwise_kernel<8, at::native::FillFunctor<c10::BFloat16>") \
        == "copies and fills"
    assert gpt_step.kernel_category("aten::addmm") == "matrix products"


def test_time_breakdown_accounts_for_the_step():
    result = gpt_step.bench_gpt("smoke", compile_model=False, repeats=2, breakdown=True)
    parts = result["breakdown_ms"]
    assert {"matrix products", "attention", "optimizer (AdamW)", "cross-entropy loss"} <= set(parts)
    # operators' own times: positive, and together no more than a step (plus timing noise)
    assert all(ms > 0 for ms in parts.values()) and sum(parts.values()) < 3 * result["step_ms"]
    assert "matrix products" in benchmarks.format_result(result)


def test_peak_lookup():
    assert gpt_step.peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpt_step.peak_bf16_flops("NVIDIA H200") == 989e12
    assert gpt_step.peak_bf16_flops("Some CPU") is None
    assert gpt_step.roofline_specs("NVIDIA H200") == (989e12, 4.8e12)
    assert gpt_step.roofline_specs("NVIDIA H100 80GB HBM3") == (989e12, 3.35e12)
    assert gpt_step.roofline_specs("CPU (x86_64)") is None


def test_cli_prints_json(capsys):
    assert main(["bench", "gpt", "--profile", "smoke", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["profile"] == "smoke" and result["torch"]



@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the bench uses NCCL over the GPUs")
def test_ddp_bench_on_cpu_runs_one_and_two_gloo_processes():
    result = scaling.bench_ddp("smoke", max_steps=5)
    assert result["backend"] == "gloo" and [run["world_size"] for run in result["runs"]] == [1, 2]
    assert result["runs"][0]["scaling_efficiency"] == 1.0 and result["runs"][1]["tokens_per_s"] > 0
    assert result["date"] and result["shape"] == "char" and result["runs"][0]["ms_per_step"] > 0


def _kernels_with_gaps(gaps: list[float], rng: random.Random) -> list[tuple[float, float]]:
    """Back-to-back kernels of random durations separated by ``gaps`` (microseconds), shuffled."""
    intervals, clock = [], rng.uniform(0, 1e6)
    for gap in [0.0, *gaps]:
        clock += gap
        duration = rng.uniform(1, 500)
        intervals.append((clock, duration))
        clock += duration
    rng.shuffle(intervals)
    return intervals


def test_kernel_gaps_finds_every_gap_and_its_size():
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    gaps = [rng.choice([0.5, 1.5, 2.5, 4.0, 7.0, 15.0, 50.0, 300.0]) for _ in range(rng.randint(20, 60))]
    intervals = _kernels_with_gaps(gaps, rng)
    steps = rng.randint(1, 5)
    result = idle.kernel_gaps(intervals, steps=steps)
    assert result["device_ops"] == pytest.approx(len(intervals) / steps), seed
    assert result["busy_ms"] == pytest.approx(sum(d for _, d in intervals) / 1e3 / steps), seed
    assert result["idle_ms"] == pytest.approx(sum(gaps) / 1e3 / steps), seed
    assert result["span_ms"] == pytest.approx(result["busy_ms"] + result["idle_ms"]), seed
    assert result["median_gap_us"] == pytest.approx(statistics.median(gaps)), seed
    # every class holds exactly the gaps of its size (one size per class above)
    for label, row in result["gap_histogram"].items():
        size = next(g for g in (0.5, 1.5, 2.5, 4.0, 7.0, 15.0, 50.0, 300.0) if _in_class(g, label))
        assert row["gaps"] == pytest.approx(gaps.count(size) / steps), (seed, label)
        assert row["ms"] == pytest.approx(size * gaps.count(size) / 1e3 / steps), (seed, label)


def _in_class(gap: float, label: str) -> bool:
    low, _, high = label.removesuffix(" us").removeprefix(">= ").partition("-")
    return float(low) <= gap < (float(high) if high else float("inf"))


def test_kernel_gaps_puts_a_gap_on_an_edge_in_the_class_above():
    edges = list(idle.GAP_EDGES_US)
    result = idle.kernel_gaps(_kernels_with_gaps(edges, random.Random(0)))
    counts = [row["gaps"] for row in result["gap_histogram"].values()]
    assert counts == [0] + [1] * len(edges)  # nothing below 1 us, then one gap in each class from "1-2 us" up


def test_kernel_gaps_counts_overlapping_kernels_once():
    # two streams: a kernel inside another is no gap and no extra busy time; the gap is after the later end
    result = idle.kernel_gaps([(0.0, 10.0), (2.0, 3.0), (8.0, 6.0), (20.0, 1.0)])
    assert result["busy_ms"] == pytest.approx(15e-3) and result["idle_ms"] == pytest.approx(6e-3)
    assert result["gap_histogram"]["5-10 us"]["gaps"] == 1
    with pytest.raises(ValueError, match="at least one"):
        idle.kernel_gaps([])
    with pytest.raises(ValueError, match=">= 0"):
        idle.kernel_gaps([(0.0, -1.0)])


def test_gpt_idle_bench_times_the_cpu_phases(nanogpt_stand_in, monkeypatch):
    monkeypatch.setenv("ATTENTION_COURSE_DEVICE", "cpu")  # the same result on a GPU machine
    result = idle.bench_gpt_idle("smoke", compile_model=False)
    assert set(result["cpu_ms"]) == {"forward", "backward", "optimizer"} and all(ms > 0 for ms in result["cpu_ms"].values())
    assert result["cpu_ms_per_step"] == pytest.approx(sum(result["cpu_ms"].values())) and result["step_ms"] > 0
    assert result["model"] == "course" and result["kernel_gaps"] is None  # gaps need a CUDA device's profile
    assert "CUDA only" in benchmarks.BENCHMARKS["gpt-idle"].render(result)
    assert idle.bench_gpt_idle("smoke", compile_model=False, model_file=str(nanogpt_stand_in))["model"] == "nanoGPT"


def _registered_in_source() -> dict[str, set[str]]:
    """module (below the package) -> the names it registers with ``@benchmark("name", ...)``, read from the source."""
    import ast

    package = Path(__file__).resolve().parent.parent / "attention_course"
    found = {}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for decorator in getattr(node, "decorator_list", []):
                if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "benchmark":
                    module = ".".join(path.relative_to(package).with_suffix("").parts)
                    found.setdefault(module, set()).add(decorator.args[0].value)
    return found


def test_the_command_line_imports_every_module_that_registers_a_benchmark():
    from attention_course.tools.cli import BENCHMARK_MODULES, registered_benchmarks

    in_source = _registered_in_source()
    assert len(in_source) >= 8, f"too few modules register benchmarks: {sorted(in_source)}"
    assert set(BENCHMARK_MODULES) == set(in_source), "tools/cli.py's BENCHMARK_MODULES and the @benchmark modules differ"
    names = set().union(*in_source.values())
    assert set(registered_benchmarks()) == names
