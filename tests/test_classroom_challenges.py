"""Team challenges: the checker measures the score itself and enforces the rules; the leaderboard ranks the
grading CSV's challenge rows (lower loss first, higher accuracy first; failed checks last, without a rank)."""

import csv
import json
from pathlib import Path

import nbformat
import pytest
import torch

from attention_course.core.data import rotten_tomatoes, shakespeare_char_splits
from attention_course.core.gpt import GPT, GPTConfig
from attention_course.grading.challenges import CHALLENGE_CHECKS, ChallengeFailed, check_challenge
from attention_course.parallel.train import TrainHistory
from attention_course.tools import assignments, gradebook, leaderboard
from attention_course.tools.cli import main

ROOT = Path(__file__).resolve().parent.parent


def tiny_gpt():
    tokenizer, _, _ = shakespeare_char_splits()
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=len(tokenizer.chars), block_size=16, n_layer=1, n_head=2, d_model=16))


def test_val_loss_is_measured_by_the_checker(capsys):
    model = tiny_gpt()
    score = check_challenge("challenge.val_loss_5min", {"model": model, "history": TrainHistory(train_seconds=299.0)})
    assert 3.0 < score < 6.0  # an untrained model: about ln(vocab) nats/char
    assert f"score={score:.4f}" in capsys.readouterr().out


@pytest.mark.parametrize("history, words", [
    (TrainHistory(train_seconds=400.0), "budget is 300 s"),
    (TrainHistory(train_seconds=10.0, diverged=True), "diverged"),
])
def test_val_loss_rules(history, words):
    with pytest.raises(ChallengeFailed, match=words):
        check_challenge("challenge.val_loss_5min", {"model": tiny_gpt(), "history": history})


def _trained_on(split: str):
    from attention_course.parallel.train import random_batch

    tokenizer, train_data, val_data = shakespeare_char_splits()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer.chars), block_size=32, n_layer=2, n_head=2, d_model=64))
    optimizer, g = torch.optim.AdamW(model.parameters(), lr=3e-3), torch.Generator().manual_seed(0)
    for _ in range(300):
        x, y = random_batch(val_data if split == "validation" else train_data, 32, 32, g, "cpu")
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def test_a_model_trained_on_the_validation_split_is_refused():
    """Measured by the checker, not reported: the validation text scores clearly better than the training text
    (0.15 nats/char below it here); the same model trained on the training split is scored."""
    history = TrainHistory(train_seconds=10.0)
    with pytest.raises(ChallengeFailed, match="looks trained on the validation split"):
        check_challenge("challenge.val_loss_5min", {"model": _trained_on("validation"), "history": history})
    assert 2.0 < check_challenge("challenge.val_loss_5min", {"model": _trained_on("train"), "history": history}) < 2.6


def test_the_grader_times_the_teams_cells_itself():
    """A history that reports 10 s does not help a notebook whose cells ran past the budget in the grader."""
    from attention_course.grading.isolated import _challenge

    answer = {"model": tiny_gpt(), "history": TrainHistory(train_seconds=10.0)}
    late = _challenge("challenge.val_loss_5min", answer, 600.0)
    assert late["passed"] is False and "ran 600 s in the grader" in late["message"]
    assert _challenge("challenge.val_loss_5min", answer, 200.0)["passed"] is True


def test_accuracy_is_measured_on_the_test_split():
    train = rotten_tomatoes("train").texts[:200]
    test = rotten_tomatoes("test")
    score = check_challenge("challenge.accuracy_200_labels", {"predict": lambda texts: [1] * len(texts), "train_texts": train})
    assert score == pytest.approx(sum(test.labels) / len(test))


@pytest.mark.parametrize("texts, words", [
    (lambda: rotten_tomatoes("train").texts[:201], "201 labelled sentences"),
    (lambda: rotten_tomatoes("test").texts[:5], "not from the training split"),
])
def test_accuracy_rules(texts, words):
    with pytest.raises(ChallengeFailed, match=words):
        check_challenge("challenge.accuracy_200_labels", {"predict": lambda t: [1] * len(t), "train_texts": texts()})


def test_challenge_notebooks_become_graded_assignments():
    for path in sorted((ROOT / "classroom" / "challenges").glob("challenge_*.ipynb")):
        source = assignments.source_notebook(nbformat.read(path, as_version=4), lock_setup=False)
        tasks = assignments.tasks_of(source)
        assert len(tasks) == 1 and tasks[0][1] in CHALLENGE_CHECKS and tasks[0][1] in leaderboard.CHALLENGES
        free = [c for c in source.cells if c.cell_type == "code" and "nbgrader" not in c.metadata]
        assert len(free) == len([c for c in source.cells if c.cell_type == "code"]) - 1  # the team may change the rest


def write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", "task", "points", "max_points", "message"])
        writer.writerows(rows)


def test_leaderboard_ranks_teams_from_the_grading_csv(tmp_path, capsys):
    loss, acc = "challenge.val_loss_5min", "challenge.accuracy_200_labels"
    write_csv(tmp_path / "grades.csv", [
        ["owls", "challenge_val_loss_5min", loss, 1, 1, f"✅ {loss}: score=1.9000 (validation loss 1.9000 ...)"],
        ["bees", "challenge_val_loss_5min", loss, 1, 1, f"✅ {loss}: score=1.7500 (validation loss 1.7500 ...)"],
        ["cats", "challenge_val_loss_5min", loss, 0, 1, f"ChallengeFailed: {loss}: trained 420 s; the budget is 300 s"],
        ["owls", "challenge_accuracy_200_labels", acc, 1, 1, f"✅ {acc}: score=0.7100 (...)"],
        ["bees", "challenge_accuracy_200_labels", acc, 1, 1, f"✅ {acc}: score=0.6300 (...)"],
        ["bees", "lesson02", "02.softmax", 1, 1, "✅ 02.softmax: passed"],
    ])
    boards = leaderboard.leaderboard(gradebook.read_task_csv(tmp_path / "grades.csv"))
    assert [(e["team"], e["rank"], e["score"]) for e in boards[loss]] == [("bees", 1, 1.75), ("owls", 2, 1.9), ("cats", None, None)]
    assert [(e["team"], e["rank"]) for e in boards[acc]] == [("owls", 1), ("bees", 2)]
    assert set(boards) == {loss, acc}
    assert main(["classroom", "leaderboard", str(tmp_path / "grades.csv")]) == 0
    text = capsys.readouterr().out
    assert " 1. bees" in text and "lower is better" in text and "no score" in text
    assert main(["classroom", "leaderboard", str(tmp_path / "grades.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[acc][0]["team"] == "owls"
