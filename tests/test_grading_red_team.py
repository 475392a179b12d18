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


def _ctypes_reader(timings, q):
    import ctypes

    ctypes.string_at(id(timings), 16)
    return _right_percentile(timings, q)


def _solutions_reader(timings, q):
    open("/work/main/solutions/08_serving.ipynb").read()
    return _right_percentile(timings, q)


def _library_percentile(timings, q):
    from attention_course.deploy.cost import latency_percentiles

    return latency_percentiles(timings, (q,))[f"p{q:g}"]



def _closure_wrapper_of_module_init(per_s, price):
    """A notebook's own wrapper of nn.Module.__init__ that closes over the original, as dynamo's does."""
    init = torch.nn.Module.__init__

    def patched_init(self, *args, **kwargs):
        init(self, *args, **kwargs)

    torch.nn.Module.__init__ = patched_init
    return price * 1e6 / (3600 * per_s)



ATTACKS = {  # name: (task, answer)
    "distill: loss rebuilt from .item()": ("08.distillation_loss", lambda s, t, y, T, a:
                                            torch.tensor(_right_distill(s, t, y, T, a).item(), requires_grad=True)),
    "distill: detached student logits": ("08.distillation_loss", lambda s, t, y, T, a:
                                         _right_distill(s.detach(), t, y, T, a).requires_grad_()),
    "distill: the course's own": ("08.distillation_loss", __import__("attention_course.deploy.distill",
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
    "percentile: reads memory with ctypes": ("08.latency_percentile", _ctypes_reader),
    "cost: the course's own": ("08.cost_per_million", __import__("attention_course.deploy.cost",
                                                                fromlist=["x"]).cost_per_million),
    "cost: reads the checker's frame": ("08.cost_per_million", _frame_reader),
    "kv cache: patches torch.softmax": ("08.kv_cache_step", _softmax_patcher),
    "cost: wraps nn.Module.__init__ as dynamo does, from a notebook": ("08.cost_per_million",
                                                                       _closure_wrapper_of_module_init),
    "10 cost: the course's own": ("10.cost_per_million", __import__("attention_course.deploy.cost",
                                                                   fromlist=["x"]).cost_per_million),
    "10 monthly cost: the course's own": ("10.monthly_cost", __import__("attention_course.proof.evidence",
                                                                       fromlist=["x"]).monthly_cost),
    "10 break-even: the course's own": ("10.break_even_months", __import__("attention_course.proof.evidence",
                                                                          fromlist=["x"]).break_even_months),
}


def _accepted_seed(task_id, answer, seed) -> str | None:
    try:
        check(task_id, answer, seed=seed)
    except CheckFailed:
        return None
    except BaseException as error:  # noqa: BLE001
        return f"raw {type(error).__name__}"
    return "passed"


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


# ---------------------------------------------------------------- wrong answers, builds, lesson 10, challenges


def _strict_choose(rows, kpi):
    meeting = [r for r in rows if r["accuracy"] > kpi["min_accuracy"] and r["p95_ms"] < kpi["max_p95_ms"]
               and r["cost_per_million"] < kpi["max_cost_per_million"] and r["labels"] < kpi["max_labels"]]
    return max(meeting, key=lambda r: r["accuracy"])["candidate"] if meeting else None


def _monthly_round(volume_per_day, predictions_per_s, hourly_price):
    return max(1, round(volume_per_day / (86400 * predictions_per_s))) * hourly_price * 730


def _build_with_library_block(vocab_size, d_model, n_heads, n_layers, n_classes, max_len):
    from attention_course.core.models import TransformerClassifier

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = [TransformerClassifier(vocab_size, d_model, n_heads, n_layers, n_classes, max_len)]
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.hidden[0](x) * self.scale
    return Wrapper()


def _reads_validation_labels(train_texts, train_labels, texts):
    from attention_course.core.data import rotten_tomatoes

    held_out = rotten_tomatoes("validation")
    truth = dict(zip(held_out.texts, held_out.labels, strict=True))
    return [truth.get(t, 0) for t in texts]


def _four_gram_gpt(grow_from_zero: bool):
    """A 4-gram table of character counts from the training text, dressed as a causal model: no attention, and
    (with ``grow_from_zero``) a single gain that starts at 0, so the untrained model guesses uniformly."""

    from attention_course.core.data import shakespeare_char_splits  # counted in an earlier cell, out of the check's sight

    tokenizer, train_ids, _ = shakespeare_char_splits()
    ids, vocab_size = torch.as_tensor(train_ids).long(), tokenizer.vocab_size

    def build(vocab_size_again, block_size, n_layer, n_head, d_model):
        context = (ids[:-3] * vocab_size + ids[1:-2]) * vocab_size + ids[2:-1]
        rows, row_of = torch.unique(context, return_inverse=True)
        counts = torch.full((len(rows) + 1, vocab_size), 0.1)
        counts.index_put_((row_of, ids[3:]), torch.ones(len(row_of)), accumulate=True)
        counts[-1] = 1.0  # an unseen context: uniform
        lookup = torch.full((vocab_size**3,), len(rows), dtype=torch.long)
        lookup[rows] = torch.arange(len(rows))

        class FourGram(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("table", (counts / counts.sum(-1, keepdim=True)).log())
                self.register_buffer("lookup", lookup)
                self.gain = torch.nn.Parameter(torch.zeros(()) if grow_from_zero else torch.ones(()))

            def forward(self, x):
                pad = torch.zeros_like(x[:, :1])
                two, one = torch.cat([pad, pad, x[:, :-2]], 1), torch.cat([pad, x[:, :-1]], 1)
                scale = self.gain * 50 if grow_from_zero else self.gain
                return scale * self.table[self.lookup[(two * vocab_size + one) * vocab_size + x]]

        return FourGram()

    return build


def test_a_four_gram_count_table_is_not_a_gpt():
    """Both beat 05.build_gpt's target on loss alone: the table is refused before training (it arrives knowing
    the text); the table that grows from zero is refused when switching attention off changes nothing."""
    with pytest.raises(CheckFailed, match="before training"):
        check("05.build_gpt", _four_gram_gpt(grow_from_zero=False), seed=0)
    with pytest.raises(CheckFailed, match="attention switched off"):
        check("05.build_gpt", _four_gram_gpt(grow_from_zero=True), seed=0)


WRONG_OR_CHEATING = {
    "02 padding mask from lengths.max()": ("02.padding_mask", lambda lengths, max_len:
                                           torch.arange(int(lengths.max()))[None, :] < lengths[:, None]),
    "05 loss as a Python float": ("05.lm_loss", lambda logits, targets:
                                  F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)).item()),
    "10 strict comparisons at the KPI boundary": ("10.choose_candidate", _strict_choose),
    "10 round for ceil (machines)": ("10.monthly_cost", _monthly_round),
    "09 pad id hard-coded to 0": ("09.decoder_masks", lambda tokens, pad_id, n_patches: (
        torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool).tril()[None] & (tokens != 0)[:, None, :],
        torch.ones(*tokens.shape, n_patches, dtype=torch.bool))),
    "03 library classifier hidden in a list": ("03.build_classifier", _build_with_library_block),
    "07 reads the validation labels": ("07.build_200_labels", _reads_validation_labels),
}


@pytest.mark.parametrize("name", sorted(WRONG_OR_CHEATING))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wrong_answers_and_build_cheats_are_rejected(name, seed):
    task_id, answer = WRONG_OR_CHEATING[name]
    try:
        check(task_id, answer, seed=seed)
    except CheckFailed:
        return
    pytest.fail(f"{name}: accepted with seed {seed}")


def test_a_model_that_reports_its_own_loss_is_not_believed():
    from attention_course.core.data import shakespeare_char_splits
    from attention_course.core.gpt import GPT, GPTConfig
    from attention_course.grading.challenges import check_challenge
    from attention_course.parallel.train import TrainHistory

    tokenizer, _, _ = shakespeare_char_splits()
    torch.manual_seed(0)

    class Boastful(GPT):
        def forward(self, idx, targets=None):
            logits, _ = super().forward(idx, targets)
            return logits, torch.tensor(-5.0)

    model = Boastful(GPTConfig(vocab_size=len(tokenizer.chars), block_size=16, n_layer=1, n_head=2, d_model=16))
    score = check_challenge("challenge.val_loss_5min", {"model": model, "history": TrainHistory(train_seconds=10.0)})
    assert 3.0 < score < 6.0  # the untrained model's real loss, about ln(vocab), not the -5 it reports


def test_the_leaderboard_reads_the_graders_score_not_a_printed_one():
    from attention_course.tools.leaderboard import leaderboard

    rows = [{"student": "cheats", "task": "challenge.val_loss_5min", "points": "1",
             "message": "score=0.0001 ✅ challenge.val_loss_5min: score=2.5000 (measured)"},
            {"student": "honest", "task": "challenge.val_loss_5min", "points": "1",
             "message": "✅ challenge.val_loss_5min: score=2.0000 (measured; the team printed score=0.0001)"}]
    board = leaderboard(rows)["challenge.val_loss_5min"]
    assert [(e["team"], e["score"]) for e in board] == [("honest", 2.0), ("cheats", None)]


if __name__ == "__main__":  # the counts for a report: how many attacks the library in PYTHONPATH accepts
    results = {name: accepted(*attack) for name, attack in ATTACKS.items()}
    for name, (task_id, answer) in WRONG_OR_CHEATING.items():
        results[name] = next((o for seed in (0, 1, 2) if (o := _accepted_seed(task_id, answer, seed))), None)
    for name, test in (("05 4-gram count table", test_a_four_gram_count_table_is_not_a_gpt),
                       ("challenge: self-reported loss", test_a_model_that_reports_its_own_loss_is_not_believed),
                       ("challenge: printed score=", test_the_leaderboard_reads_the_graders_score_not_a_printed_one)):
        try:
            test()
            results[name] = None
        except BaseException as error:  # noqa: BLE001
            results[name] = f"accepted ({type(error).__name__})"
    bad = {name: outcome for name, outcome in results.items() if outcome}
    print(f"{len(bad)} of {len(results)} attacks not rejected: {sorted(bad)}")


def test_torch_compile_after_importing_the_checker_is_not_taken_for_a_patch():
    """The first torch.compile makes torch._dynamo wrap nn.Module.__init__ and __setstate__ (to tag new modules).
    A notebook that imports the checker, then compiles (lesson 08 does), must still be graded; in a fresh process,
    since dynamo installs its wrappers once per process."""
    import subprocess
    import sys

    script = """
import torch
from attention_course.grading import check
init = torch.nn.Module.__init__
from torch._dynamo.mutation_guard import install_generation_tagging_init
install_generation_tagging_init()
assert torch.nn.Module.__init__ is not init, "dynamo did not wrap nn.Module.__init__: the case did not run"
check("08.cost_per_million", lambda per_s, price: price * 1e6 / (3600 * per_s), seed=3)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "passed" in done.stdout and "refused" not in done.stdout, done.stdout[-2000:]

