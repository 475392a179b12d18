"""Training a GPT: batches, the warm-up + cosine schedule, AdamW, clipping, mixed precision, and DDP.

One code path serves a single process (a notebook) and several processes launched by torchrun:

    torchrun --nproc_per_node=4 -m attention_course.parallel.train --profile gpu     # 4 GPUs, NCCL
    torchrun --nproc_per_node=2 -m attention_course.parallel.train --profile smoke   # 2 CPU processes, gloo

Under torchrun each process trains a DistributedDataParallel replica on its own random batches;
gradients are averaged across processes in the backward pass.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.device import tf32
from ..core.gpt import GPT, GPTConfig
from ..core.language import say
from ..core.profiles import GPT_BENCH, GPT_MODEL, GPT_TRAIN, check_profile, pick_profile
from ..core.training import autocast, make_optimizer, warmup_cosine_lr


@dataclass
class TrainConfig:
    max_steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float | None = 1.0
    eval_interval: int = 250
    eval_batches: int = 20
    time_budget_s: float | None = None  # stop (and finish the cosine) when this much time has passed
    compile: bool = False
    bf16: bool = True  # autocast to bfloat16 on CUDA (ignored on CPU)
    tf32: bool = True  # TensorFloat-32 for the remaining fp32 matrix products on CUDA, during train() only
    sample_chars: int = 0  # characters sampled at each evaluation (0 = none)
    seed: int = 0


def random_batch(data: Tensor, block_size: int, batch_size: int, generator: torch.Generator,
                 device: torch.device) -> tuple[Tensor, Tensor]:
    """``batch_size`` random windows of ``block_size`` tokens, and the same windows shifted by one (targets)."""
    if len(data) <= block_size:
        raise ValueError(f"need more than block_size={block_size} tokens, got {len(data)}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator).to(data.device)
    offsets = torch.arange(block_size + 1, device=data.device)
    windows = data[starts[:, None] + offsets]  # gathered where the data lives: on the GPU if train() put it there
    return windows[:, :-1].to(device), windows[:, 1:].to(device)


def schedule_lr(step: int, budget_used: float, config: TrainConfig) -> float:
    """``warmup_cosine_lr`` over ``max_steps``; under a time budget the decay follows the time used, if ahead."""
    effective = step
    if step >= config.warmup_steps and budget_used > 0:
        effective = max(step, config.warmup_steps + budget_used * (config.max_steps - config.warmup_steps))
    return warmup_cosine_lr(effective, config.warmup_steps, config.max_steps, config.lr, config.min_lr)


@torch.no_grad()
def estimate_loss(model: nn.Module, data: Tensor, block_size: int, batch_size: int, batches: int,
                  device: torch.device, bf16: bool = True, seed: int = 1234) -> float:
    """Mean loss over ``batches`` random batches (the same batches every call, so curves are comparable)."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    total = 0.0
    for _ in range(batches):
        x, y = random_batch(data, block_size, batch_size, generator, device)
        with autocast(device, bf16):
            total += model(x, y)[1].item()
    model.train(was_training)
    return total / batches


@dataclass
class TrainHistory:
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    samples: list[tuple[int, str]] = field(default_factory=list)
    tokens_per_s: float = 0.0
    train_seconds: float = 0.0
    world_size: int = 1
    diverged: bool = False


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def _all_agree(flag: bool, device: torch.device) -> bool:
    """In DDP, stop when any process wants to (so every process runs the same number of steps)."""
    if not dist.is_initialized():
        return flag
    tensor = torch.tensor([float(flag)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def train(model: GPT, train_data: Tensor, val_data: Tensor, config: TrainConfig, device: torch.device,
          decode=None, progress: bool = True) -> TrainHistory:
    """Train ``model`` in place; return its loss curves, samples and throughput.

    Inside ``torch.distributed`` (torchrun), the model is wrapped in DistributedDataParallel and each process
    draws different batches. A loss that becomes NaN or infinite stops training (``history.diverged``).
    TF32 is switched as ``config.tf32`` asks for the duration of the call only.
    """
    with tf32(config.tf32):
        return _train_loop(model, train_data, val_data, config, device, decode, progress)


def _train_loop(model: GPT, train_data: Tensor, val_data: Tensor, config: TrainConfig, device: torch.device,
                decode, progress: bool) -> TrainHistory:
    world_size = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    model.to(device).train()
    train_data, val_data = train_data.to(device), val_data.to(device)  # a few MB: no per-step host copies
    block_size = model.config.block_size
    optimizer = make_optimizer(model, config.lr, config.weight_decay, device)
    runner: nn.Module = model
    if world_size > 1:
        runner = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        runner = torch.compile(runner)
    generator = torch.Generator().manual_seed(config.seed + 1000 * rank)
    history = TrainHistory(world_size=world_size)
    bar = tqdm(total=config.max_steps, desc=say("progress_training"), disable=not (progress and _is_main()), leave=True)
    started, eval_time, tokens = time.perf_counter(), 0.0, 0
    for step in range(config.max_steps):
        elapsed = time.perf_counter() - started
        budget_used = elapsed / config.time_budget_s if config.time_budget_s else 0.0
        if _all_agree(budget_used >= 1.0, device):
            break
        lr = schedule_lr(step, budget_used, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = random_batch(train_data, block_size, config.batch_size, generator, device)
        with autocast(device, config.bf16):
            _, loss = runner(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = config.grad_clip if config.grad_clip is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        tokens += x.numel() * world_size
        last = step == config.max_steps - 1
        if step % 10 == 0 or last:
            loss_value = loss.item()
            history.steps.append(step)
            history.train_loss.append(loss_value)
            history.lr.append(lr)
            history.grad_norm.append(float(grad_norm))
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.1e}")
            if _all_agree(not math.isfinite(loss_value), device):
                history.diverged = True
                break
        if (step > 0 and step % config.eval_interval == 0) or last:
            eval_started = time.perf_counter()
            _evaluate(model, val_data, config, device, step, history, decode)
            eval_time += time.perf_counter() - eval_started
        bar.update()
    bar.close()
    history.train_seconds = time.perf_counter() - started - eval_time
    history.tokens_per_s = tokens / max(history.train_seconds, 1e-9)
    if not history.eval_steps or history.eval_steps[-1] != history.steps[-1]:
        _evaluate(model, val_data, config, device, history.steps[-1] if history.steps else 0, history, decode)
    return history


def _evaluate(model, val_data, config, device, step, history, decode) -> None:
    val = estimate_loss(model, val_data, model.config.block_size, config.batch_size, config.eval_batches, device, config.bf16)
    if dist.is_initialized():
        tensor = torch.tensor([val], device=device)
        dist.all_reduce(tensor)
        val = tensor.item() / dist.get_world_size()
    history.eval_steps.append(step)
    history.val_loss.append(val)
    if decode and config.sample_chars and _is_main():
        prompt = torch.zeros(1, 1, dtype=torch.long, device=device)
        with autocast(device, config.bf16):
            sample = model.generate(prompt, config.sample_chars, temperature=0.8, top_k=20,
                                    generator=torch.Generator().manual_seed(step))
        history.samples.append((step, decode(sample[0, 1:].tolist())))


# ------------------------------------------------------------------ the command line (torchrun)

def setup_distributed() -> tuple[torch.device, int, int]:
    """Join the process group that torchrun describes (if any): return (device, rank, world size)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        from ..core.device import pick_device

        return pick_device(), 0, 1
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return device, dist.get_rank(), dist.get_world_size()


def _parse_overrides(pairs: list[str], parser: argparse.ArgumentParser) -> dict[str, dict]:
    """``["n_layer=8", "lr=2e-3"]`` -> {"model": {"n_layer": 8}, "train": {"lr": 0.002}}; unknown fields are an error."""
    import ast
    from dataclasses import fields

    model_fields = {f.name for f in fields(GPTConfig)} - {"vocab_size"}
    train_fields = {f.name for f in fields(TrainConfig)}
    chosen: dict[str, dict] = {"model": {}, "train": {}}
    for pair in pairs:
        key, _, text = pair.partition("=")
        if not _ or key not in model_fields | train_fields:
            parser.error(f"--set {pair!r}: expected FIELD=VALUE with FIELD one of {sorted(model_fields | train_fields)}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        chosen["model" if key in model_fields else "train"][key] = value
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_course.parallel.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(GPT_MODEL), help="size (default: from the device)")
    parser.add_argument("--max-steps", type=int, help="override the profile's number of steps")
    parser.add_argument("--time-budget", type=float, help="seconds of training (overrides the profile)")
    parser.add_argument("--dropout", type=float, help="override the profile's dropout")
    parser.add_argument("--lr", type=float, help="override the profile's peak learning rate")
    parser.add_argument("--no-compile", action="store_true", help="don't torch.compile the model")
    parser.add_argument("--shape", choices=["char", "gpt2"], default="char",
                        help="char: the profile's character GPT (default); gpt2: the model `bench gpt` times "
                             "(GPT-2 small on the gpu profile, with its batch), trained on the same characters")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any GPTConfig or TrainConfig field, e.g. --set n_layer=8 --set seed=1")
    parser.add_argument("--json", help="write the history as JSON to this file (rank 0)")
    args = parser.parse_args(argv)
    overrides = _parse_overrides(args.set, parser)
    device, rank, world_size = setup_distributed()
    from ..core.data import shakespeare_char_splits
    profile = check_profile(args.profile or pick_profile(device))
    tokenizer, train_ids, val_ids = shakespeare_char_splits()
    config = TrainConfig(**{**GPT_TRAIN[profile], **overrides["train"]})
    torch.manual_seed(config.seed)  # every replica starts from the same weights
    if args.max_steps:
        config.max_steps = args.max_steps
    if args.time_budget:
        config.time_budget_s = args.time_budget
    if args.lr:
        config.lr = args.lr
    if args.no_compile:
        config.compile = False
    model_options = {"vocab_size": tokenizer.vocab_size, **GPT_MODEL[profile], **overrides["model"]}
    if args.shape == "gpt2":  # GPT-2's 50,304-token vocabulary and shape; the characters use 84 of the ids
        model_options = {**GPT_BENCH[profile]["model"], "bias": False, **overrides["model"]}
        config.batch_size = overrides["train"].get("batch_size", GPT_BENCH[profile]["batch"])
    if args.dropout is not None:
        model_options["dropout"] = args.dropout
    model = GPT(GPTConfig(**model_options))
    history = train(model, train_ids, val_ids, config, device, progress=sys.stderr.isatty())
    if rank == 0:
        summary = {"profile": profile, "world_size": world_size, "device": str(device),
                   "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
                   "steps": history.steps[-1] + 1, "tokens_per_s": history.tokens_per_s, "shape": args.shape,
                   "params": model.num_params(non_embedding=False), "batch_size": config.batch_size,
                   "ms_per_step": 1e3 * history.train_seconds / (history.steps[-1] + 1),
                   "train_seconds": history.train_seconds, "final_val_loss": history.val_loss[-1],
                   "best_val_loss": min(history.val_loss), "model": model_options,
                   "train": {k: v for k, v in asdict(config).items() if k in overrides["train"]}}
        print(json.dumps(summary))
        if args.json:
            with open(args.json, "w") as handle:
                json.dump({"summary": summary, "history": asdict(history)}, handle)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
