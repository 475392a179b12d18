"""Speculative decoding on the CPU (issue 24's stretch): a small Shakespeare GPT as the target, a smaller one trained
on the same text as the draft; greedy, batch 1. Writes results/speculative_cpu.json.

    PYTHONPATH=$PWD .venv/bin/python results/scripts/speculative_cpu.py [--steps 600] [--threads 1]

Both models are trained here from scratch on the course's Shakespeare split (the same recipe as lesson 08's small
GPT), then each of a few validation prompts is continued by the target's cached greedy loop and by speculative
decoding at several lookaheads; the tokens must be equal, and the timings are medians over the prompts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from attention_course.core.data import shakespeare_char_splits
from attention_course.core.device import device_name
from attention_course.core.gpt import GPT, GPTConfig
from attention_course.core.profiles import GPT_TRAIN
from attention_course.deploy.speculative import speculative_generate
from attention_course.parallel.train import TrainConfig, train

TARGET = dict(block_size=256, n_layer=4, n_head=4, d_model=128)  # lesson 05's cpu shape
DRAFT = dict(block_size=256, n_layer=1, n_head=2, d_model=64)


def trained(shape: dict, vocab: int, train_ids, val_ids, steps: int) -> tuple[GPT, dict]:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab, **shape))
    config = TrainConfig(**{**GPT_TRAIN["cpu"], "batch_size": 32, "max_steps": steps, "time_budget_s": None,
                            "compile": False, "sample_chars": 0, "eval_interval": 10**9})
    history = train(model, train_ids, val_ids, config, torch.device("cpu"))
    return model.eval(), {"shape": shape, "params": model.num_params(), "steps": steps,
                          "val_loss": history.val_loss[-1], "train_s": history.train_seconds}


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--new", type=int, default=200)
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--out", default="results/speculative_cpu.json")
    args = parser.parse_args()
    tokenizer, train_ids, val_ids = shakespeare_char_splits()
    target, target_info = trained(TARGET, tokenizer.vocab_size, train_ids, val_ids, args.steps)
    draft, draft_info = trained(DRAFT, tokenizer.vocab_size, train_ids, val_ids, args.steps)
    torch.set_num_threads(args.threads)
    prompts = [val_ids[start:start + 16][None] for start in range(0, 2000 * args.prompts, 2000)]
    for prompt in prompts[:1]:  # warm-up: first calls pay one-off allocations
        target.generate(prompt, 8, temperature=0, use_cache=True)
        speculative_generate(target, draft, prompt, 8, 4)
    greedy = [timed(lambda p=p: target.generate(p, args.new, temperature=0, use_cache=True)) for p in prompts]
    rows = [{"method": "target, cached greedy loop", "median_s": statistics.median(s for s, _ in greedy)}]
    for lookahead in (1, 2, 4, 8):
        runs = [timed(lambda p=p, k=lookahead: speculative_generate(target, draft, p, args.new, k)) for p in prompts]
        same = all(torch.equal(out, ref) for (_, (out, _)), (_, ref) in zip(runs, greedy, strict=True))
        stats = [s for _, (_, s) in runs]
        rows.append({"method": f"speculative, lookahead {lookahead}", "median_s": statistics.median(s for s, _ in runs),
                     "same_tokens_as_greedy": same,
                     "acceptance_rate": sum(s.accepted for s in stats) / sum(s.proposed for s in stats),
                     "tokens_per_target_pass": sum(s.new_tokens for s in stats) / sum(s.rounds for s in stats)})
    base = rows[0]["median_s"]
    for row in rows:
        row["tokens_per_s"] = args.new / row["median_s"]
        row["speed_up"] = base / row["median_s"]
    result = {"what": "speculative decoding (attention_course.deploy.speculative) against the target's own cached "
                      "greedy loop, greedy, batch 1, on the CPU; the draft is trained on the same text, not distilled",
              "command": f"PYTHONPATH=$PWD .venv/bin/python results/scripts/speculative_cpu.py --steps {args.steps} "
                         f"--threads {args.threads}",
              "hardware": device_name(torch.device("cpu")), "torch": torch.__version__,
              "load_average_1min": os.getloadavg()[0],
              "target": target_info, "draft": draft_info, "prompts": len(prompts), "prompt_tokens": 16,
              "new_tokens": args.new, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for row in rows:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})


if __name__ == "__main__":
    main()
