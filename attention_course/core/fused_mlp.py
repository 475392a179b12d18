"""The feed-forward network of a Transformer block, Linear -> GELU -> Linear, with GELU computed inside the matrix
products on either side of it.

Unfused, a GPT-2-small step writes the (tokens, 4 d) pre-activation from cuBLAS and reads it back to apply
GELU (forward), then writes the gradient of the GELU output and reads it back, with the pre-activation, to
multiply by GELU's derivative (backward). On CUDA with Triton, ``gelu_mlp`` moves both element-wise steps into
the epilogue of a Triton matrix product, while its tile is still in registers:

- forward: ``pre = x @ fc.T`` and ``act = gelu(pre)`` come out of one kernel (both are kept for the backward);
- backward: ``grad_pre = (grad_out @ proj) * gelu'(pre)`` comes out of one kernel.

The other four products (the output projection and the three weight and input gradients) stay with cuBLAS.
GELU is the exact one (erf), as in ``nn.GELU()``; the maths is unchanged, and results equal the unfused
module's to rounding (the backward's product is not rounded to bfloat16 before the multiplication).
Elsewhere (CPU, or no Triton) ``gelu_mlp`` is the plain composition of ``F.linear`` and ``F.gelu``.

Measured on an H200 it is slower than the unfused module, so ``GPTConfig.fused_mlp`` is off by default: this
product with GELU took 0.252 ms where cuBLAS's product and inductor's GELU kernel take 0.182 ms together, and the
GPT-2-small step went from 25.64 to 26.62 ms (results/fused_mlp_H200.json, which also holds a TMA version, 0.274 ms).
The module stays as the measured counter-example of lesson 04: fusion only pays when the fused kernel is as fast as
the ones it replaces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .device import TRITON_INTERPRETED, autocast_dtype, triton_runs_on

try:  # Triton ships with CUDA builds of PyTorch; the CPU build has none and uses the plain path
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the PyTorch build
    triton = None

# Tile settings tried on first use for each shape (triton.autotune keeps the fastest); the interpreter uses the last
TILES = [  # (BLOCK_M, BLOCK_N, BLOCK_K, stages, warps)
    (128, 256, 64, 3, 8),
    (256, 128, 64, 3, 8),
    (128, 128, 64, 4, 4),
    (128, 128, 64, 4, 8),
    (128, 128, 128, 3, 8),
    (64, 256, 64, 4, 4),
    (32, 32, 16, 1, 4),
]

if triton is not None:
    @triton.jit
    def _gelu_product_kernel(a_ptr, b_ptr, pre_ptr, out_ptr, M, N, K: tl.constexpr, stride_am, stride_ak, stride_bk, stride_bn,
                             BACKWARD: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                             BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
        """(M, N) tile of a @ b in float32, then GELU's step. Forward: pre <- product, out <- gelu(pre).
        Backward: out <- product * gelu'(pre), with ``pre`` read. ``pre`` and ``out`` are contiguous (M, N)."""
        pid = tl.program_id(0)
        tiles_m, tiles_n = tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N)
        group = pid // (GROUP_M * tiles_n)  # groups of GROUP_M row tiles share columns of b in the L2 cache
        first_m = group * GROUP_M
        rows_in_group = tl.minimum(tiles_m - first_m, GROUP_M)
        tile_m = first_m + (pid % (GROUP_M * tiles_n)) % rows_in_group
        tile_n = (pid % (GROUP_M * tiles_n)) // rows_in_group
        rows = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
        inner = tl.arange(0, BLOCK_K)
        a_ptrs = a_ptr + (rows % M)[:, None].to(tl.int64) * stride_am + inner[None, :] * stride_ak
        b_ptrs = b_ptr + inner[:, None] * stride_bk + (cols % N)[None, :].to(tl.int64) * stride_bn
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for step in range(0, tl.cdiv(K, BLOCK_K)):
            a = tl.load(a_ptrs, mask=inner[None, :] < K - step * BLOCK_K, other=0.0)
            b = tl.load(b_ptrs, mask=inner[:, None] < K - step * BLOCK_K, other=0.0)
            acc = tl.dot(a, b, acc)
            a_ptrs += BLOCK_K * stride_ak
            b_ptrs += BLOCK_K * stride_bk
        offsets = rows[:, None].to(tl.int64) * N + cols[None, :]
        inside = (rows[:, None] < M) & (cols[None, :] < N)
        if BACKWARD:
            pre = tl.load(pre_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
            cdf = 0.5 * (1.0 + tl.erf(pre * 0.7071067811865476))
            pdf = tl.exp(-0.5 * pre * pre) * 0.3989422804014327
            tl.store(out_ptr + offsets, (acc * (cdf + pre * pdf)).to(out_ptr.dtype.element_ty), mask=inside)
        else:
            pre = acc.to(pre_ptr.dtype.element_ty)
            tl.store(pre_ptr + offsets, pre, mask=inside)
            pre = pre.to(tl.float32)  # GELU of the stored (rounded) value, as the unfused module computes it
            tl.store(out_ptr + offsets, (0.5 * pre * (1.0 + tl.erf(pre * 0.7071067811865476))).to(
                out_ptr.dtype.element_ty), mask=inside)

    _tuned_gelu_product = triton.autotune(
        configs=[triton.Config(dict(BLOCK_M=m, BLOCK_N=n, BLOCK_K=k, GROUP_M=8), num_stages=s, num_warps=w)
                 for m, n, k, s, w in TILES[:-1]],
        key=["M", "N", "K", "BACKWARD"])(_gelu_product_kernel)


def _gelu_product(a: Tensor, b: Tensor, pre: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Forward (``pre`` None): (a @ b, gelu(a @ b)). Backward: (pre, (a @ b) * gelu'(pre)). a (M, K), b (K, N)."""
    (m, k), n = a.shape, b.shape[1]
    backward = pre is not None
    if not backward:
        pre = torch.empty((m, n), dtype=a.dtype, device=a.device)
    out = torch.empty((m, n), dtype=a.dtype, device=a.device)
    strides = (a.stride(0), a.stride(1), b.stride(0), b.stride(1))
    if TRITON_INTERPRETED:  # no timing under the interpreter: one small tile
        block_m, block_n, block_k, _, _ = TILES[-1]
        grid = (triton.cdiv(m, block_m) * triton.cdiv(n, block_n),)
        _gelu_product_kernel[grid](a, b, pre, out, m, n, k, *strides, BACKWARD=backward, BLOCK_M=block_m,
                                   BLOCK_N=block_n, BLOCK_K=block_k, GROUP_M=8)
    else:
        def grid(meta):
            return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]),)
        _tuned_gelu_product[grid](a, b, pre, out, m, n, k, *strides, BACKWARD=backward)
    return pre, out


class _FusedGeluMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, fc_weight: Tensor, proj_weight: Tensor) -> Tensor:
        pre, act = _gelu_product(x, fc_weight.T)
        ctx.save_for_backward(x, fc_weight, proj_weight, pre, act)
        return act @ proj_weight.T

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, fc_weight, proj_weight, pre, act = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        _, grad_pre = _gelu_product(grad_out, proj_weight, pre)
        return grad_pre @ fc_weight, grad_pre.T @ x, grad_out.T @ act


def fused_mlp_available(device: torch.device | str) -> bool:
    """Whether ``gelu_mlp`` takes the Triton path for tensors on ``device``."""
    return triton is not None and triton_runs_on(device)


def gelu_mlp(x: Tensor, fc_weight: Tensor, proj_weight: Tensor, fused: bool | None = None) -> Tensor:
    """``F.linear(F.gelu(F.linear(x, fc_weight)), proj_weight)``, with GELU inside the products on CUDA.

    x (..., d); fc_weight (hidden, d); proj_weight (d, hidden); no biases. Under autocast the products run in
    the autocast dtype, as ``nn.Linear`` would. ``fused`` None takes the Triton path wherever it is available
    and the products run in 16-bit floats (float32 stays with cuBLAS: Triton would round it to TF32).
    """
    if fc_weight.dim() != 2 or proj_weight.dim() != 2 or fc_weight.shape[1] != x.shape[-1] or \
            proj_weight.shape != fc_weight.shape[::-1]:
        raise ValueError(f"expected x (..., d), fc_weight (hidden, d), proj_weight (d, hidden); got {tuple(x.shape)}, "
                         f"{tuple(fc_weight.shape)}, {tuple(proj_weight.shape)}")
    available = fused_mlp_available(x.device)
    if fused and not available:
        raise RuntimeError(f"the fused MLP needs Triton and a CUDA tensor (got a {x.device.type} tensor"
                           f"{'' if triton else ' and no Triton'}); pass fused=None to fall back")
    dtype = autocast_dtype(x)
    sixteen_bit = dtype != torch.float32 or TRITON_INTERPRETED  # tl.dot would round float32 inputs to TF32
    if fused and not sixteen_bit:
        raise ValueError("the fused MLP multiplies 16-bit floats; run it under autocast or pass bfloat16/float16")
    if not (available if fused is None else fused) or not sixteen_bit:
        return F.linear(F.gelu(F.linear(x, fc_weight)), proj_weight)
    with torch.autocast(x.device.type, enabled=False):
        flat = x.reshape(-1, x.shape[-1]).to(dtype).contiguous()
        out = _FusedGeluMLP.apply(flat, fc_weight.to(dtype), proj_weight.to(dtype))
    return out.reshape(*x.shape[:-1], out.shape[-1])
