"""The parts' "build it and hit a target" checks: right builds pass and report the measured number; library
blocks, a model that peeks at the future, one without positions and a wrong return are refused (smoke sizes)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention_course.grading import check
from attention_course.grading._core import CheckFailed


def _layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + eps) * gamma + beta


class _Block(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.qkv, self.out = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.gamma1, self.gamma2 = nn.Parameter(torch.ones(d_model)), nn.Parameter(torch.ones(d_model))
        self.beta1, self.beta2 = nn.Parameter(torch.zeros(d_model)), nn.Parameter(torch.zeros(d_model))
        self.ff = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.causal = False

    def attend(self, x):
        batch, length, d_model = x.shape
        q, k, v = (t.view(batch, length, self.n_heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        if getattr(self, "manual", False):  # a learner's own attention: masked_fill(-1e9), then Tensor.softmax
            scores = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
            y = scores.masked_fill(~torch.ones(length, length, dtype=torch.bool).tril(), -1e9).softmax(dim=-1) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.out(y.transpose(1, 2).reshape(batch, length, d_model))

    def forward(self, x):
        x = x + self.attend(_layer_norm(x, self.gamma1, self.beta1))
        return x + self.ff(_layer_norm(x, self.gamma2, self.beta2))


def _sinusoids(length, d):
    angles = torch.arange(length)[:, None] / torch.pow(10000.0, torch.arange(0, d, 2) / d)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(length, d)


def make_classifier(with_positions=True):
    def build(vocab_size, d_model, n_heads, n_layers, n_classes, max_len):
        class Classifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(vocab_size, d_model)
                self.register_buffer("positions", _sinusoids(max_len, d_model) * with_positions)
                self.blocks = nn.Sequential(*(_Block(d_model, n_heads) for _ in range(n_layers)))
                self.head = nn.Linear(d_model, n_classes)

            def forward(self, tokens):
                return self.head(self.blocks(self.embed(tokens) + self.positions[: tokens.shape[1]]).mean(dim=1))

        return Classifier()

    return build


def make_gpt(causal=True, manual=False):
    def build(vocab_size, block_size, n_layer, n_head, d_model):
        class GPT(nn.Module):
            def __init__(self):
                super().__init__()
                self.tokens, self.positions = nn.Embedding(vocab_size, d_model), nn.Embedding(block_size, d_model)
                self.blocks = nn.ModuleList(_Block(d_model, n_head) for _ in range(n_layer))
                for block in self.blocks:
                    block.causal, block.manual = causal, manual
                self.norm, self.head = nn.LayerNorm(d_model), nn.Linear(d_model, vocab_size)

            def forward(self, ids):
                x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
                for block in self.blocks:
                    x = block(x)
                return self.head(self.norm(x))

        return GPT()

    return build


def test_own_classifier_passes_and_reports_its_accuracy(capsys):
    check("03.build_classifier", make_classifier(), seed=1)
    out = capsys.readouterr().out
    assert "passed" in out and "test accuracy" in out and "target 0.90" in out


def test_classifier_without_positions_misses_the_target():
    with pytest.raises(CheckFailed, match="the target"):
        check("03.build_classifier", make_classifier(with_positions=False), seed=1)


def test_library_blocks_are_refused():
    from attention_course.core.models import TransformerClassifier

    def library(vocab_size, d_model, n_heads, n_layers, n_classes, max_len):
        return TransformerClassifier(vocab_size, d_model, n_heads, n_layers, n_classes, max_len)

    with pytest.raises(CheckFailed, match="course library's own attention_course.core.models.TransformerClassifier"):
        check("03.build_classifier", library, seed=1)

    def torch_blocks(vocab_size, block_size, n_layer, n_head, d_model):
        return nn.Sequential(nn.Embedding(vocab_size, d_model), nn.TransformerEncoderLayer(d_model, n_head, batch_first=True))

    with pytest.raises(CheckFailed, match="TransformerEncoderLayer"):
        check("05.build_gpt", torch_blocks, seed=1)


def test_own_gpt_passes_and_a_model_that_sees_the_future_fails(capsys):
    check("05.build_gpt", make_gpt(), seed=1)
    out = capsys.readouterr().out
    assert "validation loss" in out and f"uniform guess scores {math.log(84):.2f}" in out
    with pytest.raises(CheckFailed, match="peeks at the future"):
        check("05.build_gpt", make_gpt(causal=False), seed=1)


def test_200_labels_needs_one_label_per_text():
    with pytest.raises(CheckFailed, match="one predicted label"):
        check("07.build_200_labels", lambda train_texts, train_labels, texts: [1] * (len(texts) - 1), seed=1)
    with pytest.raises(CheckFailed, match="the target"):  # always 'rotten' scores the minority share
        check("07.build_200_labels", lambda train_texts, train_labels, texts: [0] * len(texts), seed=1)


def test_uniform_attention_reaches_every_softmax_and_sdpa_and_keeps_masks():
    from attention_course.grading.builds import UniformAttention

    scores = torch.randn(2, 4, 4)
    future = ~torch.ones(4, 4, dtype=torch.bool).tril()
    expected = torch.ones(4, 4).tril() / torch.arange(1, 5)[:, None]
    for fill in (float("-inf"), -1e9, torch.finfo(torch.float32).min):
        masked = scores.masked_fill(future, fill)
        for softmax in (lambda t: t.softmax(-1), lambda t: torch.softmax(t, dim=-1), lambda t: F.softmax(t, -1),
                        nn.Softmax(dim=-1)):
            with UniformAttention():
                assert torch.allclose(softmax(masked)[1], expected)
    draw = torch.Generator().manual_seed(0)
    q, v = torch.randn(1, 2, 4, 8, generator=draw), torch.randn(1, 2, 4, 8, generator=draw)
    with UniformAttention():
        got = F.scaled_dot_product_attention(q, q, v, is_causal=True)
    # an absolute tolerance too: a running mean near zero rounds differently as a weighted sum and as cumsum / n
    assert torch.allclose(got, v.cumsum(-2) / torch.arange(1, 5)[:, None], atol=1e-6)
    assert not torch.allclose(F.scaled_dot_product_attention(q, q, v, is_causal=True), got)  # the mode is gone


def test_a_gpt_with_its_own_softmax_attention_passes(capsys):
    check("05.build_gpt", make_gpt(manual=True), seed=1)
    assert "with uniform attention" in capsys.readouterr().out
