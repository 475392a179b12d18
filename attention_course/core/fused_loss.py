"""The language-model head and its cross-entropy, fused so that logits-sized memory is crossed as few times as possible.

A GPT's last step multiplies (B*T, d) hidden states by the (vocab, d) output matrix and takes the
cross-entropy of the result. At GPT-2 size that is 12,288 x 50,304 logits, 1.2 GB in bfloat16. The plain
path writes them, reads them for the softmax, reads them again and writes a gradient of the same size in
the backward pass. Two implementations avoid most of that traffic; ``linear_cross_entropy`` picks one:

- **one pass** (a CUDA tensor and Triton, which ships with PyTorch's CUDA builds for Linux): the product is
  written once; one Triton program per row then reads it, computes the loss in float32 and overwrites
  the logits *in place* with their gradient (softmax - one-hot) / rows. The backward pass only multiplies
  that gradient into the hidden states' and the weight's gradients (the two products every implementation
  needs) and scales the two small results, so nothing logits-sized is written again. Each program reads its
  row twice, once for the log-sum-exp and once for the gradient; the second read usually comes from the L2
  cache (not measured). Liger-Kernel's cross-entropy also writes the gradient in place, but on an H200 it left
  the GPT-2-small step unchanged (25.83 vs 25.77 ms; its backward pass compares the incoming gradient with 1.0
  and waits for the answer on the CPU every step, the likely reason), so the course carries this small kernel.
- **chunk by chunk** (anywhere else): rows are processed in chunks; each chunk's gradient is formed in the
  forward pass and multiplied straight into the two gradients, so the full logits never exist. It saves
  memory, not time: on an H200 it made the GPT-2-small step slower (27.4 vs 25.8 ms).

The maths is unchanged: the loss and both gradients equal those of
``F.cross_entropy(hidden @ weight.T, targets)`` (the softmax in float32), to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .device import autocast_dtype, triton_runs_on

try:  # Triton ships with CUDA builds of PyTorch; the CPU build has none and uses the chunked path
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the PyTorch build
    triton = None

# Columns one Triton program reads at a time, and its warps: as fast as any of seven settings on an H200 for
# 12,288 x 50,304 bf16 logits (5.23 ms for product, loss and both gradient products; 4096/8 took 5.25, 16384/16
# 5.79; single medians, results/onepass_cross_entropy_H200.json)
COLUMN_BLOCK = 2048
WARPS = 4


if triton is not None:
    @triton.jit
    def _cross_entropy_rows(logits_ptr, row_stride, targets_ptr, losses_ptr, inv_rows, n_cols: tl.constexpr,
                            BLOCK: tl.constexpr):
        """One program per row: loss = logsumexp(row) - row[target]; row <- (softmax(row) - one_hot) * inv_rows."""
        row = tl.program_id(0).to(tl.int64)
        start_ptr = logits_ptr + row * row_stride
        target = tl.load(targets_ptr + row)
        columns = tl.arange(0, BLOCK)
        running_max = tl.full([BLOCK], float("-inf"), tl.float32)  # per lane: an online softmax in each
        running_sum = tl.zeros([BLOCK], tl.float32)
        for first in range(0, n_cols, BLOCK):
            x = tl.load(start_ptr + first + columns, mask=first + columns < n_cols, other=float("-inf")).to(tl.float32)
            new_max = tl.maximum(running_max, x)
            rescale = tl.where(new_max == float("-inf"), 0.0, tl.exp(running_max - new_max))
            running_sum = running_sum * rescale + tl.where(x == float("-inf"), 0.0, tl.exp(x - new_max))
            running_max = new_max
        row_max = tl.max(running_max, axis=0)
        log_norm = row_max + tl.log(tl.sum(running_sum * tl.exp(running_max - row_max), axis=0))
        target_logit = tl.load(start_ptr + target).to(tl.float32)
        tl.store(losses_ptr + row, log_norm - target_logit)
        for first in range(0, n_cols, BLOCK):
            here = first + columns
            x = tl.load(start_ptr + here, mask=here < n_cols, other=0.0).to(tl.float32)
            grad = tl.exp(x - log_norm) - tl.where(here == target, 1.0, 0.0)
            tl.store(start_ptr + here, (grad * inv_rows).to(logits_ptr.dtype.element_ty), mask=here < n_cols)


class _OnePassLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor) -> Tensor:
        logits = hidden @ weight.T
        rows, vocab = logits.shape
        losses = torch.empty(rows, dtype=torch.float32, device=hidden.device)
        _cross_entropy_rows[(rows,)](logits, logits.stride(0), targets, losses, 1.0 / rows, n_cols=vocab,
                                     BLOCK=COLUMN_BLOCK, num_warps=WARPS)
        ctx.save_for_backward(hidden, weight, logits)  # logits now hold d(mean loss)/d(logits)
        return losses.mean()

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        # First derivatives only: the saved gradient does not record how it depends on hidden and weight. (Not
        # marked once_differentiable, so that torch.compile keeps tracing it as in the measured runs.)
        hidden, weight, grad_logits = ctx.saved_tensors
        # the scale multiplies the two small products, never the logits-sized one (a 0-d float32 keeps them bf16)
        return (grad_logits @ weight) * grad_loss, (grad_logits.T @ hidden) * grad_loss, None


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor, chunk_rows: int) -> Tensor:
        rows = hidden.shape[0]
        exact = torch.promote_types(hidden.dtype, torch.float32)  # the softmax runs in at least float32
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros(weight.shape, dtype=exact, device=weight.device)
        total = torch.zeros((), dtype=exact, device=hidden.device)
        for start in range(0, rows, chunk_rows):
            part, wanted = hidden[start : start + chunk_rows], targets[start : start + chunk_rows]
            logits = (part @ weight.T).to(exact)
            log_norm = torch.logsumexp(logits, dim=-1)
            total = total + (log_norm - logits.gather(1, wanted[:, None]).squeeze(1)).sum()
            grad = torch.exp(logits - log_norm[:, None])  # softmax
            grad.scatter_add_(1, wanted[:, None], torch.full_like(log_norm[:, None], -1.0))
            grad = (grad / rows).to(hidden.dtype)
            grad_hidden[start : start + chunk_rows] = grad @ weight
            grad_weight += (grad.T @ part).to(exact)
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return total / rows

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None


def one_pass_available(device: torch.device | str) -> bool:
    """Whether ``linear_cross_entropy`` takes the one-pass Triton path for tensors on ``device``."""
    return triton is not None and triton_runs_on(device)


def linear_cross_entropy(hidden: Tensor, weight: Tensor, targets: Tensor, chunk_rows: int = 1024,
                         one_pass: bool | None = None) -> Tensor:
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets``, fused (see the module's docstring).

    hidden (N, d) or (B, T, d); weight (vocab, d); targets (N,) or (B, T) of class ids in [0, vocab) (no
    ignore index: the kernel does not check them, which would cost a device-to-host copy). Under autocast the
    product runs in the autocast dtype, as ``nn.Linear`` would; the softmax always runs in float32.
    ``one_pass`` None takes the Triton path wherever it is available; ``chunk_rows`` sizes the chunked path.
    """
    if hidden.shape[-1] != weight.shape[-1] or hidden.shape[:-1] != targets.shape:
        raise ValueError(f"expected hidden (..., d), weight (vocab, d), targets (...); got {tuple(hidden.shape)}, "
                         f"{tuple(weight.shape)}, {tuple(targets.shape)}")
    one_pass = one_pass_available(hidden.device) if one_pass is None else one_pass
    if one_pass and triton is None:
        raise RuntimeError("the one-pass path needs Triton (it ships with PyTorch's CUDA builds for Linux)")
    if one_pass and not triton_runs_on(hidden.device):
        raise ValueError(f"the one-pass path runs on CUDA tensors (or under TRITON_INTERPRET=1); got {hidden.device}")
    dtype = autocast_dtype(hidden)
    hidden, weight = hidden.to(dtype), weight.to(dtype)
    rows, targets = hidden.flatten(0, -2), targets.flatten()
    with torch.autocast(hidden.device.type, enabled=False):
        if one_pass:
            return _OnePassLinearCrossEntropy.apply(rows, weight, targets.contiguous())
        return _ChunkedLinearCrossEntropy.apply(rows, weight, targets, chunk_rows)
