"""Synthetic surface images with defects and their pixel masks: lesson 11's inspection data.

No real industrial inspection image set ships inside an installable package under a licence that allows it
(checked for lesson 11: PyPI and the course's package lists; MVTec AD, DAGM 2007, KolektorSDD, NEU-DET and
Magnetic Tile are all downloads from their authors' sites, several non-commercial). So, like the DAGM 2007
benchmark, which is itself synthetic, the course generates its surfaces:

- four materials (``MATERIALS``): brushed metal (fine horizontal streaks), woven fabric (a periodic weave),
  wood (wavy grain) and cast (granular speckle), each with its own brightness, contrast and random variation;
- four defect kinds (``DEFECTS``): a scratch (a thin straight line, brighter or darker), a spot (a small dark
  disc), a crack (a jagged dark random walk) and a stain (an irregular oval, flat inside, with a "tide mark" at
  its rim, darker or brighter; the subtlest kind: the lowest contrast inside its mask);
- each image is 64 x 64 grey pixels in [0, 1] with a boolean mask of the defect's pixels (empty when good).

Every image is drawn from its own random generator seeded by (``VERSION``, split, index), so an image does not
depend on how many others were drawn, and the splits are fixed: changing anything here must bump ``VERSION``
(the test pins the output by hashes).

Version 2 (this one) changed only the stain. Version 1 drew it as a soft Gaussian blob (radii 5-9 px, peak contrast
0.08-0.14) with no edge, as faint as the textures' own slow variation: the CNN caught 0.26-0.37 of its stains at
false alarms <= 0.05 (scratches, spots and cracks 0.94-1.00), and even a detector told each stain's place, shape
and sign caught only 0.55 (``results/inspection_recipes_cpu.json``). It labelled as defects images that no
inspector could tell from good ones. A dried stain has a flat interior and a rim where its residue gathered;
version 2 draws that: interior contrast 0.07-0.11 and a rim 0.06-0.09 stronger (mean change inside the mask
0.08-0.11, against 0.015-0.033 for the spread of a same-size disc's mean minus its surround's on good textures,
per material; ``results/inspection_v2_cpu.json`` has the measurements and what the CNN catches). Textures,
scratches, spots and cracks are drawn by version 1's code; every image is a new draw all the same, since the seed
holds ``VERSION``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

VERSION = 2
SIZE = 64
MATERIALS = ("brushed metal", "woven fabric", "wood", "cast")
DEFECTS = ("scratch", "spot", "crack", "stain")
CLASSES = ("good", *DEFECTS)  # class 0 is good; a defect's class is 1 + its index in DEFECTS
SPLITS = {"train": (0, 4000), "validation": (1, 500), "test": (2, 1000)}  # split -> (seed code, number of images)
# Version 2's stain (see _stain): contrast of its flat interior and the extra contrast of its rim, both drawn
# uniformly from these ranges; the rim's half-width and inset and the edge's softness in pixels; the outline's waviness.
STAIN_INTERIOR = (0.07, 0.11)
STAIN_RIM = (0.06, 0.09)
STAIN_RIM_PX = 1.2
STAIN_RIM_INSET_PX = 0.8
STAIN_EDGE_PX = 0.7
STAIN_WOBBLE = 0.08
DEFECT_SHARE = 0.5  # half the images of every split carry one defect (a balanced set to learn from; the line's
# own defect rate enters the cost arithmetic, not the images)


def _smooth(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Smooth random field (zero mean, unit spread): white noise low-passed in Fourier space at ``scale`` pixels."""
    noise = rng.standard_normal((size, size))
    freq = np.fft.fftfreq(size)
    radius2 = freq[:, None] ** 2 + freq[None, :] ** 2
    field = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-radius2 * (scale * np.pi) ** 2)))
    return (field - field.mean()) / (field.std() + 1e-9)


def texture(material: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A defect-free surface of ``material`` as (size, size) values in [0, 1]."""
    rows, cols = np.mgrid[0:size, 0:size].astype(float)
    if material == "brushed metal":
        streaks = np.repeat(rng.standard_normal((size, 1)), size, 1) * 0.5 + rng.standard_normal((size, size)) * 0.15
        surface = 0.62 + 0.05 * streaks + 0.04 * _smooth(rng, size, 12)
    elif material == "woven fabric":
        period = rng.uniform(5.0, 7.0)
        phase = rng.uniform(0, 2 * np.pi, 2)
        weave = np.sin(2 * np.pi * rows / period + phase[0]) * np.sin(2 * np.pi * cols / period + phase[1])
        surface = 0.5 + 0.08 * weave + 0.03 * _smooth(rng, size, 6) + 0.02 * rng.standard_normal((size, size))
    elif material == "wood":
        frequency = rng.uniform(0.25, 0.4)
        warp = 4.0 * _smooth(rng, size, 16)
        grain = np.sin(frequency * (rows + warp) + rng.uniform(0, 2 * np.pi))
        surface = 0.45 + 0.07 * grain + 0.03 * _smooth(rng, size, 8) + 0.015 * rng.standard_normal((size, size))
    elif material == "cast":
        surface = 0.55 + 0.05 * _smooth(rng, size, 2) + 0.04 * _smooth(rng, size, 10) + 0.03 * rng.standard_normal((size, size))
    else:
        raise ValueError(f"unknown material {material!r}; expected one of {', '.join(MATERIALS)}")
    return surface * rng.uniform(0.9, 1.1)


def _line_mask(size: int, start: np.ndarray, end: np.ndarray, width: float) -> np.ndarray:
    """Pixels within ``width / 2`` of the segment start-end."""
    rows, cols = np.mgrid[0:size, 0:size].astype(float)
    points = np.stack([rows, cols], -1)
    direction = end - start
    t = np.clip(((points - start) @ direction) / max(direction @ direction, 1e-9), 0, 1)
    distance = np.linalg.norm(points - (start + t[..., None] * direction), axis=-1)
    return distance <= width / 2


def defect(kind: str, rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(change to add to the surface, boolean mask of the defect's pixels) for a defect of ``kind``."""
    margin = 8
    centre = rng.uniform(margin, size - margin, 2)
    rows, cols = np.mgrid[0:size, 0:size].astype(float)
    if kind == "scratch":
        angle, length = rng.uniform(0, np.pi), rng.uniform(14, 30)
        offset = 0.5 * length * np.array([np.sin(angle), np.cos(angle)])
        mask = _line_mask(size, centre - offset, centre + offset, rng.uniform(1.0, 2.0))
        change = 1.0 * mask * rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.2)
    elif kind == "spot":
        radius = rng.uniform(1.8, 3.2)
        mask = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
        change = -1.0 * mask * rng.uniform(0.15, 0.25)
    elif kind == "crack":
        steps = int(rng.integers(16, 28))
        heading = rng.uniform(0, 2 * np.pi)
        points = [centre]
        for _ in range(steps):
            heading += rng.normal(0, 0.6)
            points.append(np.clip(points[-1] + np.array([np.sin(heading), np.cos(heading)]), 1, size - 2))
        mask = np.zeros((size, size), dtype=bool)
        for start, end in zip(points[:-1], points[1:], strict=False):
            mask |= _line_mask(size, start, end, 1.2)
        change = -1.0 * mask * rng.uniform(0.15, 0.25)
    elif kind == "stain":
        change, mask = _stain(rng, centre, rows, cols)
    else:
        raise ValueError(f"unknown defect {kind!r}; expected one of {', '.join(DEFECTS)}")
    return change, mask


def _stain(rng: np.random.Generator, centre: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A dried stain: an irregular oval (radii 5-9 px) with a flat interior and a darker or brighter rim, the
    "tide mark" that liquid leaves where it dried last. Its edges, not its faint mean, are what sets it apart from
    a texture's own slow variation (version 1's soft Gaussian blob had no edge and hid in it)."""
    radii = rng.uniform(5, 9, 2)
    angle = np.arctan2(rows - centre[0], cols - centre[1])
    wobble = 1 + sum(rng.uniform(-STAIN_WOBBLE, STAIN_WOBBLE) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
                     for k in (2, 3))  # a low-order wavy outline, not a perfect ellipse
    distance = np.sqrt(((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2) / wobble
    edge = (distance - 1) * radii.mean()  # signed distance to the outline in pixels, roughly
    interior = 1 / (1 + np.exp(edge / STAIN_EDGE_PX))
    rim = np.exp(-(((edge + STAIN_RIM_INSET_PX) / STAIN_RIM_PX) ** 2))  # just inside the outline
    sign = rng.choice([-1.0, 1.0])
    change = sign * (rng.uniform(*STAIN_INTERIOR) * interior + rng.uniform(*STAIN_RIM) * rim)
    return change, edge <= STAIN_RIM_PX


def draw(split: str, index: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Image ``index`` of ``split``: (image (64, 64) float32 in [0, 1], mask (64, 64) bool, class, material index).

    Its own generator, seeded by (VERSION, split, index), decides the material, the texture and the defect's
    kind and shape. Whether an image has a defect is fixed by its index (even: good, odd: one defect), so every
    split and every prefix of one holds ``DEFECT_SHARE`` defects."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    code, count = SPLITS[split]
    if not 0 <= index < count:
        raise IndexError(f"split {split!r} has images 0..{count - 1}, asked for {index}")
    rng = np.random.default_rng([VERSION, code, index])
    material = int(rng.integers(len(MATERIALS)))
    image = texture(MATERIALS[material], rng)
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    label = 0
    if index % 2 == 1:
        kind = int(rng.integers(len(DEFECTS)))
        change, mask = defect(DEFECTS[kind], rng)
        image = image + change
        label = 1 + kind
    return np.clip(image, 0, 1).astype(np.float32), mask, label, material


@dataclass
class Surfaces:
    """One split: images (N, 64, 64) float in [0, 1], masks (N, 64, 64) bool, labels (N,) in CLASSES, materials (N,)."""

    images: Tensor
    masks: Tensor
    labels: Tensor
    materials: Tensor

    @property
    def defective(self) -> Tensor:
        """(N,) bool: the image has a defect (any class but good)."""
        return self.labels > 0

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, count: int) -> Surfaces:
        """The first ``count`` images (a fixed, balanced subset: classes alternate good / defect)."""
        return Surfaces(self.images[:count], self.masks[:count], self.labels[:count], self.materials[:count])


@functools.lru_cache(maxsize=8)
def load_split(split: str, limit: int | None = None) -> Surfaces:
    """The first ``limit`` images of ``split`` (all of them when None), generated once per process."""
    count = SPLITS[split][1] if split in SPLITS else 0
    count = count if limit is None else min(limit, count)
    drawn = [draw(split, i) for i in range(count)]
    if not drawn:
        raise ValueError(f"split {split!r} with limit {limit} holds no images")
    images, masks, labels, materials = zip(*drawn, strict=True)
    return Surfaces(torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks)),
                    torch.tensor(labels), torch.tensor(materials))


def fingerprint(surfaces: Surfaces) -> str:
    """SHA-256 (first 16 hex digits) of a split's images (as bytes), masks and labels: what the tests pin."""
    digest = hashlib.sha256()
    for tensor in (surfaces.images, surfaces.masks, surfaces.labels):
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
