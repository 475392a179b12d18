import math

import pytest
import torch

from attention_course.core.gpt import GPT, GPTConfig, flops_per_token, sample_next


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, d_model=16))


def test_shapes_and_initial_loss_is_near_uniform(tiny):
    tokens = torch.randint(11, (3, 16))
    logits, loss = tiny(tokens, tokens)
    assert logits.shape == (3, 16, 11)
    assert abs(loss.item() - math.log(11)) < 0.3
    assert loss.requires_grad and not logits.requires_grad  # with targets, only the loss is differentiated
    assert tiny(tokens)[0].requires_grad


def test_future_tokens_do_not_change_past_logits(tiny):
    tokens = torch.randint(11, (1, 10))
    changed = tokens.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % 11
    with torch.no_grad():
        torch.testing.assert_close(tiny(tokens)[0][:, :6], tiny(changed)[0][:, :6])


def test_last_only_gives_the_last_positions_logits_alone(tiny):
    tokens = torch.randint(11, (3, 9))
    with torch.no_grad():
        full, _ = tiny(tokens)
        last, _ = tiny(tokens, last_only=True)
    assert last.shape == (3, 1, 11)
    torch.testing.assert_close(last, full[:, -1:])
    with pytest.raises(ValueError, match="needs them all"):
        tiny(tokens, tokens, last_only=True)


def test_post_ln_and_unfused_variants_run(tiny):
    for pre_ln, fused in ((False, True), (True, False)):
        model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, d_model=16, pre_ln=pre_ln, fused=fused))
        assert model(torch.randint(11, (2, 8)))[0].shape == (2, 8, 11)


def test_weights_are_tied_and_counted_once(tiny):
    assert tiny.lm_head.weight is tiny.token_embedding.weight
    assert tiny.num_params(non_embedding=False) - tiny.num_params() == 16 * 16


def test_too_long_input_and_bad_config_are_explained(tiny):
    with pytest.raises(ValueError, match="exceeds the context"):
        tiny(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(vocab_size=5, n_head=5, d_model=16)


def test_generate_and_sampling(tiny):
    out = tiny.generate(torch.zeros(2, 1, dtype=torch.long), 20, temperature=0)
    assert out.shape == (2, 21) and torch.equal(out[0], out[1])  # greedy is deterministic
    logits = torch.tensor([[0.0, 5.0, 4.0, -1.0]])
    assert sample_next(logits, temperature=0).item() == 1
    draws = {sample_next(logits, 1.0, top_k=2, generator=torch.Generator().manual_seed(i)).item() for i in range(200)}
    assert draws == {1, 2}
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, -1.0)


def test_flops_per_token_formula():
    config = GPTConfig(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, d_model=768)
    assert flops_per_token(config, 124_000_000) == 6 * 124_000_000 + 12 * 12 * 768 * 1024
