"""The training toolkit every loop in the course shares: the optimizer, the learning-rate schedules,
mixed precision, accuracy and mean pooling. One copy of each; the loops (``train.train`` for the GPT,
``models.fit_classifier``, ``transfer.fit_with_validation`` and the later lessons') import them.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import Tensor, nn


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device | str,
                   betas: tuple[float, float] = (0.9, 0.95)) -> torch.optim.AdamW:
    """AdamW with decoupled weight decay on matrices and embeddings only, never on biases or norm gains.

    Only parameters that require gradients are optimised (a frozen encoder stays frozen). Fused on CUDA.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (every parameter has requires_grad=False)")
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=torch.device(device).type == "cuda")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group the learning rate ``lr`` (for a schedule computed step by step by hand)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def update(optimizer: torch.optim.Optimizer, loss: Tensor, clip: list[Tensor] | None = None,
           max_norm: float = 1.0) -> None:
    """One optimizer step on ``loss``: clear the old gradients, backpropagate, clip the gradient norm of the
    parameters in ``clip`` to ``max_norm`` (if given), and step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(clip, max_norm)
    optimizer.step()


def warmup_cosine_lr(step: int, warmup: int, total: int, max_lr: float, min_lr: float) -> float:
    """Lesson 05's schedule: linear warm-up to ``max_lr`` over ``warmup`` steps, cosine decay to ``min_lr`` at ``total``.

    Step 0 gets ``max_lr / warmup``; from ``total`` on the rate stays at ``min_lr``.
    """
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))


def warmup_linear(step: int, total: int, warmup: int) -> float:
    """Lesson 07's fine-tuning multiplier: linear warm-up to 1 over ``warmup`` steps, then linear decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def autocast(device: torch.device | str, bf16: bool = True):
    """bfloat16 autocast on CUDA when asked; a no-op elsewhere (CPU bf16 is slower than fp32 on most laptops)."""
    if torch.device(device).type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Average the token vectors of each sequence over its real tokens: (B, T, d), (B, T) -> (B, d)."""
    if hidden.dim() != 3 or mask.shape != hidden.shape[:2]:
        raise ValueError(f"expected hidden (B, T, d) and mask (B, T), got {tuple(hidden.shape)} and {tuple(mask.shape)}")
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


@torch.no_grad()
def accuracy(model: nn.Module, inputs: Tensor | dict[str, Tensor], labels: Tensor, batch_size: int = 512,
             bf16: bool = False) -> float:
    """Fraction of correct argmax predictions, in eval mode and in batches.

    ``inputs`` is one tensor (passed positionally) or a dict of tensors (passed as keyword arguments,
    e.g. ``input_ids`` and ``attention_mask``); they are moved to the model's device batch by batch.
    ``bf16=True`` evaluates under bfloat16 autocast on CUDA (as the model was trained, for the fine-tuned encoder).
    """
    device = next(model.parameters()).device
    count = len(labels)
    model.eval()
    correct = 0
    for start in range(0, count, batch_size):
        window = slice(start, start + batch_size)
        with autocast(device, bf16):
            if isinstance(inputs, dict):
                logits = model(**{key: value[window].to(device) for key, value in inputs.items()})
            else:
                logits = model(inputs[window].to(device))
        correct += (logits.argmax(-1).cpu() == labels[window].cpu()).sum().item()
    return correct / max(count, 1)
