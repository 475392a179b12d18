"""Lesson 11's models, operating point, localisation scores and forecasting baselines, on tiny cases."""

import numpy as np
import pytest
import torch

from attention_course.factory import demand, inspection, surfaces

TINY = dict(patch=8, d_model=16, n_heads=2, n_layers=1)


def test_models_take_surfaces_and_give_five_classes():
    images = surfaces.load_split("test", 6).images
    for kind in ("vit", "cnn"):
        model = inspection.build(kind, TINY)
        assert model(images).shape == (6, len(surfaces.CLASSES))
    cnn, vit = inspection.build("cnn", TINY), inspection.build("vit", TINY)
    assert 0.5 < inspection.n_params(cnn) / inspection.n_params(vit) < 2, "the CNN is matched to the ViT's size"
    with pytest.raises(ValueError, match="expected 'vit' or 'cnn'"):
        inspection.build("mlp", TINY)


def test_models_ignore_overall_brightness():
    images = surfaces.load_split("test", 4).images
    model = inspection.build("cnn", TINY).eval()
    with torch.no_grad():
        assert torch.allclose(model(images), model(images + 0.2), atol=1e-5)


def test_training_and_pretraining_lower_their_losses():
    data = surfaces.load_split("train", 64)
    torch.manual_seed(0)
    vit = inspection.build("vit", TINY)
    pre = inspection.pretrain_masked(vit, data.images, steps=30, batch_size=32, lr=3e-3, progress=False)
    assert np.mean(pre["loss"][-5:]) < np.mean(pre["loss"][:5])
    model, fit = inspection.fine_tune(vit, data.images, data.labels, steps=30, batch_size=32, lr=3e-3, progress=False)
    assert np.mean(fit["loss"][-5:]) < np.mean(fit["loss"][:5])
    assert not torch.equal(model.head.weight, vit.head.weight), "fine-tuning trains a copy with a fresh head"


def _encoder(model):
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_probe_first_trains_only_the_head_then_the_whole_network(monkeypatch):
    data = surfaces.load_split("train", 64)
    torch.manual_seed(0)
    pretrained = inspection.build("vit", TINY)
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    phases = []  # (steps, encoder, head weight) after each call of train_model: the probe, then the whole network
    train_model = inspection.train_model

    def recorded(model, *args, **kw):
        out = train_model(model, *args, **kw)
        phases.append((out["steps"], _encoder(model), model.head.weight.detach().clone()))
        generators.append(kw.get("generator"))
        descs.append(kw.get("desc"))
        return out

    rates, set_lr = [], inspection.set_lr
    monkeypatch.setattr(inspection, "set_lr", lambda optimizer, lr: rates.append(lr) or set_lr(optimizer, lr))
    generators, descs = [], []

    monkeypatch.setattr(inspection, "train_model", recorded)
    model, fit = inspection.fine_tune(pretrained, data.images, data.labels, steps=10, probe_steps=6, batch_size=32,
                                      lr=3e-3, progress=False, desc="ViT, 50 labels")
    assert descs == ["ViT, 50 labels, head only", "ViT, 50 labels, whole network"], "each phase's bar says which"
    (probe_steps, after_probe, head_after_probe), (whole_steps, after_all, head_after_all) = phases
    assert (probe_steps, whole_steps) == (6, 4)
    assert _same(after_probe, _encoder(pretrained)), "the probe leaves the encoder bit for bit as pretrained"
    assert not torch.equal(head_after_probe, pretrained.head.weight), "the probe trains the fresh head"
    assert not _same(after_all, _encoder(pretrained)), "then the whole network trains"
    assert not torch.equal(head_after_all, head_after_probe)
    assert fit["steps"] == 10 and len(fit["loss"]) == 10 and fit["probe_steps"] == 6 and fit["seconds"] > 0
    assert all(p.requires_grad for p in model.parameters()), "the fine-tuned model is left trainable"
    assert _same(before, {k: v for k, v in pretrained.state_dict().items()}), "the pretrained ViT is not modified"
    assert all(p.requires_grad for p in pretrained.parameters())
    # one warm-up and cosine schedule over all 10 steps (the whole network starts at the probe's decayed rate, not
    # at a second warm-up), and one stream of batches (the second phase does not repeat the probe's)
    assert rates == pytest.approx([inspection.warmup_cosine_lr(step, 1, 10, 3e-3, 0.0) for step in range(10)])
    assert generators[0] is not None and generators[0] is generators[1]


def test_without_a_probe_the_whole_network_trains_from_the_first_step(monkeypatch):
    data = surfaces.load_split("train", 64)
    torch.manual_seed(0)
    pretrained = inspection.build("vit", TINY)
    calls = []
    train_model = inspection.train_model
    monkeypatch.setattr(inspection, "train_model", lambda model, *a, **kw: calls.append(kw) or train_model(model, *a, **kw))
    for probe_steps in (None, 0):
        model, fit = inspection.fine_tune(pretrained, data.images, data.labels, steps=3, probe_steps=probe_steps,
                                          batch_size=16, progress=False)
        assert fit["steps"] == 3 and not _same(_encoder(model), _encoder(pretrained))
    assert len(calls) == 2, "one phase each"


@pytest.mark.parametrize("probe_steps", [-1, 10, 11, 2.5, True, "3"])
def test_fine_tune_rejects_a_probe_that_is_not_a_step_count_below_steps(probe_steps):
    data = surfaces.load_split("train", 8)
    with pytest.raises(ValueError, match=r"0 <= probe_steps < steps \(10\)"):
        inspection.fine_tune(inspection.build("vit", TINY), data.images, data.labels, steps=10,
                             probe_steps=probe_steps, progress=False)


def _tiny_curve(pretext: str, monkeypatch) -> tuple[list[dict], dict, list]:
    calls = []
    for name in ("pretrain_cutpaste", "pretrain_masked", "fine_tune"):
        original = getattr(inspection, name)
        spy = lambda *a, _name=name, _original=original, **kw: calls.append((_name, kw)) or _original(*a, **kw)
        monkeypatch.setattr(inspection, name, spy)
    train, validation, test = (surfaces.load_split(split, 40) for split in ("train", "validation", "test"))
    records, kept = inspection.data_efficiency(train, validation, test, [20], [0], TINY, steps=4, pretrain_steps=2,
                                               unlabelled=40, device=torch.device("cpu"), train_kw=dict(batch_size=16),
                                               pretrain_kw=dict(batch_size=16), progress=False, pretext=pretext)
    return records, kept, calls


def test_data_efficiency_pretrains_with_cutpaste_and_probes_first(monkeypatch):
    records, kept, calls = _tiny_curve("cutpaste", monkeypatch)
    assert inspection.MODELS == ("CNN", "ViT from scratch", inspection.PRETRAINED) == tuple(kept)
    assert [r["model"] for r in records] == list(inspection.MODELS)
    assert [name for name, _ in calls] == ["pretrain_cutpaste", "fine_tune"]
    assert calls[1][1]["probe_steps"] == 2, "half of the 4 fine-tuning steps probe the head"


def test_data_efficiency_can_still_pretrain_with_masked_patches(monkeypatch):
    records, kept, calls = _tiny_curve("masked", monkeypatch)
    masked = inspection.PRETRAINED_BY_PRETEXT["masked"]
    assert masked != inspection.PRETRAINED
    assert [r["model"] for r in records] == ["CNN", "ViT from scratch", masked] and masked in kept
    assert [name for name, _ in calls] == ["pretrain_masked", "fine_tune"]
    with pytest.raises(ValueError, match="unknown pretext 'jigsaw'; expected one of 'cutpaste', 'masked'"):
        _tiny_curve("jigsaw", monkeypatch)


def test_masked_pretraining_reads_no_labels():
    data = surfaces.load_split("train", 16)
    vit = inspection.build("vit", TINY)
    model = inspection.MaskedPatchModel(vit)
    mask = torch.zeros(16, vit.grid**2, dtype=torch.bool)
    mask[:, ::3] = True
    loss = model(data.images, mask)
    assert loss.ndim == 0 and loss > 0


def test_recall_at_false_alarm_picks_the_right_threshold():
    good = np.arange(100) / 100  # 0.00 .. 0.99
    defects = np.array([0.5, 0.955, 0.97, 0.99, 1.5])
    scores = np.concatenate([good, defects])
    defective = np.r_[np.zeros(100, bool), np.ones(5, bool)]
    point = inspection.recall_at_false_alarm(scores, defective, 0.05)
    assert point["false_alarm"] <= 0.05 and point["threshold"] == pytest.approx(0.94)
    assert point["recall"] == pytest.approx(4 / 5)
    strict = inspection.recall_at_false_alarm(scores, defective, 0.0)
    assert strict["false_alarm"] == 0 and strict["recall"] == pytest.approx(1 / 5)
    fixed = inspection.operating_point(scores, defective, 0.96)
    assert fixed["recall"] == pytest.approx(3 / 5) and fixed["false_alarm"] == pytest.approx(3 / 100)
    with pytest.raises(ValueError, match="both good and defective"):
        inspection.recall_at_false_alarm(defects, np.ones(5, bool))


def test_recall_by_kind_counts_each_kind_at_the_threshold():
    # good parts (label 0) never count; scratches all caught, spots half, cracks none, no stain at all
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    scores = np.array([0.9, 0.1, 0.8, 0.7, 0.6, 0.2, 0.3, 0.5])
    by_kind = inspection.recall_by_kind(scores, labels, 0.5)
    assert by_kind == {"scratch": {"recall": 1.0, "parts": 2}, "spot": {"recall": 0.5, "parts": 2},
                       "crack": {"recall": 0.0, "parts": 2}, "stain": {"recall": None, "parts": 0}}
    # the per-kind recalls, weighted by parts, give the overall recall of operating_point
    point = inspection.operating_point(scores, labels > 0, 0.5)
    caught = sum(v["recall"] * v["parts"] for v in by_kind.values() if v["parts"])
    assert caught / 6 == pytest.approx(point["recall"])


def test_recall_by_kind_rejects_bad_input():
    labels, scores = np.array([0, 1, 4]), np.array([0.1, 0.9, 0.8])
    with pytest.raises(ValueError, match="one score and one label per part"):
        inspection.recall_by_kind(scores[:2], labels, 0.5)
    with pytest.raises(ValueError, match="class indices 0..4"):
        inspection.recall_by_kind(scores, np.array([0, 1, 5]), 0.5)
    with pytest.raises(ValueError, match="class indices"):
        inspection.recall_by_kind(scores, np.array([0.0, 1.0, 2.0]), 0.5)
    with pytest.raises(ValueError, match="at least one defective part"):
        inspection.recall_by_kind(scores, np.zeros(3, int), 0.5)
    with pytest.raises(ValueError, match="finite"):
        inspection.recall_by_kind(scores, labels, float("nan"))


def _run(model, labels, seed, stain):
    kinds = {"scratch": 1.0, "spot": 0.9, "crack": 1.0, "stain": stain}
    return {"model": model, "labels": labels, "seed": seed,
            "deployed_by_kind": {k: {"recall": v, "parts": 10} for k, v in kinds.items()}}


def test_summarise_by_kind_averages_seeds_and_finds_the_weakest_kind():
    records = [_run("CNN", 1000, 0, 0.5), _run("CNN", 1000, 1, 0.7), _run("CNN", 200, 0, 0.1),
               _run("ViT", 1000, 0, 0.95)]
    rows = inspection.summarise_by_kind(records, 1000)
    stain = next(r for r in rows if r["model"] == "CNN" and r["kind"] == "stain")
    assert stain["mean"] == pytest.approx(0.6) and (stain["min"], stain["max"], stain["seeds"]) == (0.5, 0.7, 2)
    assert len(rows) == 8 and {r["labels"] for r in rows} == {1000}  # the 200-label run is left out
    assert inspection.weakest_kind(rows, "CNN")["kind"] == "stain"
    assert inspection.weakest_kind(rows, "ViT")["kind"] == "spot"
    with pytest.raises(ValueError, match=r"label budgets \[200, 1000\]"):
        inspection.summarise_by_kind(records, 50)
    with pytest.raises(ValueError, match="no recall by kind for 'MLP'"):
        inspection.weakest_kind(rows, "MLP")


def test_evaluate_reports_recall_by_kind_at_its_deployed_threshold():
    torch.manual_seed(0)
    model = inspection.InspectionCNN(4)
    validation, test = surfaces.load_split("validation", 40), surfaces.load_split("test", 40)
    result = inspection.evaluate(model, validation, test)
    by_kind = result["deployed_by_kind"]
    assert sum(v["parts"] for v in by_kind.values()) == int(test.defective.sum())
    caught = sum(v["recall"] * v["parts"] for v in by_kind.values() if v["parts"])
    assert caught / int(test.defective.sum()) == pytest.approx(result["deployed"]["recall"])


def test_pointing_game_and_iou_score_against_the_mask():
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[:, 10:14, 20:24] = True
    maps = torch.zeros(2, 64, 64)
    maps[0, 11, 21] = 1.0  # peak on the defect
    maps[1, 50, 50] = 1.0  # peak far away
    assert inspection.pointing_game(maps, masks).tolist() == [1.0, 0.0]
    near = torch.zeros(1, 64, 64)
    near[0, 15, 21] = 1.0  # two pixels below the defect: a hit within the tolerance, a miss without it
    assert inspection.pointing_game(near, masks[:1], tolerance=2).tolist() == [1.0]
    assert inspection.pointing_game(near, masks[:1], tolerance=0).tolist() == [0.0]
    perfect = masks.float()
    assert inspection.top_iou(perfect, masks).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="defective images only"):
        inspection.top_iou(maps, torch.zeros(2, 64, 64, dtype=torch.bool))


def test_random_maps_score_at_chance():
    data = surfaces.load_split("test", 200)
    masks = data.masks[data.defective]
    hits = inspection.pointing_game(inspection.random_maps(len(masks), seed=1), masks)
    grown = torch.nn.functional.max_pool2d(masks[:, None].float(), 5, 1, 2)[:, 0]
    chance = float(grown.mean())
    assert abs(hits.mean() - chance) < 0.08, (hits.mean(), chance)


def test_localisation_maps_have_the_image_shape():
    data = surfaces.load_split("test", 4)
    vit, cnn = inspection.build("vit", TINY), inspection.build("cnn", TINY)
    for heat in (inspection.rollout_maps(vit, data.images), inspection.gradcam_maps(cnn, data.images)):
        assert heat.shape == (4, 64, 64) and torch.isfinite(heat).all()
    rows = inspection.localisation({"random map": inspection.random_maps(2)}, data.masks[1::2], data.labels[1::2])
    assert rows[0]["images"] == 2 and 0 <= rows[0]["pointing"] <= 1


def test_summarise_gives_spread_and_interval():
    records = [{"model": "CNN", "labels": 50, "recall_at_far": v} for v in (0.5, 0.6, 0.7)]
    (row,) = inspection.summarise(records)
    assert row["mean"] == pytest.approx(0.6) and row["std"] == pytest.approx(0.1)
    assert row["interval"][0] < 0.5 and row["interval"][1] > 0.7  # t with 2 degrees of freedom: wide
    (single,) = inspection.summarise(records[:1])
    assert single["interval"] is None and single["std"] == 0.0


def test_exponential_smoothing_follows_a_seasonal_series():
    months = np.arange(96)
    series = (100 + 0.5 * months) * (1 + 0.3 * np.sin(2 * np.pi * months / 12))
    forecast = demand.exponential_smoothing(series[:84], 12)
    assert np.abs(forecast - series[84:]).mean() < 0.05 * np.abs(series[84:] - series[72:84]).mean() + 1.0
    with pytest.raises(ValueError, match="two seasons"):
        demand.exponential_smoothing(series[:20], 12)


def test_horizon_table_sorts_by_mase():
    scores = {"a": {"mase": 0.9, "mase_by_horizon": [0.5] * 12}, "b": {"mase": 0.7, "mase_by_horizon": [0.4] * 12}}
    bands = {name: {"mase": (0.1, 1.0), "mase_by_horizon": [(0.1, 1.0)] * 12} for name in scores}
    rows = demand.by_horizon_table(scores, bands)
    assert [r["method"] for r in rows] == ["b", "a"] and rows[0]["h12"] == 0.4
