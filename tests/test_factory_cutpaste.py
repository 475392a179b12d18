"""Lesson 11's CutPaste pretext: its labels, what it pastes and where, and that its pretraining learns."""

import numpy as np
import pytest
import torch

from attention_course.factory import inspection, surfaces

TINY = dict(patch=8, d_model=16, n_heads=2, n_layers=1)


def pasted(count: int = 300, seed: int = 0, images: torch.Tensor | None = None):
    images = surfaces.load_split("train", count).images if images is None else images
    out, labels, masks = inspection.cut_paste(images, torch.Generator().manual_seed(seed))
    return images, out, labels, masks


def test_intact_images_are_untouched_and_pasted_ones_change_only_inside_their_mask():
    images, out, labels, masks = pasted()
    intact = labels == 0
    assert torch.equal(out[intact], images[intact]) and not masks[intact].any()
    assert masks[~intact].flatten(1).sum(1).min() >= 4, "every pasted image has a visible piece"
    assert torch.equal(out[~masks], images[~masks]), "nothing changes outside the pasted piece"
    assert (out[masks] != images[masks]).float().mean() > 0.9, "the piece differs from what it covers"
    assert torch.equal(images, surfaces.load_split("train", 300).images), "the input is not changed in place"


def test_labels_are_the_three_pretext_classes_in_about_equal_shares():
    _, _, labels, _ = pasted(count=1500)
    shares = torch.bincount(labels, minlength=3).float() / len(labels)
    assert len(inspection.PRETEXT_CLASSES) == 3 and labels.max() <= 2
    assert torch.all((shares > 0.28) & (shares < 0.39)), shares


def test_a_patch_is_an_upright_rectangle_and_a_scar_a_thin_strip():
    _, _, labels, masks = pasted(count=400)
    low, high = inspection.PASTE_SIDE
    for mask in masks[labels == 1]:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert int(mask.sum()) == height * width, "an upright rectangle fills its bounding box"
        assert low - 1 <= min(height, width) and max(height, width) <= high + 1
    for mask in masks[labels == 2]:
        area = int(mask.sum())
        assert 4 <= area <= (inspection.SCAR_WIDTH[1] + 1) * (inspection.SCAR_LENGTH[1] + 1)
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    tilted = 0
    for mask in masks[labels == 2]:
        if mask.sum() >= 8:
            points = torch.stack([rows[mask], cols[mask]], 1)
            spread = torch.linalg.eigvalsh(torch.cov(points.T))
            assert spread[1] > 4 * spread[0], "a scar is long and thin"
            tilted += bool(mask.any(1).sum() > 3 and mask.any(0).sum() > 3)
    assert tilted > 10, "scars come at many angles, not only along the rows or columns"


def test_the_piece_is_the_images_own_texture_with_its_brightness_shifted():
    # flat images of distinct brightness: a piece from another image, or no shift, would show
    base = 0.35 + 0.3 * torch.arange(200.0) / 200
    images = base[:, None, None].expand(200, 64, 64).clone()
    _, out, labels, masks = pasted(images=images)
    low, high = inspection.PASTE_JITTER
    shifts = []
    for b in (labels > 0).nonzero().flatten():
        values = out[b][masks[b]]
        assert torch.allclose(values, values[0]), "one shift for the whole piece"
        shifts.append(float(values[0] - base[b]))
    shifts = np.array(shifts)
    assert np.all((np.abs(shifts) >= low - 1e-6) & (np.abs(shifts) <= high + 1e-6))
    assert (shifts > 0).mean() > 0.3 and (shifts < 0).mean() > 0.3, "brighter and darker pieces both occur"


def test_the_piece_comes_from_elsewhere_in_the_same_image():
    # noise images: the pasted pixels, less one brightness shift, match exactly one place of the SAME image, found
    # by trying every (row, column) offset; that place lies PASTE_SHIFT pixels away (wrapping round)
    noise = 0.35 + 0.3 * torch.rand(24, 64, 64, generator=torch.Generator().manual_seed(1))
    _, out, labels, masks = pasted(images=noise, seed=2)
    low, high = inspection.PASTE_SHIFT
    offsets = [(dy, dx) for dy in range(64) for dx in range(64)]
    checked = 0
    for b in (labels > 0).nonzero().flatten():
        moved = torch.stack([noise[b].roll((-dy, -dx), (0, 1)) for dy, dx in offsets])  # moved[k][r, c] = noise[r+dy, c+dx]
        difference = out[b][masks[b]] - moved[:, masks[b]]
        best = int(difference.std(1).argmin())
        assert float(difference[best].std()) < 1e-5, "the piece is a copy of the same image, shifted in brightness"
        assert all(low <= offset <= high for offset in offsets[best]), offsets[best]
        others = (torch.arange(24) != b).nonzero().flatten()
        assert all(float((out[b][masks[b]] - noise[o][masks[b]]).std()) > 1e-3 for o in others[:3])
        checked += 1
    assert checked >= 10


def test_cut_paste_is_seeded_and_rejects_bad_input():
    images = surfaces.load_split("train", 8).images
    first = inspection.cut_paste(images, torch.Generator().manual_seed(3))
    again = inspection.cut_paste(images, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    with pytest.raises(ValueError, match="B, H, W"):
        inspection.cut_paste(images[:, None], torch.Generator())
    with pytest.raises(ValueError, match="low <= high"):
        inspection.cut_paste(images, torch.Generator(), jitter=(0.3, 0.1))


def test_pasted_patches_mark_the_patch_tokens_that_hold_the_piece():
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, 0:8, 8:16] = True  # the whole of patch 1 (row 0, column 1)
    masks[0, 20:22, 40] = True  # 2 pixels of patch 2 * 8 + 5 = 21: under 1/16 of its 64
    masks[1, 60:64, 60:64] = True  # 16 pixels of the last patch
    marked = inspection.pasted_patches(masks, 8)
    assert marked.shape == (2, 64)
    assert marked[0].nonzero().flatten().tolist() == [1]
    assert marked[1].nonzero().flatten().tolist() == [63]


def test_cutpaste_pretraining_learns_its_pretext_and_leaves_the_head_alone():
    data = surfaces.load_split("train", 128)
    torch.manual_seed(0)
    vit = inspection.build("vit", TINY)
    before = {k: v.clone() for k, v in vit.state_dict().items()}
    history = inspection.pretrain_cutpaste(vit, data.images, steps=80, batch_size=64, lr=3e-3, seed=0, progress=False)
    assert len(history["loss"]) == len(history["accuracy"]) == 80
    assert np.mean(history["loss"][-10:]) < np.mean(history["loss"][:10]) - 0.1
    assert not torch.equal(vit.embed.proj.weight, before["embed.proj.weight"]), "the encoder is trained in place"
    assert torch.equal(vit.head.weight, before["head.weight"]), "the classifier head is for fine-tuning, not the pretext"


def test_cut_paste_keeps_the_images_device():
    # the "meta" device stands in for a GPU: mixing a CPU tensor into its arithmetic raises, as CUDA would
    images = torch.rand(4, 64, 64, device="meta")
    outputs = inspection.cut_paste(images, torch.Generator().manual_seed(0))
    assert all(t.device.type == "meta" for t in outputs)
