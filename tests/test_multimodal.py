"""Lesson 09's image + text pieces: captions, tokenizer, InfoNCE, cross-attention, the decoder's masks, captioning."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_course.beyond import multimodal as M
from attention_course.beyond.vision import ViT
from attention_course.core.attention import scaled_dot_product_attention


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
    from attention_course.beyond.vision import mnist_split

    torch.manual_seed(0)
    x_train, y_train, x_test, _ = mnist_split()
    tokenizer = M.WordTokenizer()
    clip = M.ContrastiveModel(len(tokenizer), vit=dict(patch=7, d_model=16, n_heads=2, n_layers=1), text_layers=1)
    history = M.train_contrastive(clip, tokenizer, x_train[:200], y_train[:200], epochs=6, batch_size=50, lr=3e-3,
                                  progress=False)
    assert np.mean(history["loss"][-4:]) < np.mean(history["loss"][:4]) - 0.05
    predicted = M.zero_shot_predict(clip, tokenizer, x_test[:20], M.HELD_OUT_TEMPLATES[0])
    assert predicted.shape == (20,) and predicted.min() >= 0 and predicted.max() <= 9


# ---------------------------------------------------------------- zero-shot on held-out classes


def test_held_out_digits_are_a_proper_subset_and_seen_mask_removes_them():
    assert 0 < len(M.HELD_OUT_DIGITS) < 10 and set(M.HELD_OUT_DIGITS) <= set(range(10))
    labels = torch.tensor([0, 2, 5, 7, 8, 9, 2])
    mask = M.seen_mask(labels, held_out=(2, 5, 8))
    assert mask.tolist() == [True, False, False, True, False, True, False]
    assert M.seen_mask(labels, held_out=()).all()


def test_wilson_interval_matches_hand_computed_values():
    # 8 of 10 at z = 1.96: centre (0.8 + 0.19208) / 1.38416, half 1.96 * sqrt(0.016 + 0.0096040) / 1.38416
    low, high = M.accuracy_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = M.accuracy_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)
    assert M.accuracy_interval(50, 50)[1] == 1.0
    for bad in ((3, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError):
            M.accuracy_interval(*bad)


class _Oracle(M.ContrastiveModel):
    """Embeds an image of digit d (its pixel value) and any caption naming d onto the same axis, so zero-shot is
    perfect for every digit it is told about; ``unknown`` digits' captions land on a shared wrong axis."""

    def __init__(self, tokenizer, unknown=()):
        super().__init__(len(tokenizer), vit=dict(patch=7, d_model=16, n_heads=2, n_layers=1))
        self.tokenizer, self.unknown = tokenizer, set(unknown)

    def encode_images(self, images):
        digits = images.flatten(1)[:, 0].round().long()
        return F.one_hot(digits, 11).float()

    def encode_texts(self, ids):
        digits = [M.digit_named(self.tokenizer.decode(row)) for row in ids]
        return F.one_hot(torch.tensor([10 if d in self.unknown else d for d in digits]), 11).float()


def test_zero_shot_predict_restricts_the_candidates():
    tokenizer = M.WordTokenizer()
    images = torch.arange(10.0)[:, None, None].expand(10, 28, 28)
    predicted = M.zero_shot_predict(_Oracle(tokenizer), tokenizer, images, M.TRAIN_TEMPLATES[0], digits=[2, 5, 8])
    assert set(predicted.tolist()) <= {2, 5, 8}
    assert predicted[[2, 5, 8]].tolist() == [2, 5, 8]


def test_zero_shot_report_scores_groups_apart_with_chance_and_intervals():
    tokenizer = M.WordTokenizer()
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 2, 5])
    images = labels.float()[:, None, None].expand(-1, 28, 28)
    perfect = M.zero_shot_report(_Oracle(tokenizer), tokenizer, images, labels, M.HELD_OUT_TEMPLATES[0], (2, 5, 8))
    table = {(r["group"], r["candidates"]): r for r in perfect}
    assert set(table) == {("seen", "all ten"), ("seen", "own group"), ("held-out", "all ten"), ("held-out", "own group")}
    assert table[("seen", "all ten")]["n"] == 7 and table[("held-out", "own group")]["n"] == 5
    assert table[("seen", "all ten")]["chance"] == 0.1 and table[("held-out", "own group")]["chance"] == pytest.approx(1 / 3)
    assert table[("seen", "own group")]["chance"] == pytest.approx(1 / 7)
    assert all(r["accuracy"] == 1.0 for r in perfect)
    assert table[("held-out", "all ten")]["interval"] == pytest.approx(M.accuracy_interval(5, 5))
    # a model that cannot place the held-out captions: seen digits stay perfect, held-out ones fail
    blind = M.zero_shot_report(_Oracle(tokenizer, unknown=(2, 5, 8)), tokenizer, images, labels,
                               M.HELD_OUT_TEMPLATES[0], (2, 5, 8))
    table = {(r["group"], r["candidates"]): r["accuracy"] for r in blind}
    assert table[("seen", "all ten")] == 1.0 and table[("held-out", "all ten")] < 0.5
    with pytest.raises(ValueError, match="no test image"):
        M.zero_shot_report(_Oracle(tokenizer), tokenizer, images[:2], labels[:2], M.HELD_OUT_TEMPLATES[0], (2, 5, 8))
