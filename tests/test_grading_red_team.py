"""Our own red team against the self-check (``check`` in the learner's kernel): wrong answers and cheats over
lessons 08-10 and the build tasks' rules. Every attack must be rejected with a CheckFailed (never a raw
exception, never a pass). ``python tests/test_grading_red_team.py`` prints how many each library accepts."""

import math
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_course.grading import check
from attention_course.grading._compare import CheckFailed


def _right_distill(s, t, y, temp, alpha):
    soft = F.kl_div(F.log_softmax(s / temp, -1), F.softmax(t / temp, -1), reduction="batchmean")
    return alpha * temp**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def _right_percentile(timings, q):
    ordered = sorted(timings)
    rank = q / 100 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


class Forged(float):
    def __eq__(self, other):
        return True

    def __float__(self):
        return 1.0

    __hash__ = float.__hash__


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class Sleepy:
    def __eq__(self, other):
        time.sleep(30)
        return True

    __hash__ = object.__hash__


class Exits:
    def __eq__(self, other):
        raise SystemExit(0)

    __hash__ = object.__hash__


def _frame_reader(*args, **kwargs):
    frame = sys._getframe(1)
    while frame is not None:
        if "expected" in frame.f_locals:
            return frame.f_locals["expected"]
        frame = frame.f_back
    return 0.0


def _code_swapper(timings, q):
    from attention_course.grading import _compare

    _compare.fail.__code__ = (lambda *a, **k: None).__code__
    return 0.0


def _softmax_patcher(*args):
    torch.softmax = lambda x, dim=-1, **k: torch.zeros_like(x)
    return torch.tensor(0.0)


def _mean_patcher(timings, q):
    np.mean = lambda *a, **k: 0.0
    return 0.0


def _tasks_patcher(timings, q):
    from attention_course.grading import TASKS

    TASKS["08.latency_percentile"] = lambda fn: 1
    return 0.0


def _gc_reader(timings, q):
    import gc

    return next((o for o in gc.get_objects() if isinstance(o, float)), 0.0)


def _solutions_reader(timings, q):
    open("/work/main/solutions/08_serving.ipynb").read()
    return _right_percentile(timings, q)


def _library_percentile(timings, q):
    from attention_course.serving import latency_percentiles

    return latency_percentiles(timings, (q,))[f"p{q:g}"]


ATTACKS = {  # name: (task, answer)
    "distill: loss rebuilt from .item()": ("08.distillation_loss", lambda s, t, y, T, a:
                                            torch.tensor(_right_distill(s, t, y, T, a).item(), requires_grad=True)),
    "distill: detached student logits": ("08.distillation_loss", lambda s, t, y, T, a:
                                         _right_distill(s.detach(), t, y, T, a).requires_grad_()),
    "distill: the course's own": ("08.distillation_loss", __import__("attention_course.distill",
                                                                    fromlist=["x"]).distillation_loss),
    "percentile: np.percentile": ("08.latency_percentile", lambda t, q: float(np.percentile(t, q))),
    "percentile: the course's own": ("08.latency_percentile", _library_percentile),
    "percentile: forged float subclass": ("08.latency_percentile", lambda t, q: Forged(0.0)),
    "percentile: always-equal object": ("08.latency_percentile", lambda t, q: AlwaysEqual()),
    "percentile: sleeping __eq__": ("08.latency_percentile", lambda t, q: Sleepy()),
    "percentile: SystemExit from __eq__": ("08.latency_percentile", lambda t, q: Exits()),
    "percentile: reads the checker's frame": ("08.latency_percentile", _frame_reader),
    "percentile: swaps _compare.fail.__code__": ("08.latency_percentile", _code_swapper),
    "percentile: patches np.mean": ("08.latency_percentile", _mean_patcher),
    "percentile: patches TASKS": ("08.latency_percentile", _tasks_patcher),
    "percentile: gc.get_objects": ("08.latency_percentile", _gc_reader),
    "percentile: reads solutions/": ("08.latency_percentile", _solutions_reader),
    "cost: the course's own": ("08.cost_per_million", __import__("attention_course.serving",
                                                                fromlist=["x"]).cost_per_million),
    "cost: reads the checker's frame": ("08.cost_per_million", _frame_reader),
    "kv cache: patches torch.softmax": ("08.kv_cache_step", _softmax_patcher),
    "10 cost: the course's own": ("10.cost_per_million", __import__("attention_course.serving",
                                                                   fromlist=["x"]).cost_per_million),
    "10 monthly cost: the course's own": ("10.monthly_cost", __import__("attention_course.poc",
                                                                       fromlist=["x"]).monthly_cost),
    "10 break-even: the course's own": ("10.break_even_months", __import__("attention_course.poc",
                                                                          fromlist=["x"]).break_even_months),
}


def accepted(task_id, answer) -> str | None:
    """None when the check rejected the attack with a CheckFailed; else what happened."""
    try:
        check(task_id, answer, seed=3)
    except CheckFailed:
        return None
    except BaseException as error:  # noqa: BLE001
        return f"raw {type(error).__name__}"
    return "passed"


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_the_self_check_rejects(name, capsys):
    task_id, answer = ATTACKS[name]
    outcome = accepted(task_id, answer)
    import attention_course.grading._integrity as integrity

    integrity.verify()  # whatever an attack changed is put back before the next
    assert outcome is None, f"{name}: {outcome}"


def test_a_right_answer_in_float32_passes(capsys):
    check("08.latency_percentile", lambda t, q: float(np.float32(_right_percentile(t, q))), seed=3)
    assert "passed" in capsys.readouterr().out


if __name__ == "__main__":
    results = {name: accepted(*attack) for name, attack in ATTACKS.items()}
    bad = {name: outcome for name, outcome in results.items() if outcome}
    print(f"{len(bad)} of {len(results)} attacks not rejected: {bad}")
