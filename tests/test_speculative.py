"""Speculative decoding: exactly the target's greedy tokens whatever the draft, fewer target passes when the draft
agrees, caches cut back to the accepted tokens, and clear errors."""

import math

import pytest
import torch

from attention_course.core.gpt import GPT, GPTConfig
from attention_course.deploy.speculative import speculative_generate, truncate_caches

TARGET = GPTConfig(vocab_size=40, block_size=64, n_layer=2, n_head=2, d_model=32)
DRAFT = GPTConfig(vocab_size=40, block_size=64, n_layer=1, n_head=1, d_model=16)


def _model(config: GPTConfig, seed: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(config).eval()


def _prompt(length: int, seed: int) -> torch.Tensor:
    return torch.randint(0, TARGET.vocab_size, (1, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("lookahead,prompt,new", [(1, 5, 20), (3, 1, 30), (4, 12, 17), (8, 7, 40)])
def test_a_foreign_draft_still_gives_exactly_the_targets_greedy_tokens(lookahead, prompt, new):
    target, draft = _model(TARGET, 0), _model(DRAFT, 1)
    tokens = _prompt(prompt, lookahead)
    expected = target.generate(tokens, new, temperature=0, use_cache=True)
    out, stats = speculative_generate(target, draft, tokens, new, lookahead)
    assert torch.equal(out, expected)
    assert stats.new_tokens == new and stats.accepted <= stats.proposed
    assert stats.rounds == new - stats.accepted  # every round adds the target's own token besides the kept guesses


def test_a_draft_that_agrees_is_always_accepted_and_saves_target_passes():
    # the target as its own draft agrees everywhere: each pass yields lookahead + 1 tokens
    target = _model(TARGET, 0)
    tokens, new, lookahead = _prompt(6, 3), 23, 4
    out, stats = speculative_generate(target, target, tokens, new, lookahead)
    assert torch.equal(out, target.generate(tokens, new, temperature=0, use_cache=True))
    assert stats.acceptance_rate == 1.0 and stats.rounds == math.ceil(new / (lookahead + 1))
    assert stats.tokens_per_target_pass == pytest.approx(new / stats.rounds)


class _SometimesWrong(GPT):
    """The target's own weights, but after every input token divisible by 3 it prefers token 0: a draft that agrees
    on some guesses and not on others, so that both of the caches' cut-backs run."""

    def forward(self, tokens, targets=None, caches=None, positions=None):
        logits, loss = super().forward(tokens, targets, caches, positions)
        wrong = (tokens % 3 == 0).unsqueeze(-1)
        boost = torch.zeros_like(logits)
        boost[..., 0] = 1e4
        return torch.where(wrong, logits + boost, logits), loss


def test_a_draft_that_agrees_sometimes_is_cut_back_and_still_exact():
    target = _model(TARGET, 0)
    draft = _SometimesWrong(TARGET).eval()
    draft.load_state_dict(target.state_dict())
    for seed in range(3):
        tokens = _prompt(4, seed)
        out, stats = speculative_generate(target, draft, tokens, 40, 3)
        assert torch.equal(out, target.generate(tokens, 40, temperature=0, use_cache=True))
        assert 0 < stats.accepted < stats.proposed, stats


def test_truncate_caches_forgets_the_rejected_positions():
    model = _model(TARGET, 0)
    caches = model.new_caches()
    model(_prompt(10, 0), caches=caches)
    truncate_caches(caches, 6)
    assert all(len(cache) == 6 and cache.values.shape[-2] == 6 for cache in caches)
    truncate_caches(caches, 8)  # never grows
    assert len(caches[0]) == 6


def test_errors_say_what_was_expected():
    target, draft = _model(TARGET, 0), _model(DRAFT, 1)
    with pytest.raises(ValueError, match="batch 1"):
        speculative_generate(target, draft, torch.zeros(2, 3, dtype=torch.long), 4)
    with pytest.raises(TypeError, match="int64"):
        speculative_generate(target, draft, torch.zeros(1, 3, dtype=torch.int32), 4)
    with pytest.raises(ValueError, match="vocabulary"):
        speculative_generate(target, _model(GPTConfig(vocab_size=41, block_size=64, n_layer=1, n_head=1, d_model=16), 2),
                             _prompt(3, 0), 4)
    with pytest.raises(ValueError, match="context"):
        speculative_generate(target, draft, _prompt(60, 0), 5)
    with pytest.raises(ValueError, match="positive"):
        speculative_generate(target, draft, _prompt(3, 0), 4, lookahead=0)
    with pytest.raises(TypeError, match="GPT"):
        speculative_generate(target, torch.nn.Linear(2, 2), _prompt(3, 0), 4)
