"""Lesson 11's data: the surface generator (pinned by hashes), its splits and masks, and the demand series."""

import numpy as np
import pytest
import torch

from attention_course.core.data import MissingDataError
from attention_course.factory import demand, surfaces

# sha256 (16 hex digits) of the first 64 images, masks and labels of each split, generator VERSION 2. A change
# here means every stored result of lesson 11 is stale: bump surfaces.VERSION and re-run the lesson.
PINNED = {"train": "be1b8591db598846", "validation": "2f46551d35d27b66", "test": "ffb85e0816d857d3"}


@pytest.mark.parametrize("split", sorted(PINNED))
def test_generator_output_is_pinned(split):
    assert surfaces.VERSION == 2
    assert surfaces.fingerprint(surfaces.load_split(split, 64)) == PINNED[split]


def test_an_image_does_not_depend_on_how_many_were_drawn():
    few, many = surfaces.load_split("test", 10), surfaces.load_split("test", 30)
    assert torch.equal(few.images, many.images[:10]) and torch.equal(few.masks, many.masks[:10])


def test_splits_differ_and_classes_are_balanced():
    train, test = surfaces.load_split("train", 200), surfaces.load_split("test", 200)
    assert not torch.equal(train.images[:5], test.images[:5])
    assert int(train.defective.sum()) == 100 and int(train.take(50).defective.sum()) == 25
    counts = torch.bincount(train.labels[train.defective], minlength=len(surfaces.CLASSES))[1:]
    assert (counts > 10).all(), f"every defect kind should appear: {counts.tolist()}"
    assert len(set(train.materials.tolist())) == len(surfaces.MATERIALS)


def test_masks_mark_exactly_the_defects():
    data = surfaces.load_split("validation", 120)
    areas = data.masks.flatten(1).sum(-1)
    assert (areas[~data.defective] == 0).all(), "a good part has no defect pixels"
    assert (areas[data.defective] > 0).all(), "every defect has a mask"
    assert data.images.min() >= 0 and data.images.max() <= 1 and data.images.shape[1:] == (64, 64)


@pytest.mark.parametrize("kind", surfaces.DEFECTS)
def test_each_defect_changes_the_pixels_under_its_mask(kind):
    rng = np.random.default_rng(3)
    change, mask = surfaces.defect(kind, rng)
    assert mask.any() and np.abs(change[mask]).mean() > 0.05
    if kind != "stain":  # a stain's soft edge fades just outside its mask (the rim's outer half)
        assert np.abs(change[~mask]).max() == 0


def _disc_minus_surround(image: np.ndarray, centre: np.ndarray, radius: float) -> float:
    rows, cols = np.mgrid[0:64, 0:64]
    distance = np.hypot(rows - centre[0], cols - centre[1])
    return float(image[distance <= radius].mean() - image[(distance > radius + 1) & (distance <= radius + 5)].mean())


def test_a_stain_stands_out_of_the_texture_yet_stays_the_subtlest_defect():
    # version 1's stain was as faint as the textures' own slow variation; version 2's must clear it by far
    rng = np.random.default_rng(5)
    spread = max(np.std([_disc_minus_surround(surfaces.texture(material, rng), rng.uniform(14, 50, 2), 7)
                         for _ in range(60)]) for material in surfaces.MATERIALS)
    stains = [surfaces.defect("stain", rng) for _ in range(60)]
    inside = np.array([np.abs(change[mask]).mean() for change, mask in stains])
    assert inside.min() > 2 * spread and np.median(inside) > 2.5 * spread, (inside.min(), spread)
    for kind in ("scratch", "spot", "crack"):
        others = [surfaces.defect(kind, rng) for _ in range(60)]
        assert np.median(inside) < np.median([np.abs(change[mask]).mean() for change, mask in others]), kind
    # the tide mark: the change peaks at the rim, above the change at the stain's middle (a Gaussian blob peaks there)
    for change, mask in stains[:20]:
        middle = tuple(np.round(np.argwhere(mask).mean(0)).astype(int))
        assert mask[middle] and np.abs(change).max() > 1.2 * np.abs(change[middle])


def test_bad_names_say_what_was_expected():
    with pytest.raises(ValueError, match="expected one of"):
        surfaces.texture("plastic", np.random.default_rng(0))
    with pytest.raises(ValueError, match="expected one of"):
        surfaces.draw("holdout", 0)
    with pytest.raises(IndexError, match="0..999"):
        surfaces.draw("test", 1000)


def test_wine_sales_are_the_real_series():
    values = demand.wine_sales()
    assert values.shape == (176,)
    assert values[:3].tolist() == [15136, 16733, 20016] and values[-1] == 23356  # Jan-Mar 1980, Aug 1994
    december = values[11::12].mean()
    assert december > 1.3 * values[0::12].mean(), "December sales exceed January's: the calendar pattern"


def test_wine_split_uses_training_months_only():
    split = demand.wine_split()
    assert split.test_start == 176 - demand.TEST_MONTHS
    december_train = split.values[: split.test_start][11::12].mean()
    assert split.climatology[11] == pytest.approx(december_train)
    windows = demand.windows_for(split, 24, 12)
    assert windows["validation"]["origin"].max() + 12 <= split.test_start
    assert windows["test"]["origin"].min() == split.test_start


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(demand, "package_folder", lambda *a: (_ for _ in ()).throw(
        MissingDataError(f"not installed: {demand.PMDARIMA_INSTALL}")))
    with pytest.raises(MissingDataError, match="pmdarima==2.1.1"):
        demand.wine_sales()
