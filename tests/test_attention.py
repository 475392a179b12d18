import math

import pytest
import torch
import torch.nn.functional as F

from attention_course.core import attention as A


def qkv(*batch, tq=6, tk=7, d=16, dv=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, tq, d, generator=g), torch.randn(*batch, tk, d, generator=g),
            torch.randn(*batch, tk, dv, generator=g))


@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
def test_sdpa_matches_torch_without_mask(batch):
    q, k, v = qkv(*batch)
    out, weights = A.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(*batch, 6))


def test_sdpa_matches_torch_with_causal_and_padding_masks():
    q, k, v = qkv(2, 3, tq=7, tk=7)
    causal = A.causal_mask(7)
    padding = A.padding_mask(torch.tensor([7, 4]), 7)[:, None, None, :]
    for mask in (causal, padding, causal & padding):
        out, weights = A.scaled_dot_product_attention(q, k, v, mask)
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-5, rtol=1e-5)
        assert (weights[..., ~torch.broadcast_to(mask, weights.shape)[0, 0]] == 0).all() if mask.dim() == 2 else True
    out, _ = A.scaled_dot_product_attention(q, k, v, causal)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5, rtol=1e-5)


def test_masked_keys_get_zero_weight_and_fully_masked_rows_are_zero():
    q, k, v = qkv(tq=2, tk=3)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    out, weights = A.scaled_dot_product_attention(q, k, v, mask)
    assert weights[0, 1] == 0 and torch.isclose(weights[0].sum(), torch.tensor(1.0))
    assert torch.equal(weights[1], torch.zeros(3)) and torch.equal(out[1], torch.zeros(5))


def test_scaling_is_by_sqrt_d():
    q, k, v = qkv(tq=1, tk=2, d=4)
    _, weights = A.scaled_dot_product_attention(q, k, v)
    scores = (q @ k.T) / math.sqrt(4)
    torch.testing.assert_close(weights, torch.softmax(scores, -1))


def test_sdpa_rejects_bad_input_clearly():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="same last dimension"):
        A.scaled_dot_product_attention(q, k[..., :3], v)
    with pytest.raises(TypeError, match="bool"):
        A.scaled_dot_product_attention(q, k, v, torch.ones(6, 7))
    with pytest.raises(ValueError, match="does not broadcast"):
        A.scaled_dot_product_attention(q, k, v, torch.ones(5, 7, dtype=torch.bool))


def test_masks():
    assert torch.equal(A.causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    assert torch.equal(A.padding_mask(torch.tensor([2, 0, 3]), 3),
                       torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool))
    with pytest.raises(ValueError, match="lengths must lie in"):
        A.padding_mask(torch.tensor([4]), 3)
    with pytest.raises(ValueError):
        A.causal_mask(0)


def test_positional_encoding_matches_the_paper():
    pe = A.sinusoidal_positional_encoding(50, 16)
    t, i = 7, 3
    assert pe.shape == (50, 16)
    assert math.isclose(pe[t, 2 * i].item(), math.sin(t / 10000 ** (2 * i / 16)), abs_tol=1e-6)
    assert math.isclose(pe[t, 2 * i + 1].item(), math.cos(t / 10000 ** (2 * i / 16)), abs_tol=1e-6)
    assert torch.equal(pe[0, 1::2], torch.ones(8))
    assert A.sinusoidal_positional_encoding(4, 5).shape == (4, 5)  # odd widths work


def test_split_and_merge_heads_are_inverse_and_keep_time_order():
    x = torch.arange(2 * 3 * 8.0).view(2, 3, 8)
    heads = A.split_heads(x, 2)
    assert heads.shape == (2, 2, 3, 4)
    assert torch.equal(heads[0, 1, 2], x[0, 2, 4:])
    assert torch.equal(A.merge_heads(heads), x)
    with pytest.raises(ValueError, match="divisible"):
        A.split_heads(x, 3)


def _copy_into_torch(module: A.MultiHeadAttention) -> torch.nn.MultiheadAttention:
    d = module.out.in_features
    mha = torch.nn.MultiheadAttention(d, module.n_heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(module.qkv.weight)
        mha.in_proj_bias.copy_(module.qkv.bias)
        mha.out_proj.weight.copy_(module.out.weight)
        mha.out_proj.bias.copy_(module.out.bias)
    return mha


@pytest.mark.parametrize("fused", [True, False])
def test_multi_head_module_matches_torch(fused):
    torch.manual_seed(0)
    module = A.MultiHeadAttention(24, 4, fused=fused).eval()
    reference = _copy_into_torch(module).eval()
    x = torch.randn(3, 9, 24)
    mask = A.causal_mask(9)
    with torch.no_grad():
        expected, _ = reference(x, x, x, attn_mask=~mask, need_weights=False)
        torch.testing.assert_close(module(x, mask), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(module(x, is_causal=True), expected, atol=1e-5, rtol=1e-5)
        padding = A.padding_mask(torch.tensor([9, 5, 1]), 9)
        expected, _ = reference(x, x, x, key_padding_mask=~padding, need_weights=False)
        torch.testing.assert_close(module(x, padding[:, None, :]), expected, atol=1e-5, rtol=1e-5)


def test_functional_multi_head_matches_module():
    torch.manual_seed(1)
    module = A.MultiHeadAttention(12, 3, bias=False, fused=False)
    w_q, w_k, w_v = (w.T for w in module.qkv.weight.chunk(3))
    x = torch.randn(2, 5, 12)
    got = A.multi_head_attention(x, w_q, w_k, w_v, module.out.weight.T, 3, A.causal_mask(5))
    torch.testing.assert_close(got, module(x, A.causal_mask(5)), atol=1e-5, rtol=1e-5)
    assert module.last_weights.shape == (2, 3, 5, 5)


@pytest.mark.parametrize("pre_ln", [True, False])
def test_transformer_block(pre_ln):
    torch.manual_seed(2)
    block = A.TransformerBlock(16, 4, pre_ln=pre_ln)
    x = torch.randn(2, 6, 16, requires_grad=True)
    y = block(x, is_causal=True)
    assert y.shape == x.shape
    y[:, 0].sum().backward()
    assert torch.all(x.grad[:, 1:] == 0), "causal: position 0 must not depend on later positions"
    if not pre_ln:  # Post-LN ends with a LayerNorm: every token is normalised
        torch.testing.assert_close(y.mean(-1), torch.zeros(2, 6), atol=1e-5, rtol=0)
    fused_block = A.TransformerBlock(16, 4, pre_ln=pre_ln, fused=False)
    fused_block.load_state_dict(block.state_dict())
    torch.testing.assert_close(fused_block(x, is_causal=True), y, atol=1e-5, rtol=1e-5)
