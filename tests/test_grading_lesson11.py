"""Lesson 11's checks accept right answers and reject plausible wrong ones, with the diagnosis that fits."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_course.grading import check


def recall(scores, defective, budget):
    good = np.sort(scores[~defective])[::-1]
    return float(np.mean(scores[defective] > good[int(np.floor(budget * len(good)))]))


def pointing(maps, masks, tolerance):
    grown = F.max_pool2d(masks[:, None].float(), 2 * tolerance + 1, stride=1, padding=tolerance)[:, 0] > 0
    return grown.flatten(1)[torch.arange(len(maps)), maps.flatten(1).argmax(-1)].float()


def error_cost(recall, false_alarm, parts, defect_rate, miss_price, alarm_price):
    defects = parts * defect_rate
    return defects * (1 - recall) * miss_price + (parts - defects) * false_alarm * alarm_price


CORRECT = {
    "11.recall_at_false_alarm": recall,
    "11.pointing_game": pointing,
    "11.masked_patch_loss": lambda rebuilt, target, mask: F.mse_loss(rebuilt[mask], target[mask]),
    "11.error_cost": error_cost,
}


@pytest.mark.parametrize("task_id", sorted(CORRECT))
def test_right_answers_pass(task_id, capsys):
    for _ in range(3):  # fresh random cases each time
        check(task_id, CORRECT[task_id])
    assert "passed" in capsys.readouterr().out


def _at_least(scores, defective, budget):
    good = np.sort(scores[~defective])[::-1]
    return float(np.mean(scores[defective] >= good[int(np.floor(budget * len(good)))]))


WRONG = [
    ("11.recall_at_false_alarm", _at_least, "ABOVE"),
    ("11.recall_at_false_alarm", lambda s, d, b: float(np.mean(s[d] > np.quantile(s, 1 - b))), "GOOD parts"),
    ("11.pointing_game", lambda maps, masks, t: pointing(maps, masks, 0), "grow the mask"),
    ("11.pointing_game", lambda maps, masks, t: masks.flatten(1)[torch.arange(len(maps)),
                                                                 maps.flatten(1).argmin(-1)].float(), "BRIGHTEST"),
    ("11.masked_patch_loss", lambda r, t, m: F.mse_loss(r, t), "MASKED patches"),
    ("11.masked_patch_loss", lambda r, t, m: F.mse_loss(r[~m], t[~m]), "HIDDEN"),
    ("11.error_cost", lambda r, f, n, d, m, a: n * d * (1 - r) * m + n * f * a, "GOOD parts"),
    ("11.error_cost", lambda r, f, n, d, m, a: n * d * (1 - r) * a + n * (1 - d) * f * m, "swapped"),
    ("11.error_cost", lambda r, f, n, d, m, a: n * d * (1 - r) * m, "false alarms' cost"),
]


@pytest.mark.parametrize("task_id, answer, message", WRONG, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(WRONG)])
def test_plausible_wrong_answers_fail_with_a_diagnosis(task_id, answer, message):
    with pytest.raises(AssertionError, match=message):
        check(task_id, answer)


def test_a_weak_inspector_misses_the_build_target():
    def constant(images, labels, unlabelled, held_out):
        return torch.zeros(len(held_out))  # no information: recall 0 at any false-alarm budget

    with pytest.raises(AssertionError, match="the target"):
        check("11.build_inspector", constant)


def test_unfinished_stub_says_so():
    def stub(*args):
        raise NotImplementedError
    with pytest.raises(AssertionError, match="not done yet"):
        check("11.error_cost", stub)


def test_error_cost_names_the_swap_on_every_draw_and_is_exact_on_large_lines():
    # the tolerance is relative to the answer's size and applied once: scaled twice, a large line's cost let a 10 %
    # error pass and let a swapped answer match another mistake's diagnosis (seen once in CI)
    def swapped(r, f, n, d, m, a):
        return n * d * (1 - r) * a + n * (1 - d) * f * m

    def ten_percent_off_on_large_lines(r, f, n, d, m, a):
        right = n * d * (1 - r) * m + n * (1 - d) * f * a
        return right * (1.1 if n > 10_000 else 1.0)

    for _ in range(30):
        with pytest.raises(AssertionError, match="swapped"):
            check("11.error_cost", swapped)
        with pytest.raises(AssertionError, match="failed"):
            check("11.error_cost", ten_percent_off_on_large_lines)
