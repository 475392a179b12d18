"""Lesson 09's image + text pieces: captions, tokenizer, InfoNCE, cross-attention, the decoder's masks, captioning."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_course import multimodal as M
from attention_course.attention import scaled_dot_product_attention
from attention_course.vision import ViT


def test_held_out_templates_are_new_combinations_of_seen_words():
    seen = {w for t in M.TRAIN_TEMPLATES for d in range(10) for w in M.caption(t, d).split()}
    for template in M.HELD_OUT_TEMPLATES:
        assert template not in M.TRAIN_TEMPLATES
        for digit in range(10):
            text = M.caption(template, digit)
            assert set(text.split()) <= seen, text
            assert text not in {M.caption(t, d) for t in M.TRAIN_TEMPLATES for d in range(10)}
            assert M.digit_named(text) == digit
    assert M.digit_named("a 7 or a seven") == 7 and M.digit_named("a 7 or an eight") is None
    assert M.digit_named("a drawing of a") is None


def test_tokenizer_pads_and_round_trips():
    tokenizer = M.WordTokenizer()
    ids = tokenizer.encode(["the digit 7", "a photo of the number seven"], 9, bos=True, eos=True)
    assert ids.shape == (2, 9) and ids[0, 0] == tokenizer.bos_id and ids[0, 4] == tokenizer.eos_id
    assert (ids[0, 5:] == tokenizer.pad_id).all()
    assert tokenizer.decode(ids[1, 1:]) == "a photo of the number seven"
    assert tokenizer.encode(["a unicorn"], 3)[0, 1] == tokenizer.unk_id


def test_info_nce_matches_its_definition_and_prefers_matching_pairs():
    torch.manual_seed(0)
    a, b = torch.randn(6, 8), torch.randn(6, 8)
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / 0.1
    by_hand = -(torch.log_softmax(logits, 1).diagonal().mean() + torch.log_softmax(logits, 0).diagonal().mean()) / 2
    assert torch.allclose(M.info_nce(a, b, 0.1), by_hand)
    assert M.info_nce(a, a * 3, 0.05) < M.info_nce(a, b, 0.05)  # scale does not matter, matching does
    assert math.isclose(M.info_nce(a, a, 1e6).item(), math.log(6), rel_tol=1e-4)  # huge temperature: uniform


def test_cross_attention_fused_and_from_scratch_agree_and_weights_cover_the_memory():
    torch.manual_seed(0)
    layer = M.CrossAttention(16, 4).eval()
    x, memory = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    mask = torch.rand(2, 5, 7) > 0.3
    mask[..., 0] = True
    fused = layer(x, memory, mask)
    layer.fused = False
    assert torch.allclose(fused, layer(x, memory, mask), atol=1e-5)
    assert layer.last_weights.shape == (2, 4, 5, 7)
    assert torch.allclose(layer.last_weights.sum(-1), torch.ones(2, 4, 5))
    assert (layer.last_weights[~mask[:, None].expand(-1, 4, -1, -1)] == 0).all()
    q = layer.q(x).view(2, 5, 4, 4).transpose(1, 2)
    k, v = (t.view(2, 7, 4, 4).transpose(1, 2) for t in layer.kv(memory).chunk(2, -1))
    heads, _ = scaled_dot_product_attention(q, k, v, mask[:, None])
    assert torch.allclose(layer.out(heads.transpose(1, 2).reshape(2, 5, 16)), fused, atol=1e-5)


def test_decoder_masks_are_causal_with_key_padding_and_cross_is_full():
    tokens = torch.tensor([[1, 5, 6, 0, 0], [1, 7, 8, 9, 2]])
    self_mask, cross_mask = M.decoder_masks(tokens, 0, 3)
    assert self_mask[0].int().tolist() == [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0],
                                           [1, 1, 1, 0, 0]]
    assert torch.equal(self_mask[1], torch.ones(5, 5, dtype=torch.bool).tril())
    assert cross_mask.shape == (2, 5, 3) and cross_mask.all()


def test_captioner_does_not_look_ahead():
    torch.manual_seed(0)
    model = M.Captioner(20, vit=dict(patch=7, d_model=16, n_heads=2, n_layers=1), n_layers=2).eval()
    images = torch.rand(1, 28, 28)
    tokens = torch.tensor([[1, 5, 6, 7]])
    changed = tokens.clone()
    changed[0, 3] = 9
    with torch.no_grad():
        before, after = model(images, tokens), model(images, changed)
    assert torch.allclose(before[:, :3], after[:, :3], atol=1e-6) and not torch.allclose(before[:, 3], after[:, 3])


def test_generate_returns_tokens_and_one_cross_attention_map_per_step():
    torch.manual_seed(0)
    tokenizer = M.WordTokenizer()
    model = M.Captioner(len(tokenizer), vit=dict(patch=7, d_model=16, n_heads=2, n_layers=1), n_layers=1)
    tokens, maps = model.generate(torch.rand(3, 28, 28), tokenizer, max_len=5)
    assert tokens.shape[0] == 3 and maps.shape == (3, tokens.shape[1], 2, 17)  # [CLS] + 16 patches
    assert torch.allclose(maps.sum(-1), torch.ones(maps.shape[:-1]), atol=1e-5)
    assert model.blocks[-1].cross.fused


@pytest.mark.parametrize("encoder", [None, "shared"])
def test_models_accept_a_trained_image_encoder(encoder):
    vit = ViT(patch=7, d_model=16, n_heads=2, n_layers=1)
    given = vit if encoder else None
    clip = M.ContrastiveModel(30, vit=dict(patch=7, d_model=16, n_heads=2, n_layers=1), image_encoder=given)
    assert (clip.image_encoder is vit) == bool(encoder)
    emb = clip.encode_images(torch.rand(2, 28, 28))
    assert emb.shape == (2, 64) and torch.allclose(emb.norm(dim=-1), torch.ones(2))


def test_contrastive_training_lowers_the_loss_and_zero_shot_predicts_digits():
    from attention_course.vision import mnist_split

    torch.manual_seed(0)
    x_train, y_train, x_test, _ = mnist_split()
    tokenizer = M.WordTokenizer()
    clip = M.ContrastiveModel(len(tokenizer), vit=dict(patch=7, d_model=16, n_heads=2, n_layers=1), text_layers=1)
    history = M.train_contrastive(clip, tokenizer, x_train[:200], y_train[:200], epochs=6, batch_size=50, lr=3e-3,
                                  progress=False)
    assert np.mean(history["loss"][-4:]) < np.mean(history["loss"][:4]) - 0.05
    predicted = M.zero_shot_predict(clip, tokenizer, x_test[:20], M.HELD_OUT_TEMPLATES[0])
    assert predicted.shape == (20,) and predicted.min() >= 0 and predicted.max() <= 9
