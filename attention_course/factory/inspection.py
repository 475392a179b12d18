"""Defect inspection with few labels: models, self-supervised pretraining, the data-efficiency curve, the
operating point at a false-alarm budget, localisation against the true masks, and speed.

- ``InspectionViT`` is lesson 09's ``vision.ViT`` on 64 x 64 surfaces (8 x 8 patches: 64 tokens and [CLS]);
  ``InspectionCNN`` a small CNN of about as many parameters, with global max pooling (Grad-CAM applies to its last convolution).
  Both standardise each image first (minus its own mean, over a fixed spread), so brightness, which varies
  by material and batch, is not a cue.
- ``pretrain_cutpaste``, the lesson's pretraining: CutPaste (Li et al., 2021) on UNLABELLED images: tell an intact
  surface from one with a piece of its own texture pasted in, or a thin scar. A defect is a local irregularity on
  a regular texture, and so is a pasted piece: the encoder learns to notice one before it sees a label.
  ``pretrain_masked`` (SimMIM; Xie et al., 2022: hide most patch tokens behind a learned mask token and rebuild
  their pixels) is the alternative; on these surfaces rebuilding the texture's grain taught little about defects
  (``results/inspection_pretrain_study_cpu.json``). ``fine_tune`` then trains on the few labels, probe first
  (LP-FT; Kumar et al., 2022): the fresh head alone on the frozen encoder, then the whole network.
- A model's defect score is 1 - p(good) over the five classes (good and four defect kinds);
  ``recall_at_false_alarm`` is the share of defects caught when at most ``max_false_alarm`` of good parts are
  flagged: the inspection KPI. ``recall_by_kind`` splits it by defect kind at a fixed threshold (``evaluate``
  reports it at the deployed one; ``summarise_by_kind`` over seeds): one overall recall can hide a kind that is
  rarely caught.
- Localisation: ``rollout_maps`` (attention rollout, lesson 06's ``viz.attention_rollout``) and ``gradcam_maps``
  (Grad-CAM; Selvaraju et al., 2017) scored against the defect masks with the pointing game and IoU, beside
  ``random_maps`` as the chance baseline.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..beyond.vision import ViT, attention_maps, cls_to_patches, matched_width, n_params, patchify
from ..core.language import say
from ..core.training import autocast, make_optimizer, set_lr, update, warmup_cosine_lr
from ..inside.viz import attention_rollout
from ..proof.evidence import sample_std
from .surfaces import CLASSES, SIZE

SPREAD = 0.1  # the fixed scale of standardised pixels (about the textures' own spread)
MAX_FALSE_ALARM = 0.05
PRETRAINED = "ViT pretrained (CutPaste)"  # the lesson's pretrained ViT, by the pretext it learned from
PRETRAINED_BY_PRETEXT = {"cutpaste": PRETRAINED, "masked": "ViT pretrained (masked patches)"}
SUPERVISED = ("CNN", "ViT from scratch")  # trained on the labels alone
MODELS = (*SUPERVISED, PRETRAINED)


def standardise(images: Tensor) -> Tensor:
    """(B, H, W) -> (B, 1, H, W): each image minus its own mean, divided by ``SPREAD``."""
    images = images[:, None] if images.dim() == 3 else images
    return (images - images.mean((-2, -1), keepdim=True)) / SPREAD


class InspectionViT(ViT):
    """lesson 09's ViT for (B, 64, 64) surfaces, five classes, standardising its input."""

    def __init__(self, patch: int = 8, d_model: int = 64, n_heads: int = 4, n_layers: int = 4, dropout: float = 0.1):
        super().__init__(image_size=SIZE, patch=patch, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                         n_classes=len(CLASSES), dropout=dropout)

    def features(self, images: Tensor) -> Tensor:
        return super().features(standardise(images))


class InspectionCNN(nn.Module):
    """A strided 3x3 convolution (64 -> 32 pixels), two pairs of 3x3 convolutions with max-pooling (-> 16 -> 8),
    each convolution followed by BatchNorm (without it, training sat for hundreds of steps at the plateau of
    answering the class shares), then global MAX pooling (a defect is small: the strongest response anywhere
    decides, where an average would dilute it over the surface) and a linear classifier."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        conv = lambda cin, cout, stride=1: [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        pair = lambda cin, cout: conv(cin, cout) + conv(cout, cout)
        self.body = nn.Sequential(*conv(1, w, 2), *pair(w, 2 * w), nn.MaxPool2d(2),
                                  *pair(2 * w, 4 * w), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(4 * w, len(CLASSES)))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.body(standardise(images)))


def build(kind: str, vit: dict) -> nn.Module:
    """"vit": an InspectionViT of shape ``vit``; "cnn": an InspectionCNN with about as many parameters."""
    if kind == "vit":
        return InspectionViT(**vit)
    if kind == "cnn":
        return InspectionCNN(matched_width(InspectionCNN, n_params(InspectionViT(**vit)), low=2, high=256))
    raise ValueError(f"unknown model kind {kind!r}; expected 'vit' or 'cnn'")


def flip(images: Tensor, generator: torch.Generator) -> Tensor:
    """Each (B, H, W) image flipped left-right and/or top-bottom at random (a surface has no up or left)."""
    flips = torch.rand(2, len(images), generator=generator).to(images.device) < 0.5
    images = torch.where(flips[0][:, None, None], images.flip(-1), images)
    return torch.where(flips[1][:, None, None], images.flip(-2), images)


def train_model(model: nn.Module, images: Tensor, labels: Tensor, steps: int, batch_size: int = 64, lr: float = 1e-3,
                weight_decay: float = 0.05, seed: int = 0, progress: bool = True, desc: str | None = None,
                generator: torch.Generator | None = None, schedule: tuple[int, int] | None = None) -> dict:
    """AdamW with warm-up and cosine decay for ``steps`` steps of random flips (small sets are seen many times).

    Only parameters that require gradients are trained. ``generator`` (default: one seeded with ``seed``) draws the
    batches and flips; ``schedule`` = (first step, total steps) places these steps inside a longer warm-up and
    cosine schedule (default: (0, ``steps``)), so that ``fine_tune``'s two phases share one. ``desc`` labels the
    progress bar (default: "training", in the notebook's language)."""
    desc = say("progress_training") if desc is None else desc
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    optimizer = make_optimizer(model, lr, weight_decay, device)
    generator = torch.Generator().manual_seed(seed) if generator is None else generator
    first, total = (0, steps) if schedule is None else schedule
    losses, start = [], time.perf_counter()
    model.train()
    for step in tqdm(range(steps), desc=desc, disable=not progress, leave=False):
        index = torch.randint(len(images), (min(batch_size, len(images)),), generator=generator).to(device)
        set_lr(optimizer, warmup_cosine_lr(first + step, max(1, total // 20), total, lr, 0.0))
        with autocast(device, True):
            loss = F.cross_entropy(model(flip(images[index], generator)), labels[index])
        update(optimizer, loss)
        losses.append(loss.detach())
    model.eval()
    return {"loss": torch.stack(losses).float().cpu().tolist(), "steps": steps, "seconds": time.perf_counter() - start}


class MaskedPatchModel(nn.Module):
    """SimMIM around an InspectionViT: masked patch tokens are replaced by a learned token; a linear decoder
    rebuilds each masked patch's standardised pixels from the encoder's output."""

    def __init__(self, vit: InspectionViT):
        super().__init__()
        self.vit = vit
        d_model = vit.embed.proj.out_features
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.decoder = nn.Linear(d_model, vit.embed.patch**2)

    def forward(self, images: Tensor, mask: Tensor) -> Tensor:
        """Mean squared error on the masked patches; ``mask`` (B, patches) is True where a patch is hidden."""
        embed = self.vit.embed
        patches = patchify(standardise(images), embed.patch)
        tokens = embed.proj(patches)
        tokens = torch.where(mask[..., None], self.mask_token.to(tokens.dtype).expand_as(tokens), tokens)
        x = torch.cat([embed.cls.expand(len(tokens), -1, -1), tokens], dim=1) + embed.positions
        for block in self.vit.blocks:
            x = block(x)
        rebuilt = self.decoder(self.vit.norm(x)[:, 1:])
        return F.mse_loss(rebuilt[mask].float(), patches[mask].float())


def pretrain_masked(vit: InspectionViT, images: Tensor, steps: int, batch_size: int = 128, lr: float = 1e-3,
                    mask_ratio: float = 0.6, seed: int = 0, progress: bool = True) -> dict:
    """Masked patch prediction on unlabelled ``images`` (no label is read); trains ``vit``'s encoder in place."""
    device = next(vit.parameters()).device
    model = MaskedPatchModel(vit).to(device)
    images = images.to(device)
    optimizer = make_optimizer(model, lr, 0.05, device)
    generator = torch.Generator().manual_seed(seed)
    n_patches = vit.grid**2
    hidden = max(1, round(mask_ratio * n_patches))
    losses, start = [], time.perf_counter()
    model.train()
    for step in tqdm(range(steps), desc=say("progress_pretraining"), disable=not progress, leave=False):
        index = torch.randint(len(images), (min(batch_size, len(images)),), generator=generator).to(device)
        order = torch.rand(len(index), n_patches, generator=generator).argsort(-1)
        mask = (order < hidden).to(device)
        set_lr(optimizer, warmup_cosine_lr(step, max(1, steps // 20), steps, lr, 0.0))
        with autocast(device, True):
            loss = model(flip(images[index], generator), mask)
        update(optimizer, loss)
        losses.append(loss.detach())
    vit.eval()
    return {"loss": torch.stack(losses).float().cpu().tolist(), "steps": steps, "seconds": time.perf_counter() - start}


PRETEXT_CLASSES = ("intact", "cut-paste", "scar")  # CutPaste's three-way pretext labels, in this order
PASTE_SIDE = (4.0, 16.0)  # a pasted patch's sides, pixels
SCAR_WIDTH = (1.0, 3.0)  # a scar's width and length, pixels
SCAR_LENGTH = (8.0, 24.0)
PASTE_SHIFT = (8, 56)  # how far (rows and columns, wrapping round) the pasted texture comes from, pixels
PASTE_JITTER = (0.15, 0.30)  # the pasted texture's brightness shift (up or down), pixel units of [0, 1]: clearly
# visible. With 0.03-0.12 (about the textures' own variation) the CPU proxy's pretext stayed near chance for 400-600
# steps and fine-tuning gained less (results/inspection_cutpaste_study_cpu.json)


def cut_paste(images: Tensor, generator: torch.Generator, jitter: tuple[float, float] = PASTE_JITTER
              ) -> tuple[Tensor, Tensor, Tensor]:
    """CutPaste (Li et al., 2021), three-way, on (B, H, W) surfaces in [0, 1]: each image, at random, stays intact
    (label 0), or gets a piece of its OWN texture from elsewhere pasted over it with its brightness shifted up or
    down by ``jitter``: a rectangle of ``PASTE_SIDE`` pixels a side (label 1) or a scar (label 2), a thin strip
    (``SCAR_WIDTH`` x ``SCAR_LENGTH``) at a random angle. No label is read: the pretext's labels are made here.
    Returns the new images, the pretext labels (indices into ``PRETEXT_CLASSES``) and the pasted pixels' masks."""
    if images.dim() != 3:
        raise ValueError(f"images must be (B, H, W) grey surfaces, got shape {tuple(images.shape)}")
    if not 0 <= jitter[0] <= jitter[1]:
        raise ValueError(f"jitter is a (low, high) range of brightness shifts with 0 <= low <= high, got {jitter}")
    count, height, width = images.shape
    # every random draw is made on the CPU from ``generator`` (the same pieces on any device), one number per image;
    # the pixel grids are then built where the images are
    between = lambda low, high: low + (high - low) * torch.rand(count, generator=generator)
    labels = torch.randint(len(PRETEXT_CLASSES), (count,), generator=generator)
    scar = labels == 2
    length = torch.where(scar, between(*SCAR_LENGTH), between(*PASTE_SIDE))
    breadth = torch.where(scar, between(*SCAR_WIDTH), between(*PASTE_SIDE))
    angle = torch.where(scar, between(0.0, math.pi), torch.zeros(count))  # a rectangle is pasted upright
    reach = length / 2  # keep the piece's centre far enough from the border for most of it to show
    centre_y, centre_x = between(0.0, 1.0) * (height - 2 * reach) + reach, between(0.0, 1.0) * (width - 2 * reach) + reach
    shift = torch.randint(PASTE_SHIFT[0], PASTE_SHIFT[1] + 1, (count, 2), generator=generator)
    sign = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
    brightness = sign * between(*jitter)
    device = images.device
    at = lambda draw: draw.to(device)[:, None, None]  # (count,) -> (count, 1, 1) on the images' device
    rows = torch.arange(height, dtype=torch.float32, device=device)[None, :, None] + 0.5 - at(centre_y)
    cols = torch.arange(width, dtype=torch.float32, device=device)[None, None, :] + 0.5 - at(centre_x)
    cos, sin = at(angle.cos()), at(angle.sin())
    along, across = rows * cos + cols * sin, cols * cos - rows * sin
    masks = (along.abs() <= at(length) / 2) & (across.abs() <= at(breadth) / 2) & at(labels > 0)
    source_rows = (torch.arange(height, device=device)[None, :, None] + at(shift[:, 0])) % height
    source_cols = (torch.arange(width, device=device)[None, None, :] + at(shift[:, 1])) % width
    source = images[torch.arange(count, device=device)[:, None, None], source_rows, source_cols]
    shifted = (source + at(brightness).to(images.dtype)).clamp(0, 1)
    return torch.where(masks, shifted, images), labels.to(device), masks


def pasted_patches(masks: Tensor, patch: int, least: float = 1 / 16) -> Tensor:
    """(B, H, W) masks of pasted pixels -> (B, patches) 1.0 where at least ``least`` of a patch's pixels were pasted
    (patches in ``patchify``'s order): the pretext's answer for every patch token."""
    return (patchify(masks.float(), patch).mean(-1) >= least).float()


def pretrain_cutpaste(vit: InspectionViT, images: Tensor, steps: int, batch_size: int = 128, lr: float = 1e-3,
                      warmup: float = 0.1, patch_weight: float = 1.0, jitter: tuple[float, float] = PASTE_JITTER,
                      seed: int = 0, progress: bool = True) -> dict:
    """CutPaste pretraining on unlabelled ``images`` (no label is read): the ViT's [CLS] state, through a
    temporary three-way head, tells intact surfaces from ones with a piece of their own texture pasted in
    (``cut_paste``). A defect is a local irregularity on a regular texture, and so is a pasted piece: the encoder
    learns to notice one and to gather it into [CLS], which is what the classifier later reads. Trains ``vit``'s
    encoder in place. A second, per-patch head says which patch tokens hold pasted pixels (``pasted_patches``,
    weighted ``patch_weight``; 0 turns it off): a local answer for every token. In the CPU study it changed little
    once the pieces were visible (``PASTE_JITTER``): the brightness shift is what lets the pretext leave chance.
    ``warmup`` is the share of steps with a rising learning rate."""
    device = next(vit.parameters()).device
    head = nn.Linear(vit.head.in_features, len(PRETEXT_CLASSES)).to(device)
    patch_head = nn.Linear(vit.head.in_features, 1).to(device)
    model = nn.ModuleDict({"vit": vit, "head": head, "patch_head": patch_head})
    optimizer = make_optimizer(model, lr, 0.05, device)
    generator = torch.Generator().manual_seed(seed)
    losses, correct, start = [], [], time.perf_counter()
    model.train()
    for step in tqdm(range(steps), desc=say("progress_pretraining"), disable=not progress, leave=False):
        index = torch.randint(len(images), (min(batch_size, len(images)),), generator=generator)
        batch, targets, masks = cut_paste(flip(images[index], generator), generator, jitter)
        batch, targets = batch.to(device), targets.to(device)
        pasted = pasted_patches(masks, vit.embed.patch).to(device)
        set_lr(optimizer, warmup_cosine_lr(step, max(1, int(warmup * steps)), steps, lr, 0.0))
        with autocast(device, True):
            x = vit.features(batch)
            logits, patch_logits = head(x[:, 0]), patch_head(x[:, 1:])[..., 0]
        loss = F.cross_entropy(logits.float(), targets)
        if patch_weight:
            loss = loss + patch_weight * F.binary_cross_entropy_with_logits(patch_logits.float(), pasted)
        update(optimizer, loss)
        losses.append(loss.detach())
        correct.append((logits.argmax(-1) == targets).float().mean().detach())
    vit.eval()
    return {"loss": torch.stack(losses).float().cpu().tolist(), "accuracy": torch.stack(correct).cpu().tolist(),
            "steps": steps, "seconds": time.perf_counter() - start}


def fine_tune(pretrained: InspectionViT, images: Tensor, labels: Tensor, steps: int, seed: int = 0,
              probe_steps: int | None = None, **train) -> tuple[nn.Module, dict]:
    """A copy of the pretrained ViT with a fresh classifier head, trained on the labelled ``images`` for ``steps``
    steps in all; ``pretrained`` itself is left as it was.

    With ``probe_steps`` > 0 it is "probe first, then fine-tune" (LP-FT; Kumar et al., 2022): the first
    ``probe_steps`` steps train only the fresh head on the frozen encoder (a linear probe), the remaining
    ``steps - probe_steps`` the whole network. A random head's first gradients are large and point anywhere: sent
    into the encoder at once, they can wipe out the pretrained features before the few labels can rebuild them
    (on the CPU, one pretraining's recall after fine-tuning then swung widely with the fine-tuning seed alone).
    A head that already reads the features sends gradients that refine them. The two phases share one warm-up
    and cosine schedule over ``steps`` (the whole network starts where the probe left the learning rate, already
    decaying) and one stream of batches. The returned ``loss``, ``steps`` and ``seconds`` cover both phases."""
    probe_steps = 0 if probe_steps is None else probe_steps
    if isinstance(probe_steps, bool) or not isinstance(probe_steps, int) or not 0 <= probe_steps < steps:
        raise ValueError(f"probe_steps is a whole number of steps with 0 <= probe_steps < steps ({steps}): the "
                         f"head-only probe comes first and the whole network trains at least one step after it; "
                         f"got {probe_steps!r}")
    model = copy.deepcopy(pretrained)
    torch.manual_seed(seed)
    model.head.reset_parameters()
    if not probe_steps:
        return model, train_model(model, images, labels, steps, seed=seed, **train)
    encoder = [p for name, p in model.named_parameters() if not name.startswith("head.") and p.requires_grad]
    for parameter in encoder:  # make_optimizer leaves out what needs no gradient: only the head is trained
        parameter.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    desc = train.pop("desc", None) or say("progress_training")
    try:
        probe = train_model(model, images, labels, probe_steps, seed=seed, generator=generator,
                            schedule=(0, steps), desc=say("progress_head_only", desc=desc), **train)
    finally:
        for parameter in encoder:
            parameter.requires_grad_(True)
    whole = train_model(model, images, labels, steps - probe_steps, seed=seed, generator=generator,
                        schedule=(probe_steps, steps), desc=say("progress_whole_network", desc=desc), **train)
    return model, {"loss": probe["loss"] + whole["loss"], "steps": steps, "probe_steps": probe_steps,
                   "seconds": probe["seconds"] + whole["seconds"]}


@torch.no_grad()
def class_probabilities(model: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """(N, 5) softmax over CLASSES, in eval mode and batches, on the CPU."""
    device = next(model.parameters()).device
    model.eval()
    out = []
    for chunk in images.split(batch_size):
        with autocast(device, True):
            out.append(model(chunk.to(device)).float().softmax(-1).cpu())
    return torch.cat(out)


def defect_scores(probabilities: Tensor) -> np.ndarray:
    """1 - p(good): how sure the model is that a part has a defect of any kind."""
    return (1 - probabilities[:, 0]).numpy()


def recall_at_false_alarm(scores, defective, max_false_alarm: float = MAX_FALSE_ALARM) -> dict:
    """The best recall (share of defective parts flagged) among thresholds that flag at most ``max_false_alarm``
    of the good parts, with that threshold and its false-alarm rate. A part is flagged when its score is above
    the threshold; the threshold is the k-th highest good score, k = floor(max_false_alarm * goods)."""
    scores, defective = np.asarray(scores, dtype=float), np.asarray(defective, dtype=bool)
    if scores.shape != defective.shape or defective.all() or not defective.any():
        raise ValueError(f"need one score per part and both good and defective parts, got {scores.shape} scores, "
                         f"{int(defective.sum())} defective of {len(defective)}")
    if not 0 <= max_false_alarm < 1:
        raise ValueError(f"max_false_alarm is a rate in [0, 1), got {max_false_alarm}")
    good = np.sort(scores[~defective])[::-1]
    threshold = float(good[int(math.floor(max_false_alarm * len(good)))])
    return {"recall": float(np.mean(scores[defective] > threshold)), "threshold": threshold,
            "false_alarm": float(np.mean(scores[~defective] > threshold))}


def operating_point(scores, defective, threshold: float) -> dict:
    """Recall and false-alarm rate at a threshold fixed beforehand (e.g. on the validation split)."""
    scores, defective = np.asarray(scores, dtype=float), np.asarray(defective, dtype=bool)
    flagged = scores > threshold
    return {"recall": float(flagged[defective].mean()), "false_alarm": float(flagged[~defective].mean()),
            "threshold": float(threshold)}


def recall_by_kind(scores, labels, threshold: float, classes: tuple[str, ...] = CLASSES) -> dict[str, dict]:
    """Recall of each defect kind at a threshold fixed beforehand: for every kind in ``classes[1:]`` (class 0 is
    good), ``{"recall": share of its parts scored above threshold, "parts": how many}``; recall is None for a
    kind with no parts. One overall recall can hide a kind the model never catches; this shows it."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"need one score and one label per part, got {scores.shape} scores and {labels.shape} labels")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0 or labels.max(initial=0) >= len(classes):
        raise ValueError(f"labels are class indices 0..{len(classes) - 1} ({', '.join(classes)}), got {labels[:5]}...")
    if not (labels > 0).any():
        raise ValueError("need at least one defective part (label > 0) to measure recall")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    flagged = scores > threshold
    out = {}
    for index, kind in enumerate(classes[1:], start=1):
        chosen = labels == index
        out[kind] = {"recall": float(flagged[chosen].mean()) if chosen.any() else None, "parts": int(chosen.sum())}
    return out


def evaluate(model: nn.Module, validation, test, max_false_alarm: float = MAX_FALSE_ALARM) -> dict:
    """Test recall at the false-alarm budget (threshold read on the test ROC), the deployable version (threshold
    set on validation, then applied to test) with its recall per defect kind, and the defect-kind accuracy on the
    test defects."""
    val_scores = defect_scores(class_probabilities(model, validation.images))
    threshold = recall_at_false_alarm(val_scores, validation.defective.numpy(), max_false_alarm)["threshold"]
    probabilities = class_probabilities(model, test.images)
    scores, defective = defect_scores(probabilities), test.defective.numpy()
    kinds = probabilities[:, 1:].argmax(-1) + 1
    return {"recall_at_far": recall_at_false_alarm(scores, defective, max_false_alarm)["recall"],
            "deployed": operating_point(scores, defective, threshold),
            "deployed_by_kind": recall_by_kind(scores, test.labels.numpy(), threshold),
            "kind_accuracy": float((kinds[test.defective] == test.labels[test.defective]).float().mean()),
            "scores": scores}


def data_efficiency(train, validation, test, sizes: list[int], seeds: list[int], vit: dict, steps: int,
                    pretrain_steps: int, unlabelled: int | None, device: torch.device, train_kw: dict | None = None,
                    pretrain_kw: dict | None = None, progress: bool = True, pretext: str = "cutpaste",
                    probe: float = 0.5) -> tuple[list[dict], dict]:
    """For each seed: pretrain one ViT on the first ``unlabelled`` training images (labels unread) with ``pretext``
    ("cutpaste": ``pretrain_cutpaste``, the lesson's; "masked": ``pretrain_masked``), then for each label budget n
    train the CNN and the ViT from scratch and fine-tune the pretrained ViT on the first n labelled images, its
    first ``probe`` share of steps on the head alone (``fine_tune``'s ``probe_steps``). Every run gets ``steps``
    steps. The pretrained ViT's records are named ``PRETRAINED_BY_PRETEXT[pretext]``. Returns one record per run
    and the models of the largest budget, seed ``seeds[0]``, by name (for localisation and speed)."""
    if pretext not in PRETRAINED_BY_PRETEXT:
        raise ValueError(f"unknown pretext {pretext!r}; expected one of {', '.join(map(repr, PRETRAINED_BY_PRETEXT))}")
    if not 0 <= probe < 1:
        raise ValueError(f"probe is the share of fine-tuning steps spent on the head alone, in [0, 1); got {probe}")
    train_kw, pretrain_kw = train_kw or {}, pretrain_kw or {}
    pretrain = pretrain_cutpaste if pretext == "cutpaste" else pretrain_masked
    pretrained_name = PRETRAINED_BY_PRETEXT[pretext]
    records, kept = [], {}
    pool = train.images[:unlabelled]
    runs = tqdm(total=len(seeds) * (1 + 3 * len(sizes)), desc=say("progress_inspection"), disable=not progress)
    for seed in seeds:
        torch.manual_seed(seed)
        pretrained = InspectionViT(**vit).to(device)
        history = pretrain(pretrained, pool, pretrain_steps, seed=seed, progress=progress, **pretrain_kw)
        runs.update()
        for n in sizes:
            labelled = train.take(n)
            for name in (*SUPERVISED, pretrained_name):
                torch.manual_seed(seed)
                if name == pretrained_name:
                    model, fit = fine_tune(pretrained, labelled.images, labelled.labels, steps, seed=seed,
                                           probe_steps=int(probe * steps), progress=progress,
                                           desc=say("progress_labels", name=name, n=n), **train_kw)
                    fit["seconds"] += history["seconds"]  # the pretraining belongs to its cost
                else:
                    model = build("cnn" if name == "CNN" else "vit", vit).to(device)
                    fit = train_model(model, labelled.images, labelled.labels, steps, seed=seed, progress=progress,
                                      desc=say("progress_labels", name=name, n=n), **train_kw)
                scores = evaluate(model, validation, test)
                records.append({"model": name, "labels": n, "seed": seed, "params": n_params(model),
                                "seconds": fit["seconds"], **{k: v for k, v in scores.items() if k != "scores"}})
                if n == max(sizes) and seed == seeds[0]:
                    kept[name] = model
                runs.update()
    runs.close()
    return records, kept


def summarise(records: list[dict], key: str = "recall_at_far") -> list[dict]:
    """Per (model, labels): mean, sample standard deviation, min and max of ``key`` over seeds, and a 95 %
    t-interval of the mean (None with one seed), clipped to [0, 1] (``key`` is a rate)."""
    from scipy import stats

    rows = []
    for name in dict.fromkeys(r["model"] for r in records):
        for n in sorted({r["labels"] for r in records if r["model"] == name}):
            values = np.array([r[key] for r in records if r["model"] == name and r["labels"] == n])
            std = sample_std(values)
            half = float(stats.t.ppf(0.975, len(values) - 1) * std / math.sqrt(len(values))) if len(values) > 1 else None
            rows.append({"model": name, "labels": n, "seeds": len(values), "mean": float(values.mean()), "std": std,
                         "min": float(values.min()), "max": float(values.max()),
                         "interval": None if half is None else (max(0.0, float(values.mean()) - half),
                                                                min(1.0, float(values.mean()) + half))})
    return rows


def summarise_by_kind(records: list[dict], labels: int) -> list[dict]:
    """Per (model, defect kind) at ``labels`` labelled images: recall at the deployed threshold (``evaluate``'s
    ``deployed_by_kind``) as mean, min and max over seeds, with the number of test parts of that kind; mean, min
    and max are None for a kind the test split does not hold."""
    rows = []
    for name in dict.fromkeys(r["model"] for r in records):
        runs = [r["deployed_by_kind"] for r in records if r["model"] == name and r["labels"] == labels]
        for kind in runs[0] if runs else ():
            values = [run[kind]["recall"] for run in runs if run[kind]["recall"] is not None]
            rows.append({"model": name, "labels": labels, "kind": kind, "parts": runs[0][kind]["parts"],
                         "seeds": len(runs), "mean": float(np.mean(values)) if values else None,
                         "min": min(values, default=None), "max": max(values, default=None)})
    if not rows:
        budgets = sorted({r["labels"] for r in records})
        raise ValueError(f"no record at {labels} labels; the records hold label budgets {budgets}")
    return rows


def weakest_kind(by_kind: list[dict], model: str) -> dict:
    """The row of ``summarise_by_kind`` with the lowest mean recall for ``model`` (kinds with no parts skipped)."""
    rows = [r for r in by_kind if r["model"] == model and r["mean"] is not None]
    if not rows:
        raise ValueError(f"no recall by kind for {model!r}; models: {sorted({r['model'] for r in by_kind})}")
    return min(rows, key=lambda r: r["mean"])


# ---------------------------------------------------------------- where is the defect


def _upsample(maps: Tensor) -> Tensor:
    """(B, g, g) -> (B, 64, 64), bilinear."""
    return F.interpolate(maps[:, None].float(), size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]


def rollout_maps(model: InspectionViT, images: Tensor) -> Tensor:
    """(B, 64, 64): attention rollout of the [CLS] token over the patches, one image at a time, upsampled."""
    weights = attention_maps(model, images)  # (layers, B, heads, T, T)
    maps = [cls_to_patches(attention_rollout(weights[:, b]), model.grid) for b in range(weights.shape[1])]
    return _upsample(torch.stack(maps))


def gradcam_maps(model: InspectionCNN, images: Tensor) -> Tensor:
    """(B, 64, 64): Grad-CAM for the defect evidence log(p(defect) / p(good)) at the last convolution, upsampled."""
    device = next(model.parameters()).device
    model.eval()
    images = images.to(device)
    activations = model.body(standardise(images)).detach().requires_grad_(True)
    logits = model.head(activations).float()
    evidence = torch.logsumexp(logits[:, 1:], -1) - logits[:, 0]
    (gradients,) = torch.autograd.grad(evidence.sum(), activations)
    weights = gradients.mean((-2, -1), keepdim=True)
    return _upsample(F.relu((weights * activations).sum(1)).detach().cpu())


def random_maps(count: int, seed: int = 0) -> Tensor:
    """(count, 64, 64) maps of uniform noise: the chance baseline every localisation score is compared with."""
    return torch.rand(count, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def pointing_game(maps: Tensor, masks: Tensor, tolerance: int = 2) -> np.ndarray:
    """Per image: 1.0 when the map's brightest pixel lies on the defect or within ``tolerance`` pixels of it."""
    if maps.shape != masks.shape:
        raise ValueError(f"maps and masks differ in shape: {tuple(maps.shape)} vs {tuple(masks.shape)}")
    grown = F.max_pool2d(masks[:, None].float(), 2 * tolerance + 1, stride=1, padding=tolerance)[:, 0] > 0
    peak = maps.flatten(1).argmax(-1)
    return grown.flatten(1)[torch.arange(len(maps)), peak].float().numpy()


def top_iou(maps: Tensor, masks: Tensor) -> np.ndarray:
    """Per image: IoU between the defect mask and the map's brightest pixels, as many as the mask has."""
    if maps.shape != masks.shape:
        raise ValueError(f"maps and masks differ in shape: {tuple(maps.shape)} vs {tuple(masks.shape)}")
    flat_maps, flat_masks = maps.flatten(1), masks.flatten(1).bool()
    out = []
    for heat, mask in zip(flat_maps, flat_masks, strict=True):
        area = int(mask.sum())
        if area == 0:
            raise ValueError("a mask is empty: score localisation on defective images only")
        top = torch.zeros_like(mask)
        top[heat.topk(area).indices] = True
        out.append(float((top & mask).sum() / (top | mask).sum()))
    return np.array(out)


def localisation(maps: dict[str, Tensor], masks: Tensor, labels: Tensor) -> list[dict]:
    """Pointing game and IoU of each method's maps, overall and by defect kind, with bootstrap 95 % intervals."""
    from ..proof.evidence import bootstrap_interval

    rows = []
    for method, heat in maps.items():
        hits, iou = pointing_game(heat, masks), top_iou(heat, masks)
        row = {"method": method, "pointing": float(hits.mean()), "pointing_interval": bootstrap_interval(hits),
               "iou": float(iou.mean()), "iou_interval": bootstrap_interval(iou), "images": len(hits)}
        for k, kind in enumerate(CLASSES[1:], start=1):
            chosen = (labels == k).numpy()
            row[f"pointing {kind}"] = float(hits[chosen].mean()) if chosen.any() else None
        rows.append(row)
    return rows


# ---------------------------------------------------------------- speed


def images_per_second(model: nn.Module, images: Tensor, device, batch_size: int = 64, repeats: int = 5,
                      bf16: bool = False) -> float:
    """Inspected images per second for batches of ``batch_size`` (median of ``repeats`` after a warm-up)."""
    from ..deploy.cost import throughput

    batch = images[:batch_size].to(device)

    @torch.no_grad()
    def call():
        with autocast(device, bf16):
            return model(batch)

    return throughput(call, batch_size, repeats=repeats, warmup=2, device=device)
