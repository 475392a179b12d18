"""Batch-1 decoding variants at GPT-2-small shape (bf16, prompt 512, 256 new tokens) and batch 8's first call after
warm-up, as run on one NVIDIA H100 on 2026-12-07 (results/generation_decode_sweep_H100.json).

Run from the repository root on a GPU: ``python results/scripts/generation_decode_sweep.py OUT.json [lite]``. With
``lite`` it stops before the last variant; the stored JSON's last row ran alone afterwards (the same code from
``with torch._inductor.config.patch``), for lack of device time. StaticGenerator's defaults have since taken the
winner: prefill graphs on a GPU, and the decode step compiled with ``DECODE_COMPILE_OPTIONS``.
"""
import json
import sys
import time

import torch

from attention_course.core.gpt import GPT, GPTConfig
from attention_course.deploy.generation import GPT2_SMALL, StaticGenerator, _timed, decode_kernel_profile, measure

path = sys.argv[1]
device = torch.device("cuda")
torch.manual_seed(0)
model = GPT(GPTConfig(**GPT2_SMALL)).to(device, torch.bfloat16).eval()
out = {"device_name": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": {}}
prompt = torch.randint(0, 50257, (1, 512), device=device, generator=torch.Generator(device).manual_seed(0))


def run(name, generator, compile_s=None):
    row, _ = measure(name, generator.generate, prompt, 256, 7, device)
    profile = decode_kernel_profile(generator, 1)
    row["kernel_ms_per_step"] = profile and profile["ms_per_step"]
    row["kernels_per_step"] = profile and profile["kernels_per_step"]
    row["top"] = profile and profile["top_kernels_ms_per_step"]
    row["compile_s"] = compile_s
    out["rows"][name] = row
    print(name, {k: row[k] for k in ("tokens_per_s", "decode_tokens_per_s", "ttft_s", "first_s", "kernel_ms_per_step")}, flush=True)
    json.dump(out, open(path, "w"), indent=1)


g = StaticGenerator(model, 1, 768, compile=True, prefill_graphs=True)
run("default (last-only head, prefill graphs)", g, g.warm_up(1))
g.prefill_graphs = False
run("no prefill graph", g)
del g

# batch 8: the first call after warm-up (lesson 08's H200 run stalled 14 s there)
g8 = StaticGenerator(model, 8, 768, compile=True, prefill_graphs=True)
row = {"warm_up_s": g8.warm_up(8)}
for name, length in (("first 512", 512), ("again 512", 512), ("first 300", 300), ("again 300", 300)):
    p8 = torch.randint(0, 50257, (8, length), device=device, generator=torch.Generator(device).manual_seed(length))
    seconds, _ = _timed(lambda p=p8, gen=g8: gen.generate(p, 256), device)
    row[name] = {"s": seconds, "tokens_per_s": 8 * 256 / seconds}
out["batch 8"] = row
print("batch 8", row, flush=True)
json.dump(out, open(path, "w"), indent=1)
del g8

if len(sys.argv) > 2:  # the lite sweep stops here
    sys.exit(0)
with torch._inductor.config.patch(max_autotune_pointwise=True):
    started = time.perf_counter()
    g = StaticGenerator(model, 1, 768, compile=True, prefill_graphs=True)
    g.warm_up(1)
    run("max_autotune_pointwise", g, time.perf_counter() - started)
print("DONE", flush=True)
