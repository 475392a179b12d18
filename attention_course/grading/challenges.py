"""Team challenges: the checker measures each team's result itself and prints ``score=...`` for the leaderboard.

A challenge notebook (classroom/challenges/) ends with ``check_challenge("challenge.NAME", answer)``; graded
with ``attention-course classroom grade``, its row in grades_by_task.csv carries the score, and
``attention-course classroom leaderboard`` ranks the teams. The rules a team could bend (time, labels) are
checked from what the team hands in; the score itself is always computed here, on held-out data.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._messages import tr

VAL_LOSS_BUDGET_S = 300.0  # five minutes of training on the cpu profile
VAL_LOSS_SLACK = 1.05  # the time budget stops training at the first step past it
LABEL_BUDGET = 200
# What the checker measures beside the score (the rest a team reports: see book/instructors/grading.md):
# the seconds the team's cells took when the grader ran them (training budget plus time for imports, data and
# evaluation), and whether the validation text scores clearly better than the training text, the mark of a model
# that trained on it (a small GPT trained 300 steps on the training split: validation 0.02 nats/char below
# training; the same on the validation split: 0.15 below).
RUN_LIMITS_S = {"challenge.val_loss_5min": VAL_LOSS_BUDGET_S * VAL_LOSS_SLACK + 120.0}
VAL_SPLIT_MARGIN = 0.08


class ChallengeFailed(AssertionError):
    """The answer breaks a rule of the challenge; the message says which."""


def _val_loss_5min(answer: dict) -> tuple[float, str]:
    """answer: {"model": a GPT, "history": the TrainHistory that train() returned}. Lower is better."""
    from ..core.data import shakespeare_char_splits
    model, history = answer.get("model"), answer.get("history")
    if model is None or history is None:
        raise ChallengeFailed(tr("challenge.val_loss_5min: pass {{\"model\": model, \"history\": history}} (history "
                                 "= what train() returned)"))
    if history.diverged:
        raise ChallengeFailed(tr("challenge.val_loss_5min: the training diverged (a NaN or infinite loss); lower the "
                                 "learning rate"))
    if history.train_seconds > VAL_LOSS_BUDGET_S * VAL_LOSS_SLACK:
        raise ChallengeFailed(tr("challenge.val_loss_5min: trained {train_seconds:.0f} s; the budget is "
                                 "{val_loss_budget_s:.0f} s (set time_budget_s={val_loss_budget_s:.0f} in "
                                 "TrainConfig)",
                                 train_seconds=history.train_seconds, val_loss_budget_s=VAL_LOSS_BUDGET_S))
    tokenizer, train_data, val_data = shakespeare_char_splits()
    if model.config.vocab_size != len(tokenizer.chars):
        raise ChallengeFailed(tr("challenge.val_loss_5min: the model's vocab_size is {vocab_size}; the Shakespeare "
                                 "characters number {n_chars}",
                                 vocab_size=model.config.vocab_size, n_chars=len(tokenizer.chars)))
    loss = _loss_from_logits(model, val_data, int(model.config.block_size))
    train_loss = _loss_from_logits(model, train_data, int(model.config.block_size))
    if loss < train_loss - VAL_SPLIT_MARGIN:
        raise ChallengeFailed(tr("challenge.val_loss_5min: the validation text scores {loss:.3f} nats/char, clearly "
                                 "below the training text's {train_loss:.3f}: the model looks trained on the "
                                 "validation split (train on the training split only)", loss=loss, train_loss=train_loss))
    return loss, (tr("validation loss {loss:.4f} nats/char measured by the checker (training text {train_loss:.4f}); "
                     "trained {train_seconds:.0f} s by the team's report",
                     loss=loss, train_loss=train_loss, train_seconds=history.train_seconds))


def run_time_rule(task_id: str, seconds: float) -> str | None:
    """Why a challenge notebook that took ``seconds`` to run in the grader breaks its time budget; None if not."""
    limit = RUN_LIMITS_S.get(task_id)
    if limit is None or seconds <= limit:
        return None
    return (tr("{task_id}: the team's cells ran {seconds:.0f} s in the grader, more than the {limit:.0f} s that the "
               "{val_loss_budget_s:.0f} s training budget allows with imports, data and evaluation",
               task_id=task_id, seconds=seconds, limit=limit, val_loss_budget_s=VAL_LOSS_BUDGET_S))


def _loss_from_logits(model, data: torch.Tensor, block_size: int, batch_size: int = 32, batches: int = 40) -> float:
    """Cross-entropy computed here from the model's logits (a model that reports its own loss is not believed)."""
    from ..parallel.train import random_batch

    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(2017)
    model.eval()
    total = 0.0
    with torch.no_grad():
        for _ in range(batches):
            x, y = random_batch(data, block_size, batch_size, generator, device)
            out = model(x)
            logits = out[0] if isinstance(out, (tuple, list)) else out
            if type(logits) is not torch.Tensor or tuple(logits.shape) != (*x.shape, model.config.vocab_size):
                raise ChallengeFailed(tr("challenge.val_loss_5min: the model must return logits of shape {shape} "
                                         "(first output), not {name}",
                                         shape=(*x.shape, model.config.vocab_size), name=type(logits).__name__))
            logits = logits.detach().float()
            if not torch.isfinite(logits).all():
                raise ChallengeFailed(tr("challenge.val_loss_5min: the model's logits contain NaN or infinity"))
            total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).item()
    return total / batches


def _accuracy_200_labels(answer: dict) -> tuple[float, str]:
    """answer: {"predict": fn(list of sentences) -> labels, "train_texts": the labelled sentences used}. Higher is better."""
    from ..core.data import rotten_tomatoes

    predict, used = answer.get("predict"), answer.get("train_texts")
    if not callable(predict) or used is None:
        raise ChallengeFailed(tr("challenge.accuracy_200_labels: pass {{\"predict\": fn, \"train_texts\": the "
                                 "labelled sentences you trained on}}"))
    used = set(used)
    if len(used) > LABEL_BUDGET:
        raise ChallengeFailed(tr("challenge.accuracy_200_labels: {n_used} labelled sentences used; the budget is "
                                 "{label_budget}", n_used=len(used), label_budget=LABEL_BUDGET))
    train = set(rotten_tomatoes("train").texts)
    if not used <= train:
        raise ChallengeFailed(tr("challenge.accuracy_200_labels: {n_used} of your labelled sentences are not from "
                                 "the training split (validation and test sentences may not be used for training)",
                                 n_used=len(used - train)))
    test = rotten_tomatoes("test")
    predicted = predict(list(test.texts))
    predicted = torch.as_tensor(predicted).flatten().long()
    if len(predicted) != len(test):
        raise ChallengeFailed(tr("challenge.accuracy_200_labels: predict returned {n_predicted} labels for {n_test} "
                                 "sentences", n_predicted=len(predicted), n_test=len(test)))
    accuracy = (predicted == torch.as_tensor(test.labels)).float().mean().item()
    return accuracy, tr("test accuracy {accuracy:.4f} on {n_test} held-out sentences measured by the checker; "
                        "{n_used} labels used", accuracy=accuracy, n_test=len(test), n_used=len(used))


CHALLENGE_CHECKS: dict[str, Callable[[dict], tuple[float, str]]] = {
    "challenge.val_loss_5min": _val_loss_5min,
    "challenge.accuracy_200_labels": _accuracy_200_labels,
}


def check_challenge(task_id: str, answer: dict) -> float:
    """Measure a team's answer; print ``score=...`` (what the leaderboard reads) or raise ChallengeFailed."""
    if task_id not in CHALLENGE_CHECKS:
        raise KeyError(tr("unknown challenge {task_id}; known: {challenge_checks}",
                          task_id=repr(task_id), challenge_checks=', '.join(sorted(CHALLENGE_CHECKS))))
    if not isinstance(answer, dict):
        raise ChallengeFailed(tr("{task_id}: pass a dict (see the notebook's last cell), not {name}",
                                 task_id=task_id, name=type(answer).__name__))
    score, detail = CHALLENGE_CHECKS[task_id](answer)
    print(challenge_message(task_id, score, detail))
    return score


def challenge_message(task_id: str, score: float, detail: str) -> str:
    """The verdict line; the leaderboard reads the score right after the task id (never a line the team printed)."""
    return f"\N{WHITE HEAVY CHECK MARK} {task_id}: score={float(score):.4f} ({detail})"  # the leaderboard's format
