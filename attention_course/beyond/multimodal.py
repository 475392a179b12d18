"""Image and text together: a tiny CLIP-style contrastive model, and a captioner with cross-attention.

Captions are short phrases about the digit ("a handwritten seven", "the digit 7"). Training uses the
``TRAIN_TEMPLATES``; ``HELD_OUT_TEMPLATES`` are new combinations of words that training did use ("a handwritten
7": *handwritten* came only with spelled-out names, numerals only with other words).

Zero-shot in the proper sense holds out whole classes: ``HELD_OUT_DIGITS`` never appear in contrastive training
(neither their images nor their captions), and ``zero_shot_report`` scores seen and held-out digits separately,
each against every caption and against its own group's captions only (chance 1/10 and 1/len(group)), with a
Wilson 95 % interval (``accuracy_interval``).

Cross-attention is self-attention whose keys and values come from another sequence: in the captioner the
text (queries) reads the image patches (keys, values). ``CrossAttention`` is that layer; ``DecoderBlock``
stacks causal self-attention, cross-attention and a feed-forward network.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.attention import TransformerBlock, causal_mask, merge_heads, scaled_dot_product_attention, split_heads
from ..core.language import say
from ..core.training import autocast, make_optimizer, mean_pool, set_lr, update, warmup_cosine_lr
from .vision import ViT, random_shift

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRAIN_TEMPLATES = ("a handwritten {word}", "the digit {num}", "a photo of the number {word}", "an image of a {num}",
                   "a drawing of a {word}")
HELD_OUT_TEMPLATES = ("a handwritten {num}", "the digit {word}", "a drawing of the number {num}", "an image of a {word}")
SPECIALS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
HELD_OUT_DIGITS = (2, 5, 8)  # left out of contrastive training entirely: the zero-shot test of transfer


def caption(template: str, digit: int) -> str:
    return template.format(word=DIGIT_WORDS[digit], num=str(digit))


def digit_named(text: str) -> int | None:
    """The digit a caption names (word or numeral), or None if it names none or several different ones."""
    found = {DIGIT_WORDS.index(w) if w in DIGIT_WORDS else int(w) for w in text.split() if w in DIGIT_WORDS or w.isdigit()}
    return found.pop() if len(found) == 1 else None


class WordTokenizer:
    """Whitespace words -> ids over the captions' vocabulary; id 0 is [PAD], then [BOS], [EOS], [UNK]."""

    def __init__(self, templates=TRAIN_TEMPLATES + HELD_OUT_TEMPLATES):
        words = {w for t in templates for d in range(10) for w in caption(t, d).split()}
        self.vocab = list(SPECIALS) + sorted(words)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(4)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, texts: list[str], length: int, bos: bool = False, eos: bool = False) -> Tensor:
        """(len(texts), length) ids, right-padded with [PAD] (truncated if longer)."""
        rows = []
        for text in texts:
            ids = [self.index.get(w, self.unk_id) for w in text.split()]
            ids = ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])
            rows.append((ids + [self.pad_id] * length)[:length])
        return torch.tensor(rows, dtype=torch.long)

    def decode(self, ids) -> str:
        words = []
        for i in ids:
            if int(i) == self.eos_id:
                break
            if int(i) > self.unk_id:
                words.append(self.vocab[int(i)])
        return " ".join(words)


def sample_captions(labels: Tensor, templates, generator: torch.Generator) -> list[str]:
    choice = torch.randint(len(templates), (len(labels),), generator=generator).tolist()
    return [caption(templates[c], int(d)) for c, d in zip(choice, labels.tolist(), strict=True)]


# ---------------------------------------------------------------- contrastive (CLIP-style)


def info_nce(image_emb: Tensor, text_emb: Tensor, temperature: float | Tensor) -> Tensor:
    """Symmetric InfoNCE (CLIP's loss): row i of each is a matching pair, every other row a negative.

    Cosine similarities divided by the temperature; cross-entropy image->text and text->image, averaged.
    """
    image_emb, text_emb = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)
    logits = image_emb @ text_emb.T / temperature
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


class TextEncoder(nn.Module):
    """Word embeddings + learned positions, Transformer blocks with a padding mask, mean over real words."""

    def __init__(self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, max_len: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Parameter(torch.randn(1, max_len, d_model) * 0.02)
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, ids: Tensor, pad_id: int = 0) -> Tensor:
        real = ids != pad_id
        x = self.embed(ids) + self.positions[:, : ids.shape[1]]
        for block in self.blocks:
            x = block(x, real[:, None, :])
        return mean_pool(self.norm(x), real)


class ContrastiveModel(nn.Module):
    """A ViT image encoder and a text encoder projected into one space; a learned temperature (CLIP).

    ``image_encoder`` passes a ViT to start from (e.g. one trained to classify); else a new ``ViT(**vit)``."""

    def __init__(self, vocab_size: int, embed_dim: int = 64, vit: dict | None = None, text_layers: int = 2,
                 image_encoder: ViT | None = None):
        super().__init__()
        self.image_encoder = image_encoder if image_encoder is not None else ViT(**(vit or {}))
        width = self.image_encoder.head.in_features
        self.text_encoder = TextEncoder(vocab_size, width, self.image_encoder.blocks[0].attn.n_heads, text_layers)
        self.image_proj = nn.Linear(width, embed_dim, bias=False)
        self.text_proj = nn.Linear(width, embed_dim, bias=False)
        self.log_inv_temperature = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def temperature(self) -> Tensor:
        return 1 / self.log_inv_temperature.clamp(max=math.log(100)).exp()

    def encode_images(self, images: Tensor) -> Tensor:
        return F.normalize(self.image_proj(self.image_encoder.features(images)[:, 0]), dim=-1)

    def encode_texts(self, ids: Tensor) -> Tensor:
        return F.normalize(self.text_proj(self.text_encoder(ids)), dim=-1)


def _schedule(optimizer, step: int, total: int, lr: float) -> None:
    set_lr(optimizer, warmup_cosine_lr(step, max(1, total // 20), total, lr, 0.0))


def train_contrastive(model: ContrastiveModel, tokenizer: WordTokenizer, images: Tensor, labels: Tensor, epochs: int,
                      batch_size: int = 256, lr: float = 1e-3, shift: int = 2, seed: int = 0, progress: bool = True) -> dict:
    """Each image gets a random training caption every epoch; the loss is InfoNCE with the learned temperature."""
    device = next(model.parameters()).device
    images, generator = images.to(device), torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model, lr, 0.05, device)
    total = epochs * math.ceil(len(images) / batch_size)
    losses, step, start = [], 0, time.perf_counter()
    model.train()
    for _ in tqdm(range(epochs), desc=say("progress_contrastive"), disable=not progress):
        order = torch.randperm(len(images), generator=generator)
        for index in order.split(batch_size):
            ids = tokenizer.encode(sample_captions(labels[index], TRAIN_TEMPLATES, generator), 8).to(device)
            _schedule(optimizer, step, total, lr)
            with autocast(device, True):
                image_emb = model.encode_images(random_shift(images[index.to(device)], shift, generator))
                loss = info_nce(image_emb.float(), model.encode_texts(ids).float(), model.temperature)
            update(optimizer, loss)
            losses.append(loss.detach())
            step += 1
    return {"loss": torch.stack(losses).float().cpu().tolist(), "seconds": time.perf_counter() - start}


@torch.no_grad()
def zero_shot_predict(model: ContrastiveModel, tokenizer: WordTokenizer, images: Tensor, template: str,
                      digits=range(10)) -> Tensor:
    """For each image, the digit among ``digits`` whose caption (under ``template``) lies nearest in the shared space."""
    digits = list(digits)
    model.eval()
    device = next(model.parameters()).device
    texts = model.encode_texts(tokenizer.encode([caption(template, d) for d in digits], 8).to(device))
    images_emb = torch.cat([model.encode_images(chunk.to(device)) for chunk in images.split(512)])
    return torch.tensor(digits)[(images_emb @ texts.T).argmax(-1).cpu()]


def seen_mask(labels: Tensor, held_out=HELD_OUT_DIGITS) -> Tensor:
    """True where the label is a digit that contrastive training may see (not in ``held_out``)."""
    return ~torch.isin(labels, torch.tensor(list(held_out), dtype=labels.dtype))


def accuracy_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95 % by default) for a share of ``correct`` out of ``total``."""
    if total <= 0:
        raise ValueError(f"need at least one case to give an interval, got total={total}")
    if not 0 <= correct <= total:
        raise ValueError(f"correct must lie in [0, total={total}], got {correct}")
    share = correct / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def zero_shot_report(model: ContrastiveModel, tokenizer: WordTokenizer, images: Tensor, labels: Tensor, template: str,
                     held_out=HELD_OUT_DIGITS) -> list[dict]:
    """Zero-shot accuracy under one template for seen and held-out digits apart, each chosen among all ten
    captions and among its own group's captions only: one dict per (group, candidates) with the accuracy,
    the number of images, a Wilson 95 % interval and the chance level."""
    held = seen_mask(labels, held_out).logical_not()
    groups = {"seen": [d for d in range(10) if d not in held_out], "held-out": sorted(held_out)}
    rows = []
    for group, members in groups.items():
        index = (held if group == "held-out" else ~held).nonzero().flatten()
        if len(index) == 0:
            raise ValueError(f"no test image of a {group} digit ({members}): cannot score that group")
        for candidates in ("all ten", "own group"):
            digits = range(10) if candidates == "all ten" else members
            predicted = zero_shot_predict(model, tokenizer, images[index], template, digits)
            correct = int((predicted == labels[index]).sum())
            rows.append({"template": template, "group": group, "candidates": candidates, "n": len(index),
                         "accuracy": correct / len(index), "interval": accuracy_interval(correct, len(index)),
                         "chance": 1 / len(list(digits))})
    return rows


# ---------------------------------------------------------------- cross-attention and the captioner


class CrossAttention(nn.Module):
    """Multi-head attention whose queries come from ``x`` (B, Tq, d) and keys/values from ``memory`` (B, Tk, d).

    As ``MultiHeadAttention``: ``fused=True`` calls PyTorch's SDPA; ``fused=False`` runs the course's own
    attention and keeps the weights (B, heads, Tq, Tk) in ``last_weights``.
    """

    def __init__(self, d_model: int, n_heads: int, fused: bool = True):
        super().__init__()
        self.n_heads, self.fused = n_heads, fused
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.last_weights: Tensor | None = None

    def forward(self, x: Tensor, memory: Tensor, mask: Tensor | None = None) -> Tensor:
        q = split_heads(self.q(x), self.n_heads)
        k, v = (split_heads(part, self.n_heads) for part in self.kv(memory).chunk(2, dim=-1))
        mask = mask.unsqueeze(1) if mask is not None and mask.dim() == 3 else mask
        if self.fused:
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            heads, self.last_weights = scaled_dot_product_attention(q, k, v, mask)
        return self.out(merge_heads(heads))


class DecoderBlock(nn.Module):
    """Pre-LN decoder block: masked self-attention over the text, cross-attention to the image, feed-forward."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.self_block = TransformerBlock(d_model, n_heads, dropout=dropout)  # supplies self-attention and the FFN
        self.cross = CrossAttention(d_model, n_heads)
        self.norm_cross = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, memory: Tensor, self_mask: Tensor, cross_mask: Tensor | None = None) -> Tensor:
        block = self.self_block
        x = x + block.drop(block.attn(block.norm1(x), self_mask))
        x = x + self.cross(self.norm_cross(x), memory, cross_mask)
        return x + block.drop(block.ff(block.norm2(x)))


def decoder_masks(tokens: Tensor, pad_id: int, n_patches: int) -> tuple[Tensor, Tensor]:
    """(self_mask (B, T, T), cross_mask (B, T, n_patches)), True = may attend.

    Self-attention: position t sees positions 0..t that are not padding (causal AND key padding).
    Cross-attention: every text position sees every image patch (the whole image is known from the start).
    """
    batch, length = tokens.shape
    self_mask = causal_mask(length, tokens.device)[None] & (tokens != pad_id)[:, None, :]
    return self_mask, torch.ones(batch, length, n_patches, dtype=torch.bool, device=tokens.device)


class Captioner(nn.Module):
    """A ViT reads the image; a small decoder writes a caption, attending to the ViT's [CLS] and patch states.

    ``image_encoder`` passes a ViT to start from (e.g. one trained to classify); else a new ``ViT(**vit)``."""

    def __init__(self, vocab_size: int, vit: dict | None = None, n_layers: int = 2, max_len: int = 10,
                 image_encoder: ViT | None = None):
        super().__init__()
        self.image_encoder = image_encoder if image_encoder is not None else ViT(**(vit or {}))
        width = self.image_encoder.head.in_features
        n_heads = self.image_encoder.blocks[0].attn.n_heads
        self.embed = nn.Embedding(vocab_size, width)
        self.positions = nn.Parameter(torch.randn(1, max_len, width) * 0.02)
        self.blocks = nn.ModuleList(DecoderBlock(width, n_heads) for _ in range(n_layers))
        self.norm = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab_size)

    def forward(self, images: Tensor, tokens: Tensor, pad_id: int = 0, memory: Tensor | None = None) -> Tensor:
        if memory is None:
            memory = self.image_encoder.features(images)  # [CLS] and every patch
        self_mask, cross_mask = decoder_masks(tokens, pad_id, memory.shape[1])
        x = self.embed(tokens) + self.positions[:, : tokens.shape[1]]
        for block in self.blocks:
            x = block(x, memory, self_mask, cross_mask)
        return self.lm_head(self.norm(x))

    @torch.no_grad()
    def generate(self, images: Tensor, tokenizer: WordTokenizer, max_len: int = 8) -> tuple[Tensor, Tensor]:
        """Greedy captions (B, steps) and the last block's cross-attention (B, steps, heads, 1 + patches)
        of each newly generated token (index 0 is the image's [CLS] state, then the patches row by row)."""
        self.eval()
        device = next(self.parameters()).device
        images = images.to(device)
        memory = self.image_encoder.features(images)
        tokens = torch.full((len(images), 1), tokenizer.bos_id, device=device)
        cross = self.blocks[-1].cross
        cross.fused, maps = False, []
        try:
            for _ in range(max_len):
                logits = self(images, tokens, tokenizer.pad_id, memory)
                tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
                maps.append(cross.last_weights[:, :, -1].float().cpu())
                if (tokens == tokenizer.eos_id).any(1).all():
                    break
        finally:
            cross.fused = True
        return tokens[:, 1:].cpu(), torch.stack(maps, dim=1)


def train_captioner(model: Captioner, tokenizer: WordTokenizer, images: Tensor, labels: Tensor, epochs: int,
                    batch_size: int = 256, lr: float = 1e-3, shift: int = 2, seed: int = 0, progress: bool = True) -> dict:
    """Teacher forcing: input [BOS] + caption, target caption + [EOS]; padding is ignored in the loss."""
    device = next(model.parameters()).device
    images, generator = images.to(device), torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model, lr, 0.05, device)
    total = epochs * math.ceil(len(images) / batch_size)
    losses, step, start = [], 0, time.perf_counter()
    model.train()
    for _ in tqdm(range(epochs), desc=say("progress_captioner"), disable=not progress):
        for index in torch.randperm(len(images), generator=generator).split(batch_size):
            ids = tokenizer.encode(sample_captions(labels[index], TRAIN_TEMPLATES, generator), 9, bos=True, eos=True)
            ids = ids.to(device)
            _schedule(optimizer, step, total, lr)
            with autocast(device, True):
                logits = model(random_shift(images[index.to(device)], shift, generator), ids[:, :-1], tokenizer.pad_id)
                loss = F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten(), ignore_index=tokenizer.pad_id)
            update(optimizer, loss)
            losses.append(loss.detach())
            step += 1
    return {"loss": torch.stack(losses).float().cpu().tolist(), "seconds": time.perf_counter() - start}


def caption_accuracy(model: Captioner, tokenizer: WordTokenizer, images: Tensor, labels: Tensor) -> tuple[float, list[str]]:
    """Share of images whose generated caption names their digit (and no other), and the captions."""
    texts = []
    for chunk in images.split(512):
        tokens, _ = model.generate(chunk, tokenizer)
        texts += [tokenizer.decode(row) for row in tokens]
    correct = sum(digit_named(t) == int(y) for t, y in zip(texts, labels.tolist(), strict=True))
    return correct / max(len(texts), 1), texts
