"""Lesson 08's experiment end to end: ``attention-course bench serving --json``.

The same steps as the lesson, at a size profile's scale: generation with and without the KV cache; a
fine-tuned teacher and its distilled students; int8 on the CPU (layers chosen on validation); the cost table.
"""

from __future__ import annotations

import copy
import time

import torch

from ..core.benchmarks import benchmark
from ..core.device import device_name, pick_device
from ..core.profiles import LESSONS, pick_profile, sizes
from ..core.training import accuracy
from ..inside.transfer import FitConfig
from . import cost as serving
from . import distill, quantize

ASSUMED_PRICE_PER_CORE_HOUR = 0.05  # ASSUMPTION (dollars): a cloud vCPU, or an on-premises core amortised
ASSUMED_GPU_PRICE_PER_HOUR = 4.00  # ASSUMPTION (dollars): one H100/H200-class GPU rented by the hour


def assumed_prices(cpu_threads: int) -> dict[str, float]:
    """Hourly prices the cost table uses unless the reader sets others: assumptions, not quotes."""
    return {"cpu": ASSUMED_PRICE_PER_CORE_HOUR * cpu_threads, "gpu": ASSUMED_GPU_PRICE_PER_HOUR}


def int8_floor(teacher_cpu, layers, test_inputs, test_labels, compile: bool, n_batches: int, rounds: int) -> dict:
    """The int8 floor's measurements: throughput at batch 32 of fp32 (eager, and compiled like int8) and int8,
    timed in turns on the same test batches, and the test accuracy of fp32 and int8."""
    how = "compiled" if compile else "eager"
    int8 = quantize.quantize_int8(teacher_cpu, layers, compile=compile)
    fp32_compiled = quantize.compile_blocks(copy.deepcopy(teacher_cpu)) if compile else teacher_cpu
    batches = serving.batches(test_inputs, 32, n_batches, "cpu")
    models = {"fp32 eager": teacher_cpu, f"fp32 {how}": fp32_compiled, f"int8 {how}": int8}
    speeds = serving.interleaved_throughput(models, batches, rounds)
    fp32_accuracy = accuracy(teacher_cpu, test_inputs, test_labels, batch_size=64)
    int8_accuracy = accuracy(int8, test_inputs, test_labels, batch_size=64)
    best_fp32 = max(speed for name, speed in speeds.items() if name.startswith("fp32"))
    return {"batch": 32, "sentences_per_s": speeds, "int8_over_best_fp32": speeds[f"int8 {how}"] / best_fp32,
            "fp32_accuracy": fp32_accuracy, "int8_accuracy": int8_accuracy, "model": int8}


def cost_rows(cpu_variants: dict, gpu_variants: dict, test_inputs, test_labels, device, requests: int, batch: int,
              throughput_batches: int) -> list[dict]:
    """``serving.measure_variant`` for each CPU variant (fp32 or int8 models on the CPU) and each GPU variant
    (models moved to ``device`` as they are: fp32, or 16-bit from ``quantize.to_16bit``)."""
    measure = dict(requests=requests, throughput_batch=batch, throughput_batches=throughput_batches)
    cpu_inputs = {key: value.cpu() for key, value in test_inputs.items()}
    rows = [serving.measure_variant(name, model, cpu_inputs, test_labels.cpu(), "cpu", "cpu", **measure)
            for name, model in cpu_variants.items()]
    for name, model in gpu_variants.items():
        gpu_inputs = {key: value.to(device) for key, value in test_inputs.items()}
        rows.append(serving.measure_variant(name, model.to(device), gpu_inputs, test_labels.to(device), device, "gpu",
                                            **measure))
    return rows


def variants(setup, students, layers, device, compile: bool):
    """The cost table's models: (CPU variants, GPU variants), built from the teacher and the distilled students."""
    teacher = copy.deepcopy(setup.teacher).cpu().float().eval()
    shallow = copy.deepcopy(students[("shallow", "distilled")]).cpu().float().eval()
    scratch = copy.deepcopy(students[("scratch", "distilled")]).cpu().float().eval()
    cpu_variants = {"teacher fp32": teacher, "teacher int8": quantize.quantize_int8(teacher, layers, compile=compile),
                    "shallow student fp32": shallow,
                    "shallow student int8": quantize.quantize_int8(
                        shallow, quantize.linear_layers(shallow) if layers else [], compile=compile),
                    "scratch student fp32": scratch}
    gpu_variants = {}
    if torch.device(device).type == "cuda":
        gpu_variants = {"teacher fp32": copy.deepcopy(teacher), "teacher fp16": quantize.to_16bit(teacher, device),
                        "shallow student fp16": quantize.to_16bit(shallow, device),
                        "scratch student fp32": copy.deepcopy(scratch)}
    return cpu_variants, gpu_variants


def _format(result: dict) -> str:
    lines = [f"{result['device_name']} | CPU: {result['cpu_name']} | torch {result['torch']} | profile "
             f"{result['profile']} | {result['seconds']:.0f} s"]
    for row in result["generation"]:
        lines.append(f"generation batch {row['batch']} context {row['context']}: KV cache {row['speedup']:.2f}x naive "
                     f"({row['cached_tokens_per_s']:,.0f} vs {row['naive_tokens_per_s']:,.0f} tokens/s), "
                     f"same tokens {row['same_tokens']}")
    lines.append(f"teacher test accuracy {result['teacher_accuracy']:.3f}")
    for row in result["distillation"]:
        gain = "" if row["gain_mean"] is None else f", gain {row['gain_mean']:+.3f} +- {row['gain_std']:.3f}"
        lines.append(f"{row['student']:>8} {row['mode']:>9}: {row['mean']:.3f} +- {row['std']:.3f} "
                     f"({row['seeds']} seeds){gain}")
    floor = result["int8"]
    lines.append(f"int8 at batch 32: {floor['int8_over_best_fp32']:.2f}x the best fp32; accuracy "
                 f"{floor['fp32_accuracy']:.3f} -> {floor['int8_accuracy']:.3f}")
    for row in result["cost_table"]:
        lines.append(f"{row['variant']:>22} {row['hardware']}: acc {row['accuracy']:.3f}, p95 {row['p95_ms']:.1f} ms, "
                     f"{row['throughput_per_s']:,.0f}/s, ${row['cost_per_million']:.3f} per million")
    return "\n".join(lines)


@benchmark("serving", "lesson 08: KV-cache generation, distillation, int8, and the cost table", formatter=_format)
def bench_serving(profile: str | None = None) -> dict:
    device = pick_device()
    profile = profile or pick_profile(device)
    s = sizes(LESSONS["08"], profile)
    started = time.perf_counter()
    from ..core.data import shakespeare_char_splits
    from ..core.gpt import GPT, GPTConfig

    tokenizer, _, val_ids = shakespeare_char_splits()
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, **s.gpt)).to(device).eval()  # speed needs no training
    with serving.cpu_threads(s.threads):
        generation = serving.generation_speed(gpt, val_ids, s.contexts, s.new_tokens, s.gen_batches, s.gen_repeats,
                                              device)
    setup = distill.prepare(device, s.train_limit, s.test_limit, s.unlabelled, s.masked, FitConfig(**s.teacher))
    teacher_accuracy = accuracy(setup.teacher, setup.encoded["test"], setup.labels["test"], bf16=True)
    configs = {"shallow": distill.StudentConfig(**s.shallow), "scratch": distill.StudentConfig(**s.scratch)}
    records, students = distill.run_students(setup, configs, s.seeds, s.shallow_layers, progress=False)
    teacher_cpu = copy.deepcopy(setup.teacher).cpu().float().eval()
    val = {key: value.cpu() for key, value in setup.encoded["validation"].items()}
    test = {key: value.cpu() for key, value in setup.encoded["test"].items()}
    layers, tried = quantize.choose_layers(
        teacher_cpu, lambda m: accuracy(m, val, setup.labels["validation"].cpu(), batch_size=64), compile=s.compile)
    cpu_variants, gpu_variants = variants(setup, students, layers, device, s.compile)
    with serving.cpu_threads(s.threads):
        floor = int8_floor(teacher_cpu, layers, test, setup.labels["test"].cpu(), s.compile, s.throughput_batches,
                           s.gen_repeats)
        rows = cost_rows(cpu_variants, gpu_variants, setup.encoded["test"], setup.labels["test"], device, s.requests,
                         s.batch, s.throughput_batches)
    floor.pop("model")
    prices = assumed_prices(s.threads)
    table = serving.cost_table(rows, prices)
    with serving.cpu_threads(s.threads):
        cpu_name = device_name("cpu")
    return {"device": device.type, "device_name": device_name(device), "cpu_name": cpu_name,
            "cpu_threads": s.threads, "torch": torch.__version__, "profile": profile,
            "seconds": time.perf_counter() - started, "generation": generation, "sources": setup.sources,
            "teacher_accuracy": teacher_accuracy, "distillation": distill.summarise(records, teacher_accuracy),
            "student_runs": records, "int8_layers_tried": tried, "int8": floor,
            "hourly_prices_assumed": prices, "cost_table": table.to_dict("records")}
