"""The key/value cache: attending with a cache equals attending over the whole sequence at once."""

import pytest
import torch

from attention_course.core.attention import KVCache, MultiHeadAttention, TransformerBlock, cached_causal_mask


def test_cache_appends_along_time():
    cache = KVCache()
    assert len(cache) == 0
    k1, v1 = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    k2, v2 = torch.randn(2, 3, 1, 5), torch.randn(2, 3, 1, 5)
    cache.update(k1, v1)
    keys, values = cache.update(k2, v2)
    assert keys.shape == (2, 3, 5, 5) and len(cache) == 5
    assert torch.equal(keys, torch.cat([k1, k2], 2)) and torch.equal(values, torch.cat([v1, v2], 2))


def test_cached_causal_mask():
    mask = cached_causal_mask(2, 5)
    assert mask.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    assert torch.equal(cached_causal_mask(4, 4), torch.ones(4, 4, dtype=torch.bool).tril())


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("pre_ln", [True, False])
def test_block_with_cache_matches_full_causal_pass(fused, pre_ln):
    torch.manual_seed(0)
    block = TransformerBlock(16, 4, pre_ln=pre_ln, fused=fused).eval()
    x = torch.randn(2, 11, 16)
    full = block(x, is_causal=True)
    cache = KVCache()
    pieces = [block(x[:, :4], is_causal=True, cache=cache), block(x[:, 4:9], is_causal=True, cache=cache)]
    pieces += [block(x[:, t : t + 1], is_causal=True, cache=cache) for t in range(9, 11)]
    assert len(cache) == 11
    torch.testing.assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)


def test_attention_without_cache_is_unchanged():
    torch.manual_seed(1)
    attention = MultiHeadAttention(8, 2).eval()
    x = torch.randn(1, 6, 8)
    cache = KVCache()
    torch.testing.assert_close(attention(x, is_causal=True, cache=cache), attention(x, is_causal=True))
    # without is_causal a cached call lets every new query see every key
    cache = KVCache()
    torch.testing.assert_close(attention(x, cache=cache), attention(x))


@pytest.mark.parametrize("pre_ln", [True, False])
def test_generate_with_cache_gives_the_same_tokens(pre_ln):
    from attention_course.core.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, block_size=48, n_layer=2, n_head=2, d_model=32, pre_ln=pre_ln))
    prompt = torch.randint(40, (3, 7))
    naive = model.generate(prompt, 30, temperature=0)
    cached = model.generate(prompt, 30, temperature=0, use_cache=True)
    assert torch.equal(naive, cached)
    sampled = [model.generate(prompt, 20, temperature=1.0, top_k=10, generator=torch.Generator().manual_seed(3),
                              use_cache=use) for use in (False, True)]
    assert torch.equal(*sampled)
    assert model.training  # generate restores the mode


def test_cached_forward_matches_full_forward_and_checks_the_context():
    from attention_course.core.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, d_model=16)).eval()
    tokens = torch.randint(30, (2, 12))
    full, _ = model(tokens)
    caches = model.new_caches()
    parts = [model(tokens[:, :5], caches=caches)[0], model(tokens[:, 5:6], caches=caches)[0],
             model(tokens[:, 6:], caches=caches)[0]]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="exceeds the context"):
        model(tokens[:, :5], caches=caches)
    with pytest.raises(ValueError, match="must fit"):
        model.generate(tokens, 10, use_cache=True)
