"""A GPT: a decoder-only Transformer language model built from the course's TransformerBlock.

In the spirit of nanoGPT: learned position embeddings, Pre-LN blocks with causal fused attention,
a final LayerNorm and an output layer tied to the token embedding.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import KVCache, StaticKVCache, TransformerBlock
from .fused_loss import linear_cross_entropy


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    d_model: int = 384
    dropout: float = 0.0
    pre_ln: bool = True
    fused: bool = True
    bias: bool = True  # False: no biases in linear layers and LayerNorms (less memory traffic per step)
    fused_loss: bool = False  # True: LM head + cross-entropy fused (fused_loss.py); no logits returned
    fused_mlp: bool = False  # True (with bias=False): GELU inside the feed-forward products on CUDA (fused_mlp.py)

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_head={self.n_head}")


class GPT(nn.Module):
    """Token + position embeddings, ``n_layer`` causal Transformer blocks, a tied language-model head."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.block_size, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(config.d_model, config.n_head, dropout=config.dropout, pre_ln=config.pre_ln, fused=config.fused,
                             bias=config.bias, fused_mlp=config.fused_mlp)
            for _ in range(config.n_layer)
        )
        self.final_norm = nn.LayerNorm(config.d_model, bias=config.bias) if config.pre_ln else nn.Identity()
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight  # weight tying: one matrix reads and writes tokens
        self.apply(self._init_weights)
        for block in self.blocks:  # GPT-2: shrink the residual projections by depth
            for projection in (block.attn.out, block.ff[2]):
                nn.init.normal_(projection.weight, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (the token one is tied to the head)."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.position_embedding.weight.numel() if non_embedding else total

    def forward(self, tokens: Tensor, targets: Tensor | None = None,
                caches: list[KVCache] | list[StaticKVCache] | None = None,
                positions: Tensor | None = None, last_only: bool = False) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, vocab) and, given targets (B, T), the mean next-token cross-entropy.

        With targets, gradients flow through the loss only: the logits come back detached; with
        ``config.fused_loss`` (the head and loss fused, ``fused_loss.py``) None comes back in their place.
        With ``caches`` (one ``KVCache`` per block, see ``new_caches``), ``tokens`` are the positions after
        those already cached: only they are computed, attending over the cached keys and values too.
        With ``StaticKVCache`` caches (``generation.py``), ``positions`` (T,) says where ``tokens`` sit: a tensor,
        so that a compiled decode step never sees a Python number change from one token to the next.
        ``last_only=True`` returns the last position's logits only (B, 1, vocab), all that generation reads: the
        head is the largest matrix product, so a prompt's pass skips most of its work.
        """
        if last_only and targets is not None:
            raise ValueError("last_only=True returns one position's logits; training with targets needs them all")
        batch, length = tokens.shape
        if positions is None:
            start = len(caches[0]) if caches else 0
            if start + length > self.config.block_size:
                raise ValueError(f"sequence length {start + length} exceeds the context of {self.config.block_size} tokens")
            positions = torch.arange(start, start + length, device=tokens.device)
        x = self.drop(self.token_embedding(tokens) + self.position_embedding(positions))
        for i, block in enumerate(self.blocks):
            x = block(x, is_causal=True, cache=caches[i] if caches else None, positions=positions)
        if last_only:
            x = x[:, -1:]
        x = self.final_norm(x)
        if targets is not None and self.config.fused_loss:
            return None, linear_cross_entropy(x, self.lm_head.weight, targets)
        logits = self.lm_head(x)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        # The loss carries the gradient. Detached logits spare torch.compile a logits-sized zero gradient
        # for an output nobody differentiates (12 x 1024 x 50,304 numbers written every step at GPT-2 size).
        return logits.detach(), loss

    def new_caches(self) -> list[KVCache]:
        """One empty key/value cache per block, for ``forward(..., caches=...)``."""
        return [KVCache() for _ in self.blocks]

    @torch.no_grad()
    def generate(
        self, tokens: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
        generator: torch.Generator | None = None, use_cache: bool = False,
    ) -> Tensor:
        """Continue ``tokens`` (B, T) by sampling ``max_new_tokens`` tokens one at a time.

        Without a cache each step re-runs the whole context (its last ``block_size`` tokens). With
        ``use_cache=True`` the prompt runs once, filling a key/value cache per block, and each later step
        runs only the newest token: the same tokens for far less work. The cache keeps absolute positions,
        so prompt and new tokens together must fit in ``block_size``.
        """
        if use_cache and tokens.shape[1] + max_new_tokens > self.config.block_size:
            raise ValueError(f"with use_cache the prompt ({tokens.shape[1]}) and new tokens ({max_new_tokens}) "
                             f"must fit in the context of {self.config.block_size}")
        was_training = self.training
        self.eval()
        caches = self.new_caches() if use_cache else None
        pending = tokens  # what the model has not read yet: the prompt, then each new token
        for _ in range(max_new_tokens):
            if use_cache:
                logits, _ = self(pending, caches=caches)
            else:
                logits, _ = self(tokens[:, -self.config.block_size :])
            pending = sample_next(logits[:, -1].float(), temperature, top_k, generator)
            tokens = torch.cat([tokens, pending], dim=1)
        self.train(was_training)
        return tokens


def sample_next(
    logits: Tensor, temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Sample one token id per row of ``logits`` (B, vocab): scale by 1/temperature, keep the top k, softmax.

    temperature 0 means greedy decoding (argmax).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth_best = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    probabilities = torch.softmax(logits, dim=-1)
    if generator is not None and generator.device != probabilities.device:
        return torch.multinomial(probabilities.cpu(), 1, generator=generator).to(logits.device)
    return torch.multinomial(probabilities, 1, generator=generator)


def flops_per_token(config: GPTConfig, n_params: int) -> float:
    """Training FLOPs per token (forward + backward): 6 N for the weights + 12 L d T for attention scores.

    The standard estimate (Kaplan et al. 2020; PaLM appendix B): each weight costs 2 FLOPs per token forward
    and 4 backward; the attention score and weighted-sum products add 12 * layers * width * context.
    """
    return 6 * n_params + 12 * config.n_layer * config.d_model * config.block_size


def config_dict(config: GPTConfig) -> dict:
    return asdict(config)
