"""Speculative decoding: a small draft model guesses a few tokens, the large target checks them in one pass.

Greedy decoding spends one forward pass of the target per token, and at batch 1 that pass is bound by reading the
weights, not by arithmetic (lesson 08): checking ``lookahead`` guessed tokens costs the target about as much as
producing one. ``speculative_generate`` (Leviathan et al., 2023; Chen et al., 2023; greedy form) lets the cheap
``draft`` propose ``lookahead`` tokens one by one, runs the ``target`` once over all of them with its key/value
cache, keeps the longest prefix on which the target's own greedy choice agrees, and adds the target's token at the
first disagreement (or one more after a fully accepted round). The output is the target's greedy continuation
(exactly, up to the rounding of a multi-token pass against a one-token pass); what the draft changes is only how
many target passes it takes. Both caches are cut back to the accepted tokens after every round.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.attention import KVCache
from ..core.gpt import GPT


@dataclass
class SpeculativeStats:
    """What one ``speculative_generate`` call did: rounds (= target passes after the prompt's), draft tokens
    proposed and accepted, and new tokens made."""

    rounds: int = 0
    proposed: int = 0
    accepted: int = 0
    new_tokens: int = 0

    @property
    def acceptance_rate(self) -> float:
        """Share of the draft's proposals the target kept (0 when none was proposed)."""
        return self.accepted / self.proposed if self.proposed else 0.0

    @property
    def tokens_per_target_pass(self) -> float:
        """New tokens per target pass over the generated part (1.0 is plain greedy decoding)."""
        return self.new_tokens / self.rounds if self.rounds else 0.0


def truncate_caches(caches: list[KVCache], length: int) -> None:
    """Forget every cached position from ``length`` on, in every layer (a rejected guess must not be attended to)."""
    for cache in caches:
        cache.truncate(length)


def _greedy(model: GPT, tokens: Tensor, caches: list[KVCache]) -> Tensor:
    """The model's greedy next token after each of ``tokens`` (1, T), reading them into ``caches``: (1, T)."""
    logits, _ = model(tokens, caches=caches)
    return logits.argmax(-1)


def _check(target: GPT, draft: GPT, tokens: Tensor, max_new_tokens: int, lookahead: int) -> None:
    if not isinstance(target, GPT) or not isinstance(draft, GPT):
        raise TypeError("target and draft must both be the course's GPT")
    if target.config.vocab_size != draft.config.vocab_size:
        raise ValueError(f"target and draft must share a vocabulary: {target.config.vocab_size} tokens against "
                         f"{draft.config.vocab_size}")
    if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.shape[0] != 1 or tokens.shape[1] < 1:
        raise ValueError(f"tokens must be one prompt of shape (1, length >= 1), got "
                         f"{getattr(tokens, 'shape', type(tokens).__name__)}: speculative decoding here runs batch 1")
    if tokens.dtype != torch.long:
        raise TypeError(f"tokens must be int64 token ids, got dtype {tokens.dtype}")
    if max_new_tokens < 1 or lookahead < 1:
        raise ValueError(f"max_new_tokens and lookahead must be positive, got {max_new_tokens} and {lookahead}")
    context = min(target.config.block_size, draft.config.block_size)
    if tokens.shape[1] + max_new_tokens > context:
        raise ValueError(f"prompt ({tokens.shape[1]}) + new tokens ({max_new_tokens}) exceed the smaller model's "
                         f"context of {context}")


@torch.no_grad()
def speculative_generate(target: GPT, draft: GPT, tokens: Tensor, max_new_tokens: int,
                         lookahead: int = 4) -> tuple[Tensor, SpeculativeStats]:
    """Continue ``tokens`` (1, T) by ``max_new_tokens`` of ``target``'s greedy tokens, ``draft`` proposing up to
    ``lookahead`` at a time; return (1, T + max_new_tokens) and the call's ``SpeculativeStats``."""
    _check(target, draft, tokens, max_new_tokens, lookahead)
    modes = target.training, draft.training
    target.eval()
    draft.eval()
    target_caches, draft_caches = target.new_caches(), draft.new_caches()
    stats = SpeculativeStats()
    out = tokens
    # each cache holds every accepted token except the newest few, which wait in "unread" for that model's next pass
    target_unread, draft_unread = tokens, tokens
    while stats.new_tokens < max_new_tokens:
        guesses = min(lookahead, max_new_tokens - stats.new_tokens - 1)  # the target's own token always comes too
        proposal, feed = [], draft_unread
        for _ in range(guesses):
            feed = _greedy(draft, feed, draft_caches)[:, -1:]
            proposal.append(feed)
        proposed = torch.cat(proposal, dim=1) if proposal else tokens[:, :0]
        checked_from = len(target_caches[0]) + target_unread.shape[1] - 1  # cache length before the first guess
        choices = _greedy(target, torch.cat([target_unread, proposed], dim=1), target_caches)[:, -(guesses + 1):]
        agree = (proposed == choices[:, :guesses])[0].long()
        kept = int(agree.cumprod(0).sum())  # the longest agreeing prefix
        new = torch.cat([proposed[:, :kept], choices[:, kept:kept + 1]], dim=1)
        out = torch.cat([out, new], dim=1)
        stats.rounds += 1
        stats.proposed += guesses
        stats.accepted += kept
        stats.new_tokens += new.shape[1]
        truncate_caches(target_caches, checked_from + 1 + kept)
        target_unread = new[:, -1:]
        if kept < guesses:  # the draft read its guesses up to the last but one: cut back to the kept ones
            truncate_caches(draft_caches, checked_from + 1 + kept)
            draft_unread = new[:, -1:]
        elif guesses:  # all kept: the draft never read its last guess, nor the target's extra token
            draft_unread = new[:, -2:]
        else:  # nothing was guessed (the last token): the draft read nothing this round
            draft_unread = torch.cat([draft_unread, new], dim=1)
    target.train(modes[0])
    draft.train(modes[1])
    return out, stats
