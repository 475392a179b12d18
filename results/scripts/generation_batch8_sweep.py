"""Batch-8 decode variants (run from the repository root on one GPU: python results/scripts/generation_batch8_sweep.py OUT.json 8).

Batch-8 decode variants at GPT-2-small shape (bf16, prompt 512, 256 new tokens, max_len 768): where the step goes."""
import json
import sys
import time
import traceback

import torch
from torch.nn.attention.flex_attention import flex_attention

from attention_course.core import attention as A
from attention_course.core.gpt import GPT, GPTConfig
from attention_course.deploy import generation as G
from attention_course.deploy.generation import GPT2_SMALL, StaticGenerator, decode_kernel_profile, measure

path = sys.argv[1]
device = torch.device("cuda")
torch.manual_seed(0)
model = GPT(GPTConfig(**GPT2_SMALL)).to(device, torch.bfloat16).eval()
out = {"device_name": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": {}}
B = int(sys.argv[2]) if len(sys.argv) > 2 else 8
prompt = torch.randint(0, 50257, (B, 512), device=device, generator=torch.Generator(device).manual_seed(0))
ref = {}

def save():
    json.dump(out, open(path, "w"), indent=1)

def run(name, make, profile=True):
    try:
        t = time.perf_counter()
        g = make()
        g.warm_up(B) if hasattr(g, "warm_up") else None
        compile_s = time.perf_counter() - t
        row, tokens = measure(name, g.generate if hasattr(g, "generate") else g, prompt, 256, 5, device)
        if "naive" in ref:
            row["same_as_naive"] = float((tokens == ref["naive"]).float().mean())
        else:
            ref["naive"] = tokens
        row["compile_s"] = compile_s
        if profile and hasattr(g, "caches"):
            p = decode_kernel_profile(g, B)
            row["kernel_ms_per_step"] = p and p["ms_per_step"]
            row["kernels_per_step"] = p and p["kernels_per_step"]
            row["top"] = p and p["top_kernels_ms_per_step"]
        out["rows"][name] = row
        print(name, {k: row.get(k) for k in ("tokens_per_s", "first_s", "kernel_ms_per_step", "compile_s", "same_as_naive")}, flush=True)
        if hasattr(g, "close"):
            g.close()
    except Exception:
        out["rows"][name] = {"error": traceback.format_exc()[-3000:]}
        print(name, "FAILED", traceback.format_exc()[-1500:], flush=True)
    save()

def naive(p, n):
    with torch.no_grad(), G._no_cudnn_attention():
        return model.generate(p, n, temperature=0)

run("naive loop", lambda: naive, profile=False)
run("static, fused attention (SDPA)", lambda: StaticGenerator(model, B, 768, compile=True, decode_attention="fused"))

_plain = A.scaled_dot_product_attention
def flex_sdpa(q, k, v, mask=None):
    if mask is None or q.shape[-2] != 1:
        return _plain(q, k, v, mask)
    row = mask.reshape(-1, mask.shape[-1])[-1]
    def score_mod(score, b, h, q_idx, kv_idx):
        return torch.where(row[kv_idx], score, -float("inf"))
    return flex_attention(q, k, v, score_mod=score_mod), None
A.scaled_dot_product_attention = flex_sdpa
run("static, flex attention", lambda: StaticGenerator(model, B, 768, compile=True))
A.scaled_dot_product_attention = _plain

old = StaticGenerator.DECODE_COMPILE_OPTIONS
StaticGenerator.DECODE_COMPILE_OPTIONS = {}
run("static, matmul attention, untuned compile", lambda: StaticGenerator(model, B, 768, compile=True))
StaticGenerator.DECODE_COMPILE_OPTIONS = old
run("static, matmul attention (default)", lambda: StaticGenerator(model, B, 768, compile=True))
print("DONE", flush=True)
