"""Checks for lesson 11: recall at a false-alarm budget, the pointing game, the masked-patch loss, the monthly
cost of inspection errors, and the build-it task (an inspector that hits a recall target on held-out surfaces).

Every check draws fresh random cases (a hard-coded answer fails) and names the plausible mistake it sees.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..core.profiles import LESSON11_BUILD, pick_profile, sizes
from ..factory.inspection import pointing_game, recall_at_false_alarm
from ._core import call, expect_number, expect_tensor, fail, fresh_generator, fresh_rng, note, task
from ._messages import tr

# ---------------------------------------------------------------- 11.recall_at_false_alarm


@task("11.recall_at_false_alarm")
def check_recall_at_false_alarm(fn) -> int:
    rng = fresh_rng()
    cases = []
    for _ in range(3):
        goods, defects = rng.randint(40, 120), rng.randint(10, 60)
        good = np.round([rng.gauss(0.3, 0.15) for _ in range(goods)], 3)
        bad = np.round([rng.gauss(0.7, 0.2) for _ in range(defects)], 3)
        cases.append((np.concatenate([good, bad]), np.r_[np.zeros(goods, bool), np.ones(defects, bool)],
                      rng.choice([0.05, 0.1, 0.02])))
    # a toy first: a defective part scores exactly the threshold (0.3), which `>=` would flag
    cases.insert(0, (np.array([0.1, 0.2, 0.3, 0.4, 0.3, 0.9]), np.array([0, 0, 0, 0, 1, 1], bool), 0.25))
    for scores, defective, budget in cases:
        order = np.random.default_rng(rng.randint(0, 10**6)).permutation(len(scores))  # classes interleaved
        scores, defective = scores[order], defective[order]
        case = tr("{good} good and {defective} defective scores, false-alarm budget {budget}",
                  good=int((~defective).sum()), defective=int(defective.sum()), budget=budget)
        got = call("11.recall_at_false_alarm", case, fn, scores, defective, budget)
        good_sorted = np.sort(scores[~defective])[::-1]
        k = int(np.floor(budget * len(good_sorted)))
        diagnoses = [(float(np.mean(scores[defective] >= good_sorted[k])), tr("flag a part only when its score is "
                                                                              "ABOVE the threshold (>): with >= the "
                                                                              "good part at the threshold is flagged "
                                                                              "too, one false alarm over")),
                     (float(np.mean(scores[defective] > np.quantile(scores, 1 - budget))), tr("read the threshold "
                                                                                              "from the GOOD parts' "
                                                                                              "scores only: the "
                                                                                              "false-alarm rate is a "
                                                                                              "share of good parts")),
                     (float(np.mean(scores[~defective] > good_sorted[k])), tr("that is the false-alarm rate; return "
                                                                              "the recall, the share of DEFECTIVE "
                                                                              "parts flagged"))]
        expect_number("11.recall_at_false_alarm", case, got, recall_at_false_alarm(scores, defective, budget)["recall"],
                      tr("threshold = the k-th highest good score (k = floor(budget x goods), counting from 0); "
                         "recall = share of defective scores above it"), diagnoses, tol=1e-9)
    return len(cases)


# ---------------------------------------------------------------- 11.pointing_game


@task("11.pointing_game")
def check_pointing_game(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = []
    for _ in range(3):
        count, size, tolerance = rng.randint(3, 8), rng.choice([16, 24, 32]), rng.choice([1, 2])
        masks = torch.zeros(count, size, size, dtype=torch.bool)
        maps = torch.rand(count, size, size, generator=g)
        for i in range(count):
            r, c = rng.randint(3, size - 6), rng.randint(3, size - 6)
            masks[i, r : r + 3, c : c + 3] = True
            if i % 2 == 0:  # half the maps peak next to the defect: `tolerance` rows below it, outside the mask
                maps[i, r + 2 + tolerance, c + 1] = 2.0
            else:  # the others peak on the defect itself
                maps[i, r + 1, c + 1] = 2.0
        cases.append((maps, masks, tolerance))
    for maps, masks, tolerance in cases:
        case = tr("maps {shape}, tolerance {tolerance}", shape=tuple(maps.shape), tolerance=tolerance)
        got = call("11.pointing_game", case, fn, maps, masks, tolerance)
        got = torch.as_tensor(np.asarray(got, dtype=np.float64)) if isinstance(got, (np.ndarray, list)) else got
        expected = torch.as_tensor(pointing_game(maps, masks, tolerance), dtype=torch.float64)
        exact = torch.as_tensor(pointing_game(maps, masks, 0), dtype=torch.float64)
        lowest = masks.flatten(1)[torch.arange(len(maps)), maps.flatten(1).argmin(-1)].double()
        diagnoses = [(exact, tr("grow the mask by the tolerance ({tolerance} pixels) before asking whether the peak "
                                "lies on it: a peak right beside a thin scratch counts as a hit", tolerance=tolerance)),
                     (lowest, tr("the map's BRIGHTEST pixel (argmax), not its darkest"))]
        tensor = got.double() if isinstance(got, torch.Tensor) and got.dtype != torch.bool else got
        expect_tensor("11.pointing_game", case, tensor.double() if isinstance(tensor, torch.Tensor) else tensor,
                      expected, tr("per image: 1.0 when the map's argmax lies within `tolerance` pixels of the mask "
                                   "(grow the mask with a max-pool of size 2*tolerance+1), else 0.0"), diagnoses, atol=0, rtol=0)
    return len(cases)


# ---------------------------------------------------------------- 11.masked_patch_loss


@task("11.masked_patch_loss")
def check_masked_patch_loss(fn) -> int:
    g, rng = fresh_generator(), fresh_rng()
    cases = []
    for _ in range(3):
        batch, patches, dim = rng.randint(2, 5), rng.choice([4, 9, 16]), rng.choice([4, 16])
        mask = torch.rand(batch, patches, generator=g) < 0.6
        mask[:, 0] = True  # at least one masked patch per image
        mask[:, -1] = False  # and one visible
        cases.append((torch.randn(batch, patches, dim, generator=g), torch.randn(batch, patches, dim, generator=g), mask))
    for rebuilt, target, mask in cases:
        case = tr("rebuilt/target {shape}, {mask} of {numel} patches masked",
                  shape=tuple(rebuilt.shape), mask=int(mask.sum()), numel=mask.numel())
        got = call("11.masked_patch_loss", case, fn, rebuilt, target, mask)
        expected = F.mse_loss(rebuilt[mask], target[mask])
        diagnoses = [(F.mse_loss(rebuilt, target), tr("score only the MASKED patches: the visible ones are given to "
                                                      "the model, so rebuilding them teaches nothing")),
                     (F.mse_loss(rebuilt[~mask], target[~mask]), tr("the mask is True where a patch is HIDDEN: score "
                                                                    "those, not the visible ones")),
                     (((rebuilt - target) ** 2).sum(-1)[mask].mean(), tr("average over every pixel of the masked "
                                                                         "patches, not the sum over a patch's pixels"))]
        expect_number("11.masked_patch_loss", case, got, expected.item(),
                      tr("mean squared error over the pixels of the masked patches only: F.mse_loss(rebuilt[mask], "
                         "target[mask])"), [(d.item(), h) for d, h in diagnoses], tol=1e-5)
    return len(cases)


# ---------------------------------------------------------------- 11.error_cost


@task("11.error_cost")
def check_error_cost(fn) -> int:
    rng = fresh_rng()
    cases = [(rng.uniform(0.8, 0.99), rng.uniform(0.01, 0.1), rng.choice([1e5, 5e5, 2e6]), rng.uniform(0.005, 0.05),
              rng.choice([10.0, 20.0, 50.0]), rng.choice([0.2, 0.5, 1.0])) for _ in range(3)]
    cases.append((0.9, 0.05, 1000.0, 0.5, 10.0, 1.0))  # a toy: 500 defects, 50 missed; 500 good, 25 flagged
    for recall, false_alarm, parts, defect_rate, miss_price, alarm_price in cases:
        case = (tr("recall {recall:.3f}, false alarms {false_alarm:.3f}, {parts:,.0f} parts, {defect_rate:.1%} "
                   "defective, USD {miss_price} a miss, USD {alarm_price} a false alarm",
                   recall=recall, false_alarm=false_alarm, parts=parts, defect_rate=defect_rate, miss_price=miss_price,
                   alarm_price=alarm_price))
        got = call("11.error_cost", case, fn, recall, false_alarm, parts, defect_rate, miss_price, alarm_price)
        defects = parts * defect_rate
        misses, alarms = defects * (1 - recall) * miss_price, (parts - defects) * false_alarm * alarm_price
        diagnoses = [(defects * (1 - recall) * miss_price + parts * false_alarm * alarm_price, tr("false alarms "
                                                                                                  "happen on GOOD "
                                                                                                  "parts only: "
                                                                                                  "multiply the "
                                                                                                  "false-alarm rate "
                                                                                                  "by the good "
                                                                                                  "parts, parts x (1 "
                                                                                                  "- defect rate)")),
                     (defects * recall * miss_price + (parts - defects) * false_alarm * alarm_price, tr("a miss is a "
                                                                                                        "defect NOT "
                                                                                                        "caught: "
                                                                                                        "defects x "
                                                                                                        "(1 - recall)")),
                     (defects * (1 - recall) * alarm_price + (parts - defects) * false_alarm * miss_price,
                      tr("the prices are swapped: a missed defect costs miss_price")),
                     (misses, tr("add the false alarms' cost too"))]
        expect_number("11.error_cost", case, got, misses + alarms,
                      tr("defects x (1 - recall) x miss_price + good parts x false_alarm x alarm_price"), diagnoses,
                      tol=1e-6)  # relative: expect_number scales it by the answer's size
    return len(cases)


# ---------------------------------------------------------------- 11.build_inspector (part VI's build-it task)


@task("11.build_inspector", time_limit=1200, forbid=())
def check_build_inspector(train_and_score) -> int:
    """``train_and_score(images, labels, unlabelled, held_out)`` -> one defect score per held-out image.

    The learner gets labelled training surfaces (classes 0 = good, 1-4 = defect kinds), unlabelled ones, and
    held-out images it never saw labels for (the validation split); the check measures recall at a false-alarm
    rate <= 0.05 against the target of its profile."""
    from ..factory import surfaces

    task_id = "11.build_inspector"
    profile = pick_profile(torch.device("cpu"))  # the check trains on the CPU: same numbers on every machine
    s = sizes(LESSON11_BUILD, profile)
    labelled = surfaces.load_split("train").take(s.n_labels)
    unlabelled = surfaces.load_split("train").images[s.n_labels : s.n_labels + s.n_unlabelled]
    held_out = surfaces.load_split("validation", s.n_eval)
    got = call(task_id, tr("training and scoring"), train_and_score, labelled.images, labelled.labels, unlabelled,
               held_out.images)
    try:
        scores = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got, dtype=float).reshape(-1)
    except Exception:  # noqa: BLE001  (anything that is not a sequence of numbers)
        scores = None
    if scores is None or len(scores) != len(held_out) or not np.isfinite(scores).all():
        fail(task_id, "scoring", tr("{n_held_out} finite defect scores", n_held_out=len(held_out)), got,
             tr("return one number per held-out image, higher = more likely defective (e.g. 1 - p(good))"))
    point = recall_at_false_alarm(scores, held_out.defective.numpy(), 0.05)
    what = (tr("{n_labels} labels, {n_unlabelled} unlabelled images, {n_held_out} held-out surfaces (profile "
               "{profile}): recall {recall:.3f} at false alarms {false_alarm:.3f}, target {target:.2f}",
               n_labels=s.n_labels, n_unlabelled=s.n_unlabelled, n_held_out=len(held_out), profile=profile,
               recall=point['recall'], false_alarm=point['false_alarm'], target=s.target))
    if point["recall"] < s.target:
        fail(task_id, tr("the target"), tr("recall >= {target:.2f} at false alarms <= 0.05", target=s.target),
             f"{point['recall']:.3f}",
             tr("{what}. Standardise each image, train longer, use flips, or pretrain on the unlabelled images first "
                "(CutPaste, as the lesson does, or masked patches)",
                what=what))
    note(what)
    return 1
