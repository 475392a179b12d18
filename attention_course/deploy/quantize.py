"""Smaller numbers for serving: int8 on the CPU through torchao, 16-bit on the GPU.

int8: torchao's ``quantize_`` with ``Int8DynamicActivationInt8WeightConfig`` stores each chosen linear
layer's weight as int8 with one scale per output channel, and quantises its input activations per token
at run time, so the matrix product runs in int8. It pays off on a CPU only once ``torch.compile`` fuses
the quantisation into the product (eager int8 is slower than fp32). Embeddings, LayerNorms and the
classifier head stay fp32. Which layers to quantise is chosen on the validation split: the largest set
that keeps accuracy within a tolerance.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import warnings
from collections.abc import Callable

import torch
from torch import nn

# torchao's int8 tensors lack a hash for the compiler's on-disk cache: compilation works, only that cache is skipped.
warnings.filterwarnings("ignore", message=".*does not implement _stable_hash_for_caching")

GROUPS = ("attention", "feed-forward")
NEVER_QUANTISED = ("head",)  # the 2-way classifier: tiny, and it reads the final features directly


def layer_group(name: str) -> str | None:
    """"attention" or "feed-forward" for a linear layer's name in BERT or in the course's blocks, else None."""
    dotted = f".{name}."
    if ".attention." in dotted or ".attn." in dotted:  # BERT's query/key/value/output.dense; our qkv/out
        return "attention"
    if ".intermediate." in dotted or ".output.dense." in dotted or ".ff." in dotted:
        return "feed-forward"
    return None


def linear_layers(model: nn.Module, groups=GROUPS) -> list[str]:
    """Names of the linear layers of the blocks that belong to ``groups`` (never the classifier head)."""
    return [name for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and name.split(".")[-1] not in NEVER_QUANTISED
            and layer_group(name) in groups]


def repeated_blocks(model: nn.Module) -> list[nn.Module]:
    """The Transformer blocks: every element of every ``nn.ModuleList`` in the model."""
    return [block for module in model.modules() if isinstance(module, nn.ModuleList) for block in module]


def can_compile_on_cpu() -> bool:
    """Whether torch.compile can build CPU kernels here: it needs a C++ compiler."""
    return any(shutil.which(name) for name in filter(None, (os.environ.get("CXX"), "g++", "c++", "clang++")))


def compile_blocks(model: nn.Module) -> nn.Module:
    """``torch.compile`` each Transformer block in place. Blocks share their code, so the compiled kernels are
    reused across blocks and across models with the same block type: one compilation (two, once a second input
    shape asks for dynamic shapes) instead of one per block. Without a C++ compiler the model stays eager
    (with a warning): int8 then runs, but slower than fp32."""
    if next(model.parameters()).device.type == "cpu" and not can_compile_on_cpu():
        warnings.warn("no C++ compiler found (g++, c++ or clang++): the model is left uncompiled", stacklevel=2)
        return model
    for block in repeated_blocks(model):
        block.compile()
    return model


def quantize_int8(model: nn.Module, layers: list[str] | None = None, compile: bool = True) -> nn.Module:
    """A copy of ``model`` on the CPU with int8 weights and dynamically quantised int8 activations in ``layers``
    (default: every linear layer of the blocks), compiled block by block unless ``compile=False``."""
    for noisy in ("torchao", "torch.utils._pytree"):  # CUDA-only kernel libraries missing on a CPU build: not needed
        logging.getLogger(noisy).setLevel(logging.ERROR)
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantized = copy.deepcopy(model).cpu().float().eval()
    chosen = set(linear_layers(quantized) if layers is None else layers)
    quantize_(quantized, Int8DynamicActivationInt8WeightConfig(), filter_fn=lambda module, name: name in chosen)
    return compile_blocks(quantized) if compile else quantized


def to_16bit(model: nn.Module, device, dtype: torch.dtype = torch.float16) -> nn.Module:
    """A copy of ``model`` with every weight in 16 bits on ``device`` (fp16 by default; bf16 keeps fp32's range)."""
    return copy.deepcopy(model).to(device=device, dtype=dtype).eval()


def choose_layers(model: nn.Module, evaluate: Callable[[nn.Module], float], tolerance: float = 0.005,
                  compile: bool = False) -> tuple[list[str], list[dict]]:
    """Quantise only what keeps accuracy: try every block's linear layers, then each group alone; keep the first
    (largest) choice whose ``evaluate`` score (validation accuracy) is within ``tolerance`` of the fp32 model's.

    Returns the chosen layer names (empty: nothing could be quantised without losing accuracy) and one record
    per candidate tried, with its score and its change from fp32.
    """
    reference = evaluate(model)
    candidates = [("all blocks' linear layers", GROUPS)] + [(f"{group} only", (group,)) for group in GROUPS]
    tried = []
    for label, groups in candidates:
        layers = linear_layers(model, groups)
        if not layers:
            continue
        score = evaluate(quantize_int8(model, layers, compile=compile))
        tried.append({"layers": label, "count": len(layers), "accuracy": score, "change": score - reference})
        if score >= reference - tolerance:
            return layers, tried
    return [], tried
