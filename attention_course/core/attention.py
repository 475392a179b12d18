"""Scaled dot-product attention, masks, multi-head attention, positional encodings, the Transformer block.

Mask convention throughout (the same as ``torch.nn.functional.scaled_dot_product_attention``):
a boolean mask broadcastable to (..., T_query, T_key) where True means "may attend".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fused_mlp import gelu_mlp


def _check_mask(mask: Tensor | None, scores_shape: torch.Size) -> None:
    if mask is None:
        return
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = may attend), got dtype {mask.dtype}")
    try:
        torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape {tuple(scores_shape)}"
        ) from None


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(d) + mask) v, returning (output, weights).

    q: (..., Tq, d), k: (..., Tk, d), v: (..., Tk, dv); mask: bool, broadcastable to (..., Tq, Tk),
    True = may attend. A query row whose keys are all masked gets zero weights and a zero output.
    """
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same last dimension, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same length, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    _check_mask(mask, scores.shape)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.nan_to_num(0.0)  # rows with every key masked: softmax of all -inf is NaN
    return weights @ v, weights


def causal_mask(size: int, device: torch.device | str | None = None) -> Tensor:
    """(size, size) bool mask, True on and below the diagonal: position t may attend to 0..t."""
    if size < 1:
        raise ValueError(f"size must be a positive sequence length, got {size}")
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B, max_len) bool mask, True on each sequence's real (non-padding) positions.

    As a key mask for scores (B, Tq, Tk) use ``mask[:, None, :]``; multi-head code adds the head axis itself.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (one length per sequence), got shape {tuple(lengths.shape)}")
    if (lengths < 0).any() or (lengths > max_len).any():
        raise ValueError(f"lengths must lie in 0..{max_len}, got {lengths.tolist()}")
    positions = torch.arange(max_len, device=lengths.device)
    return positions[None, :] < lengths[:, None]


def sinusoidal_positional_encoding(length: int, d_model: int) -> Tensor:
    """(length, d_model) encodings of Vaswani et al. 2017: PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(...)."""
    if length < 1 or d_model < 1:
        raise ValueError(f"length and d_model must be positive, got {length} and {d_model}")
    position = torch.arange(length, dtype=torch.float32)[:, None]
    even_dims = torch.arange(0, d_model, 2, dtype=torch.float32)
    angles = position / torch.pow(10000.0, even_dims / d_model)
    encoding = torch.zeros(length, d_model)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return encoding


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, T, d_model) -> (B, n_heads, T, d_model // n_heads): reshape, then move heads before time."""
    batch, length, d_model = x.shape
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
    return x.view(batch, length, n_heads, d_model // n_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, n_heads, T, d_head) -> (B, T, n_heads * d_head), the inverse of ``split_heads``."""
    batch, n_heads, length, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, length, n_heads * d_head)


def _head_mask(mask: Tensor | None) -> Tensor | None:
    # A (B, Tq, Tk) mask needs a head axis to broadcast against (B, H, Tq, Tk).
    return mask.unsqueeze(1) if mask is not None and mask.dim() == 3 else mask


def multi_head_attention(
    x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor, w_o: Tensor, n_heads: int, mask: Tensor | None = None
) -> Tensor:
    """Multi-head self-attention with weights applied as ``x @ w``; x: (B, T, d_model), each w (d_model, d_model)."""
    if x.dim() != 3:
        raise ValueError(f"x must be (batch, time, d_model), got shape {tuple(x.shape)}")
    q, k, v = (split_heads(x @ w, n_heads) for w in (w_q, w_k, w_v))
    heads, _ = scaled_dot_product_attention(q, k, v, _head_mask(mask))
    return merge_heads(heads) @ w_o


class KVCache:
    """One layer's key/value cache for generation: the keys and values of every position seen so far.

    A decoder re-uses them: each new token computes its own query, key and value, appends the key and
    value here, and attends over all of them, instead of recomputing the whole context at every step.
    """

    def __init__(self):
        self.keys: Tensor | None = None  # (B, H, T_seen, d_head)
        self.values: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.shape[-2]

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append the new positions' keys and values (B, H, T_new, d_head) along time; return all of them."""
        if self.keys is None:
            self.keys, self.values = k, v
        else:
            self.keys = torch.cat([self.keys, k], dim=-2)
            self.values = torch.cat([self.values, v], dim=-2)
        return self.keys, self.values

    def truncate(self, length: int) -> None:
        """Forget every position from ``length`` on (a rejected guess must not be attended to); never grows."""
        if self.keys is not None and len(self) > length:
            self.keys, self.values = self.keys[..., :length, :], self.values[..., :length, :]


class StaticKVCache:
    """One layer's preallocated key/value cache for serving: ``max_batch x max_len`` positions, written in place.

    The growing ``KVCache`` concatenates (a new tensor, of a new shape, every token); this one keeps its shapes
    fixed from the first token to the last, so a decode step can be compiled and captured in a CUDA graph once
    and replayed for every token. Positions not yet written hold zeros and are hidden by ``visible``.
    """

    DECODE_ATTENTION = ("matmul", "fused")

    def __init__(self, max_batch: int, max_len: int, n_heads: int, d_head: int, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, decode_attention: str = "matmul"):
        if min(max_batch, max_len, n_heads, d_head) < 1:
            raise ValueError(f"max_batch, max_len, n_heads and d_head must be positive, got "
                             f"{max_batch}, {max_len}, {n_heads}, {d_head}")
        if decode_attention not in self.DECODE_ATTENTION:
            raise ValueError(f"decode_attention must be one of {self.DECODE_ATTENTION}, got {decode_attention!r}")
        # How one new query attends over the cache: "matmul" (the plain maths, which torch.compile fuses into a few
        # small kernels) or "fused" (PyTorch's scaled_dot_product_attention, whose kernels tile 64+ queries at a
        # time and leave most of a tile idle for one query; the generation benchmark's smoke profile runs both, and an
        # earlier H100 run timed both: results/generation_gpu_H100.json).
        self.decode_attention = decode_attention
        shape = (max_batch, n_heads, max_len, d_head)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        # Row p: the keys a query at position p may see (0..p). Indexed by position, so no shape depends on p.
        self.causal = torch.ones(max_len, max_len, dtype=torch.bool, device=device).tril()

    @property
    def max_batch(self) -> int:
        return self.keys.shape[0]

    @property
    def max_len(self) -> int:
        return self.keys.shape[2]

    def nbytes(self) -> int:
        """Bytes held by the keys and values: 2 x max_batch x heads x max_len x d_head x bytes per number."""
        return self.keys.numel() * self.keys.element_size() * 2

    def update(self, positions: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write the new keys and values (B, H, T_new, d_head) at ``positions`` (T_new,); return the batch's buffers
        (B, H, max_len, d_head), written and unwritten positions alike (``visible`` masks the latter)."""
        batch = k.shape[0]
        if batch > self.max_batch:
            raise ValueError(f"batch {batch} exceeds the cache's max_batch {self.max_batch}")
        if k.dtype != self.keys.dtype or k.device != self.keys.device:
            raise ValueError(f"keys of dtype {k.dtype} on {k.device} do not match the cache's {self.keys.dtype} on "
                             f"{self.keys.device}: build the cache with the model's dtype and device")
        keys, values = self.keys[:batch], self.values[:batch]
        keys.index_copy_(2, positions, k)  # in place: the buffers' addresses never change (CUDA graphs need that)
        values.index_copy_(2, positions, v)
        return keys, values

    def visible(self, positions: Tensor) -> Tensor:
        """(T_new, max_len) bool mask: the query at position p sees the cached keys 0..p, nothing later."""
        return self.causal.index_select(0, positions)


def cached_causal_mask(n_new: int, n_total: int, device=None) -> Tensor:
    """(n_new, n_total) bool mask for new queries at the last ``n_new`` of ``n_total`` positions.

    Query i sits at position ``n_total - n_new + i`` and may attend to every key up to and including it.
    """
    return torch.ones(n_new, n_total, dtype=torch.bool, device=device).tril(diagonal=n_total - n_new)


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection (like ``nn.MultiheadAttention``'s in_proj).

    ``fused=True`` calls PyTorch's ``scaled_dot_product_attention`` (FlashAttention / memory-efficient
    kernels where available); ``fused=False`` runs the course's from-scratch version and keeps the weights.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True, fused: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.fused = fused
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)
        self.last_weights: Tensor | None = None

    def forward(self, x: Tensor, mask: Tensor | None = None, is_causal: bool = False,
                cache: KVCache | StaticKVCache | None = None, positions: Tensor | None = None) -> Tensor:
        """Attend over ``x`` (B, T, d_model); with a ``cache``, x holds only the new positions, whose keys and
        values are appended to the cache, and the queries attend over every cached position. A
        ``StaticKVCache`` also needs ``positions`` (T,), the new tokens' positions, where their keys are written."""
        q, k, v = (split_heads(part, self.n_heads) for part in self.qkv(x).chunk(3, dim=-1))
        mask = _head_mask(mask)
        if isinstance(cache, StaticKVCache):
            if positions is None:
                raise ValueError("a StaticKVCache needs the new tokens' positions")
            k, v = cache.update(positions, k, v)
            visible = cache.visible(positions)  # causal over the filled prefix; the unwritten tail stays hidden
            mask = visible if mask is None else mask & visible
            is_causal = False
            if q.shape[-2] == 1 and cache.decode_attention == "matmul":
                heads, _ = scaled_dot_product_attention(q, k, v, mask)
                return self.out(merge_heads(heads))
        elif cache is not None:
            k, v = cache.update(k, v)
            if is_causal and q.shape[-2] > 1:  # SDPA's is_causal aligns top-left: wrong once keys outnumber queries
                causal = cached_causal_mask(q.shape[-2], k.shape[-2], x.device)
                mask = causal if mask is None else mask & causal
            is_causal = False  # a single new token may see every cached one
        if self.fused:
            drop = self.dropout if self.training else 0.0
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, is_causal=is_causal)
        else:
            if is_causal:
                causal = causal_mask(x.shape[1], x.device)
                mask = causal if mask is None else mask & causal
            heads, self.last_weights = scaled_dot_product_attention(q, k, v, mask)
        return self.out(merge_heads(heads))


class TransformerBlock(nn.Module):
    """Attention and a feed-forward network, each wrapped in a residual connection with LayerNorm.

    ``pre_ln=True`` normalises each sublayer's input (GPT-2 style, stable at high learning rates);
    ``pre_ln=False`` normalises after the residual sum, as in the original paper (Post-LN).
    ``bias=False`` drops every bias (linear layers and LayerNorm), as many modern GPTs do.
    ``fused_mlp=True`` (needs ``bias=False``) computes the feed-forward network with ``fused_mlp.gelu_mlp``: the
    same weights and maths, GELU inside the matrix products on CUDA.
    """

    def __init__(
        self, d_model: int, n_heads: int, d_ff: int | None = None, dropout: float = 0.0,
        pre_ln: bool = True, fused: bool = True, bias: bool = True, fused_mlp: bool = False,
    ):
        super().__init__()
        if fused_mlp and bias:
            raise ValueError("fused_mlp=True needs bias=False: the fused feed-forward network has no biases")
        self.fused_mlp = fused_mlp
        d_ff = d_ff or 4 * d_model
        self.pre_ln = pre_ln
        self.attn = MultiHeadAttention(d_model, n_heads, dropout, bias=bias, fused=fused)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff, bias=bias), nn.GELU(), nn.Linear(d_ff, d_model, bias=bias))
        self.norm1 = nn.LayerNorm(d_model, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None, is_causal: bool = False,
                cache: KVCache | StaticKVCache | None = None, positions: Tensor | None = None) -> Tensor:
        if self.pre_ln:
            x = x + self.drop(self.attn(self.norm1(x), mask, is_causal, cache, positions))
            return x + self.drop(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn(x, mask, is_causal, cache, positions)))
        return self.norm2(x + self.drop(self.feed_forward(x)))

    def feed_forward(self, x: Tensor) -> Tensor:
        """``self.ff(x)``; with ``fused_mlp``, the same maths through ``gelu_mlp``."""
        if self.fused_mlp:
            return gelu_mlp(x, self.ff[0].weight, self.ff[2].weight)
        return self.ff(x)
