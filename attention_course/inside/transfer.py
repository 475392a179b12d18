"""Transfer learning on Rotten Tomatoes sentences: four methods and the data-efficiency curve.

Methods, all trained on the same labelled subset and selected on the validation split only:
- ``tfidf``: TF-IDF word and bigram features + logistic regression (scikit-learn);
- ``scratch``: a small Transformer classifier trained from random initialisation (MiniLM's tokenizer);
- ``probe``: logistic regression on frozen, mean-pooled MiniLM features (a linear probe);
- ``finetune``: MiniLM with a linear head, every weight trained.
The test split is touched once per trained model, after model selection.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.benchmarks import benchmark
from ..core.data import LabelledTexts, rotten_tomatoes
from ..core.device import device_name, pick_device, seed_everything
from ..core.language import say
from ..core.models import TransformerClassifier
from ..core.profiles import TRANSFER, pick_profile, sizes
from ..core.training import accuracy, autocast, make_optimizer, update, warmup_linear
from .pretrained import MAX_TOKENS, SentimentClassifier, embed, freeze_encoder, load_minilm, tokenize

METHODS = ("tfidf", "scratch", "probe", "finetune")


def select_logistic(train_x, train_y, val_x, val_y, grid=(0.1, 1.0, 10.0, 100.0)):
    """Logistic regression with C chosen on the validation split."""
    from sklearn.linear_model import LogisticRegression

    best = None
    for c in grid:
        model = LogisticRegression(C=c, max_iter=2000).fit(train_x, train_y)
        score = model.score(val_x, val_y)
        if best is None or score > best[0]:
            best = (score, model)
    return best


def run_tfidf(train: LabelledTexts, val: LabelledTexts, test: LabelledTexts) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    train_x = vectorizer.fit_transform(train.texts)
    val_score, model = select_logistic(train_x, train.labels, vectorizer.transform(val.texts), val.labels)
    return {"val_accuracy": val_score, "test_accuracy": model.score(vectorizer.transform(test.texts), test.labels)}


def run_probe(features: dict[str, np.ndarray], train_index: np.ndarray, splits: dict[str, LabelledTexts]) -> dict:
    train_y = np.asarray(splits["train"].labels)[train_index]
    val_score, model = select_logistic(features["train"][train_index], train_y, features["validation"],
                                       splits["validation"].labels)
    return {"val_accuracy": val_score, "test_accuracy": model.score(features["test"], splits["test"].labels)}


@dataclass
class FitConfig:
    epochs: int = 4
    min_steps: int = 60  # small subsets get more epochs, so every model sees enough updates
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 6e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1


def fit_with_validation(model: nn.Module, train: dict[str, Tensor], train_labels: Tensor, val: dict[str, Tensor],
                   val_labels: Tensor, config: FitConfig, seed: int = 0) -> tuple[nn.Module, float, list[float]]:
    """AdamW with warm-up and linear decay; keep the weights of the epoch with the best validation accuracy."""
    device = train_labels.device
    steps_per_epoch = math.ceil(len(train_labels) / config.batch_size)
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    total = epochs * steps_per_epoch
    if config.max_steps:
        total = min(total, config.max_steps)
        epochs = math.ceil(total / steps_per_epoch)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(model, config.lr, config.weight_decay, device, betas=(0.9, 0.999))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_linear(s, total, max(1, int(config.warmup_fraction * total))))
    generator = torch.Generator().manual_seed(seed)
    best_accuracy, best_state, history, step = -1.0, None, [], 0
    evaluate_every = max(1, epochs // 6)  # at most ~6 validation passes, whatever the number of epochs
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_labels), generator=generator).to(device)
        for start in range(0, len(order), config.batch_size):
            if step >= total:
                break
            index = order[start : start + config.batch_size]
            with autocast(device):
                logits = model(**{key: value[index] for key, value in train.items()})
            loss = F.cross_entropy(logits.float(), train_labels[index])
            update(optimizer, loss, clip=params)
            schedule.step()
            step += 1
        if (epoch + 1) % evaluate_every == 0 or epoch == epochs - 1:
            val_accuracy = accuracy(model, val, val_labels, bf16=True)
            history.append(val_accuracy)
            if val_accuracy > best_accuracy:
                best_accuracy = val_accuracy
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model, best_accuracy, history


class ScratchClassifier(nn.Module):
    """The course's TransformerClassifier over MiniLM's WordPiece ids, with the same call signature."""

    def __init__(self, vocab_size: int, pad_id: int, d_model: int = 128, n_layers: int = 2):
        super().__init__()
        self.net = TransformerClassifier(vocab_size, d_model, 4, n_layers, 2, max_len=MAX_TOKENS, dropout=0.1,
                                         pad_id=pad_id)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.net(input_ids)


@dataclass
class TransferSetup:
    """Everything shared by the runs: splits, tokenised text, frozen features, the pretrained weights."""

    splits: dict[str, LabelledTexts]
    encoded: dict[str, dict[str, Tensor]]
    labels: dict[str, Tensor]
    features: dict[str, np.ndarray]
    pretrained_state: dict[str, Tensor]
    encoder: nn.Module
    tokenizer: object
    device: torch.device


def prepare(device: torch.device, test_limit: int | None = None, train_limit: int | None = None,
            model_dir=None) -> TransferSetup:
    """Load the splits and MiniLM, tokenise everything once, and compute the frozen features.

    ``train_limit`` and ``test_limit`` shrink the splits (stratified, fixed seed) for quick runs.
    """
    splits = {name: rotten_tomatoes(name) for name in ("train", "validation", "test")}
    if train_limit:
        splits["train"] = splits["train"].subset(min(train_limit, len(splits["train"])), seed=0)
    if test_limit:
        splits["validation"] = splits["validation"].subset(min(test_limit, len(splits["validation"])), seed=0)
        splits["test"] = splits["test"].subset(min(test_limit, len(splits["test"])), seed=0)
    encoder, tokenizer = load_minilm(model_dir, device=device, dtype=torch.float32, attention="sdpa")
    encoded = {name: tokenize(tokenizer, split.texts, device) for name, split in splits.items()}
    labels = {name: torch.tensor(split.labels, device=device) for name, split in splits.items()}
    features = {name: embed(encoder, tokenizer, split.texts, device) for name, split in splits.items()}
    state = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    return TransferSetup(splits, encoded, labels, features, state, encoder, tokenizer, device)


def run_method(setup: TransferSetup, method: str, train_index: np.ndarray, seed: int, config: FitConfig) -> dict:
    """Train one method on the chosen training sentences; return validation and test accuracy."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    seed_everything(seed)
    started = time.perf_counter()
    if method == "tfidf":
        train = setup.splits["train"]
        subset = LabelledTexts([train.texts[i] for i in train_index], [train.labels[i] for i in train_index])
        result = run_tfidf(subset, setup.splits["validation"], setup.splits["test"])
    elif method == "probe":
        result = run_probe(setup.features, train_index, setup.splits)
    else:
        if method == "finetune":
            setup.encoder.load_state_dict(setup.pretrained_state)
            model = freeze_encoder(SentimentClassifier(setup.encoder), trainable=True).to(setup.device)
        else:
            model = ScratchClassifier(setup.tokenizer.vocab_size, setup.tokenizer.pad_token_id).to(setup.device)
            config = FitConfig(**{**vars(config), "lr": 1e-3, "epochs": max(config.epochs, 5)})
        index = torch.as_tensor(train_index, device=setup.device)
        train = {key: value[index] for key, value in setup.encoded["train"].items()}
        model, val_accuracy, _ = fit_with_validation(model, train, setup.labels["train"][index], setup.encoded["validation"],
                                                setup.labels["validation"], config, seed)
        result = {"val_accuracy": val_accuracy,
                  "test_accuracy": accuracy(model, setup.encoded["test"], setup.labels["test"], bf16=True)}
    return {"method": method, "n_labels": len(train_index), "seed": seed, **result,
            "seconds": time.perf_counter() - started}


def data_efficiency_curve(setup: TransferSetup, sizes, seeds, methods=METHODS, fit: FitConfig | None = None,
                          progress: bool = True) -> list[dict]:
    """Every method at every number of labels (None = all), for every seed; one record per run."""
    fit = fit or FitConfig()
    runs = [(size, seed, method) for size in sizes for seed in seeds for method in methods]
    records = []
    for size, seed, method in tqdm(runs, desc=say("progress_runs"), disable=not progress):
        records.append(run_method(setup, method, training_index(setup, size, seed), seed, fit))
    return records


def training_index(setup: TransferSetup, n_labels: int | None, seed: int = 0) -> np.ndarray:
    """Positions in ``setup.splits["train"]`` of a stratified random subset of ``n_labels`` (None: all), for run_method."""
    train = setup.splits["train"]
    if n_labels is None or n_labels >= len(train):
        return np.arange(len(train))
    chosen = set(train.subset(n_labels, seed=seed).texts)
    return np.array([i for i, text in enumerate(train.texts) if text in chosen])


def summarise(records: list[dict]) -> list[dict]:
    """Mean and standard deviation of test accuracy per (method, number of labels)."""
    groups: dict[tuple[str, int], list[float]] = {}
    for record in records:
        groups.setdefault((record["method"], record["n_labels"]), []).append(record["test_accuracy"])
    return [{"method": method, "n_labels": n, "mean": float(np.mean(values)), "std": float(np.std(values)),
             "runs": len(values)} for (method, n), values in sorted(groups.items())]


SELECTION_GRID = tuple(float(c) for c in np.logspace(-3, 3, 8))  # the probes' regularisation strengths C


def selection_on_test(setup: TransferSetup, n_labels: int = 100, subsets: int = 5, grid=SELECTION_GRID,
                      repeats: int = 200, seed: int = 0) -> dict:
    """How much choosing a model on the test split overstates its accuracy, measured rather than asserted.

    Candidates: linear probes (logistic regression on the frozen features) for every C in ``grid`` on each of
    ``subsets`` random draws of ``n_labels`` training sentences. The test split is cut in two random halves,
    ``repeats`` times: half A plays "the test set", half B stands for new data. Choosing the candidate with the
    best accuracy on A and reporting that accuracy is compared with the same candidate's accuracy on B, and with
    choosing on the validation split instead. Returns the mean accuracies over the repeats.
    """
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    features, labels = setup.features, {name: np.asarray(split.labels) for name, split in setup.splits.items()}
    candidates = []
    for _ in range(subsets):
        index = rng.choice(len(labels["train"]), size=min(n_labels, len(labels["train"])), replace=False)
        for c in grid:
            model = LogisticRegression(C=c, max_iter=2000).fit(features["train"][index], labels["train"][index])
            candidates.append((model.predict(features["validation"]) == labels["validation"],
                               model.predict(features["test"]) == labels["test"]))
    val_correct = np.array([v.mean() for v, _ in candidates])
    test_correct = np.stack([t for _, t in candidates])  # (candidates, test sentences)
    by_validation = int(val_correct.argmax())
    rows = []
    for _ in range(repeats):
        order = rng.permutation(test_correct.shape[1])
        half_a, half_b = order[: len(order) // 2], order[len(order) // 2 :]
        on_a, on_b = test_correct[:, half_a].mean(axis=1), test_correct[:, half_b].mean(axis=1)
        by_test = int(on_a.argmax())
        rows.append((on_a[by_test], on_b[by_test], on_a[by_validation], on_b[by_validation]))
    mean = np.mean(rows, axis=0)
    return {"candidates": len(candidates), "n_labels": n_labels, "repeats": repeats, "half_size": len(half_a),
            "chosen_on_test": {"reported": float(mean[0]), "new_data": float(mean[1])},
            "chosen_on_validation": {"reported": float(mean[2]), "new_data": float(mean[3])}}


@benchmark("transfer", "lesson 07: the data-efficiency curve of four methods", formatter=lambda result: format_result(result))
def bench_transfer(profile: str | None = None) -> dict:
    """The lesson-07 curve: ``attention-course bench transfer --json``."""
    device = pick_device()
    profile = profile or pick_profile(device)
    settings = sizes(TRANSFER, profile)
    started = time.perf_counter()
    setup = prepare(device, settings.test_limit, settings.train_limit)
    records = data_efficiency_curve(setup, settings.sizes, settings.seeds, METHODS, FitConfig(**settings.fit),
                                    progress=False)
    return {"device": device.type, "device_name": device_name(device), "torch": torch.__version__, "profile": profile,
            "seconds": time.perf_counter() - started, "records": records, "summary": summarise(records),
            "majority_test_accuracy": max(np.mean(setup.splits["test"].labels), 1 - np.mean(setup.splits["test"].labels))}


def format_result(result: dict) -> str:
    lines = [f"{result['device_name']} | torch {result['torch']} | profile {result['profile']} | "
             f"{result['seconds']:.0f} s; majority class {result['majority_test_accuracy']:.3f}"]
    for row in result["summary"]:
        lines.append(f"{row['method']:>9} {row['n_labels']:>6} labels: test accuracy {row['mean']:.3f} "
                     f"+- {row['std']:.3f} ({row['runs']} seeds)")
    return "\n".join(lines)


