"""The script, as run on one NVIDIA H100 on 2026-12-06 (results/generation_variants_H100.json), that compared ways
to make GPT-2-small batch-1 decoding faster; it ran against the working tree just before commit 8ec4d9b: the 16-step CUDA graphs
without OneRowLinear, the one-row linear layers patched in here (gemv_linear). Today's StaticGenerator(compile=True)
has all of "lib_gemv_prefill" (16-step graphs, one-row linear layers as multiply-and-sum, coordinate-descent tuning of
the decode step, a compiled prefill), the linear layers through generation.OneRowLinear instead of the patch; so its
"lib" variant now measures that route, not the one this file's JSON records under "lib". Run it from
the repository root on a GPU: python results/scripts/generation_variants.py [variant ...]. Variants: ro (last
session's reduce-overhead step, per token), lib (16-step graphs), lib_gemv (+ linear layers as multiply-and-sum,
coordinate-descent tuning), lib_cdt (tuning only), lib_gemv_prefill (+ prefill compiled), lib_mat (max-autotune)."""
import json
import os
import sys
import time
import traceback

import torch
import torch._inductor.config as ic
import torch.nn.functional as F

from attention_course.core.device import synchronize
from attention_course.core.gpt import GPT, GPTConfig
from attention_course.deploy import generation as G

OUT = os.environ.get("OUT", "/tmp/genout")
os.makedirs(OUT, exist_ok=True)
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
SMALL = os.environ.get("SMALL") == "1"
cfg = GPTConfig(**(dict(vocab_size=65, block_size=64, n_layer=2, n_head=2, d_model=64) if SMALL else G.GPT2_SMALL), dropout=0.0)
PROMPT, NEW = (8, 16) if SMALL else (512, 256)
dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
torch.manual_seed(0)
model = GPT(cfg).to(device=dev, dtype=dtype).eval()
results = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "torch": torch.__version__, "variants": {}}


class ReduceOverhead(G.StaticGenerator):
    """Last session's approach: torch.compile(mode="reduce-overhead") per step, Python loop per token."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        for cache in self.caches:
            for tensor in (cache.keys, cache.values, cache.causal):
                torch._dynamo.mark_static_address(tensor)
        self._ro = torch.compile(self.decode_step, mode="reduce-overhead", fullgraph=True)

    @torch.no_grad()
    def generate(self, tokens, n):
        batch, length = tokens.shape
        out = torch.empty(batch, length + n, dtype=torch.long, device=self.device)
        out[:, :length] = tokens
        token = self.prefill(tokens)
        out[:, length] = token[:, 0]
        position = torch.tensor([length], device=self.device)
        for i in range(1, n):
            torch.compiler.cudagraph_mark_step_begin()
            token = self._ro(token, position).clone()
            out[:, length + i] = token[:, 0]
            position += 1
        return out


def make_lib(b, mode=None, prefill=False):
    g = G.StaticGenerator(model, b, L, compile=True)
    if mode:
        g._step = torch.compile(g.decode_step, mode=mode, fullgraph=True)
    if prefill:
        g.prefill = torch.compile(g.prefill, dynamic=True)
    return g


def gemv_linear(self, x):
    if x.shape[:-1].numel() <= int(os.environ.get("GEMV_MAX_ROWS", "1")):
        y = (x.unsqueeze(-2) * self.weight).sum(-1, dtype=torch.float32).to(x.dtype)
        return y + self.bias if self.bias is not None else y
    return F.linear(x, self.weight, self.bias)


def run(name, make, batches=(1,)):
    torch._dynamo.reset()
    rec = {}
    try:
        for batch in batches:
            t0 = time.perf_counter()
            gen = make(batch)
            gen.warm_up(batch)
            synchronize(dev)
            compile_s = time.perf_counter() - t0
            prompt = torch.randint(0, cfg.vocab_size, (batch, PROMPT), device=dev)
            row, toks = G.measure(name, gen.generate, prompt, NEW, 3, dev)
            row["compile_s"] = compile_s
            if batch == 1 and dev.type == "cuda":
                try:
                    row["profile"] = G.decode_kernel_profile(gen, 1, steps=32)
                except Exception as e:
                    row["profile"] = repr(e)
            # greedy agreement with the eager static path
            ref = G.StaticGenerator(model, batch, PROMPT + NEW).generate(prompt, NEW)
            row["agree_with_eager"] = (ref == toks).float().mean().item()
            rec[batch] = row
            print(name, batch, {k: row[k] for k in ("tokens_per_s", "decode_tokens_per_s", "ttft_s", "first_s", "compile_s")},
                  (row.get("profile") or {}).get("ms_per_step") if isinstance(row.get("profile"), dict) else row.get("profile"), flush=True)
    except Exception:
        rec["error"] = traceback.format_exc()[-3000:]
        print(name, "FAILED", rec["error"], flush=True)
    results["variants"][name] = rec
    json.dump(results, open(f"{OUT}/gen_variants.json", "w"), indent=1, default=str)


only = sys.argv[1:] or ["lib", "ro", "lib_gemv", "lib_cdt", "lib_gemv_prefill", "lib_mat"]
BATCHES = {"lib": (1, 8), "ro": (1,)}
L = PROMPT + NEW
ORIG_LINEAR = torch.nn.Linear.forward
for name in only:
    ic.coordinate_descent_tuning = name.endswith("cdt") or "gemv" in name
    torch.nn.Linear.forward = gemv_linear if "gemv" in name else ORIG_LINEAR
    if name == "ro":
        run(name, lambda b: ReduceOverhead(model, b, L), BATCHES[name])
    else:
        mode = "max-autotune-no-cudagraphs" if name.endswith("_mat") else None
        run(name, lambda b, mode=mode, name=name: make_lib(b, mode, name.endswith("prefill")), BATCHES.get(name, (1,)))
print(json.dumps({k: {b: (r.get("tokens_per_s"), r.get("decode_tokens_per_s")) for b, r in v.items() if isinstance(r, dict)}
                  for k, v in results["variants"].items()}))
