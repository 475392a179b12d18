"""Small sequence classifiers shared by lessons 01, 04 and 07: recurrent baselines, a tiny Transformer, and their loop."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .attention import TransformerBlock, causal_mask, sinusoidal_positional_encoding
from .language import say
from .training import make_optimizer, mean_pool, update

RECURRENT_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RecurrentClassifier(nn.Module):
    """Embed tokens, read them one step at a time with an RNN/GRU/LSTM, classify from the last state."""

    def __init__(self, vocab_size: int, d_hidden: int, n_classes: int, cell: str = "gru", n_layers: int = 1):
        super().__init__()
        if cell not in RECURRENT_CELLS:
            raise ValueError(f"cell must be one of {sorted(RECURRENT_CELLS)}, got {cell!r}")
        self.embed = nn.Embedding(vocab_size, d_hidden)
        self.rnn = RECURRENT_CELLS[cell](d_hidden, d_hidden, num_layers=n_layers, batch_first=True)
        self.head = nn.Linear(d_hidden, n_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        states, _ = self.rnn(self.embed(tokens))
        return self.head(states[:, -1])


class TransformerClassifier(nn.Module):
    """Token + sinusoidal position embeddings, Pre-LN Transformer blocks, then a linear head.

    ``causal=False`` (default): every position attends to every real token, and the head reads the mean over
    real tokens. ``causal=True``: each position attends only to itself and earlier positions, and the head
    reads the last real position, as a recurrent classifier reads its last state (lesson 01 compares the two).
    """

    def __init__(
        self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, n_classes: int,
        max_len: int = 512, dropout: float = 0.0, pad_id: int | None = None, causal: bool = False,
    ):
        super().__init__()
        self.pad_id = pad_id
        self.causal = causal
        self.embed = nn.Embedding(vocab_size, d_model)
        self.register_buffer("positions", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads, dropout=dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        length = tokens.shape[1]
        if length > self.positions.shape[0]:
            raise ValueError(f"sequence length {length} exceeds max_len={self.positions.shape[0]}")
        x = self.embed(tokens) + self.positions[:length]
        real = tokens != self.pad_id if self.pad_id is not None else torch.ones_like(tokens, dtype=torch.bool)
        if self.causal:
            # no padding: PyTorch's causal kernel; padding (on the right): causal AND real keys
            mask = None if self.pad_id is None else real[:, None, :] & causal_mask(length, tokens.device)
            for block in self.blocks:
                x = block(x, mask, is_causal=mask is None)
            last = real.sum(dim=1) - 1  # the last real position of each sequence
            return self.head(self.norm(x[torch.arange(len(x), device=x.device), last]))
        mask = real[:, None, :]
        for block in self.blocks:
            x = block(x, mask)
        return self.head(mean_pool(self.norm(x), real))


def fit_classifier(
    model: nn.Module, inputs: Tensor, labels: Tensor, steps: int, batch_size: int = 64, lr: float = 1e-3,
    generator: torch.Generator | None = None, progress: bool = True,
) -> list[float]:
    """Train with AdamW (the shared ``make_optimizer``) and cross-entropy on random mini-batches; return every step's loss.

    The data moves to the model's device once and every mini-batch's indices are drawn up front, so on a GPU
    the loop never waits for the device (the losses are read back at the end).
    """
    if len(inputs) != len(labels):
        raise ValueError(f"inputs and labels differ in length: {len(inputs)} vs {len(labels)}")
    device = next(model.parameters()).device
    optimizer = make_optimizer(model, lr, weight_decay=0.01, device=device, betas=(0.9, 0.999))
    inputs, labels = inputs.to(device), labels.to(device)
    batches = torch.randint(len(inputs), (steps, batch_size), generator=generator).to(device)
    losses = []
    model.train()
    for index in tqdm(batches, desc=say("progress_training"), disable=not progress, leave=False):
        loss = nn.functional.cross_entropy(model(inputs[index]), labels[index])
        update(optimizer, loss)
        losses.append(loss.detach())
    return torch.stack(losses).tolist() if losses else []
