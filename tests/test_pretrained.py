import pytest
import torch

from attention_course import pretrained


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
