"""Checks for lesson 10: KPI arithmetic, choosing under constraints, a slice metric, invalid comparisons.

Every check draws fresh random cases (so a hard-coded answer fails) and names the likely mistake.
"""

from __future__ import annotations

import math
import random

from ._core import CheckFailed, call, fail, fresh_rng, task
from ._messages import tr


def _close(got, expected, rel=1e-6) -> bool:
    if isinstance(expected, float) and math.isinf(expected):
        return isinstance(got, (int, float)) and math.isinf(got) and got > 0
    return isinstance(got, (int, float)) and not isinstance(got, bool) and math.isclose(got, expected, rel_tol=rel,
                                                                                        abs_tol=1e-9)


@task("10.cost_per_million")
def check_cost_per_million(fn) -> int:
    rng = fresh_rng()
    cases = [(1000.0, 3.6)] + [(rng.uniform(5, 5000), rng.uniform(0.05, 8)) for _ in range(5)]
    for rate, price in cases:
        expected = price * 1e6 / (3600 * rate)
        case = tr("{rate:.1f} predictions/s at ${price:.2f}/h", rate=rate, price=price)
        got = call("10.cost_per_million", case, fn, rate, price)
        if _close(got, expected):
            continue
        diagnoses = [(price * 1e6 / rate, tr("the price is per HOUR and the rate per SECOND: divide by 3600 * rate")),
                     (price * 1e6 / (60 * rate), tr("an hour has 3600 seconds, not 60")),
                     (price * 1e3 / (3600 * rate), tr("a million is 1e6, not 1e3")),
                     (3600 * rate / (price * 1e6), tr("upside down: dollars = price * 1e6 / (3600 * rate)"))]
        for wrong, hint in diagnoses:
            if _close(got, wrong):
                fail("10.cost_per_million", case, expected, got, hint)
        fail("10.cost_per_million", case, expected, got, tr("hours for a million = 1e6 / (3600 * rate); times the "
                                                            "price"))
    return len(cases)


@task("10.monthly_cost")
def check_monthly_cost(fn) -> int:
    rng = fresh_rng()
    cases = [(1_000.0, 30.0, 0.10), (10_000_000.0, 30.0, 0.10), (5_961_600.0, 30.0, 0.10), (5_184_000.0, 30.0, 0.10)]
    cases += [(10 ** rng.uniform(3, 8), rng.uniform(10, 3000), rng.uniform(0.05, 6)) for _ in range(5)]
    cases.append((0.0, 30.0, 0.10))  # a quiet day still pays for the machine that waits
    for volume, rate, price in cases:
        machines = max(1, math.ceil(volume / (86400 * rate)))
        expected = machines * price * 730
        case = tr("{volume:,.0f} a day, {rate:.1f} predictions/s per machine, ${price:.2f}/h",
                  volume=volume, rate=rate, price=price)
        got = call("10.monthly_cost", case, fn, volume, rate, price)
        if _close(got, expected):
            continue
        exact = volume / (86400 * rate) * price * 730
        diagnoses = [(math.ceil(volume / (86400 * rate)) * price * 730, tr("even a tiny volume keeps one machine "
                                                                           "running")),
                     (exact, tr("machines come whole and one is always on: round the count up, never below one")),
                     (machines * price * 720, tr("use 730 hours a month (365 * 24 / 12)")),
                     (machines * price * 24 * 30.4, tr("use 730 hours a month (365 * 24 / 12)"))]
        for wrong, hint in diagnoses:
            if _close(got, wrong):
                fail("10.monthly_cost", case, expected, got, hint)
        fail("10.monthly_cost", case, expected, got, tr("count the machines first (whole ones, at least one, each "
                                                        "doing predictions_per_s * 86400 a day), then price them for "
                                                        "a 730-hour month; hint(\"10.monthly_cost\") says more"))
    return len(cases)


@task("10.break_even_months")
def check_break_even(fn) -> int:
    rng = fresh_rng()
    cases = [(1000.0, 100.0, 300.0), (500.0, 400.0, 300.0), (500.0, 300.0, 300.0)]
    cases += [(rng.uniform(100, 5000), rng.uniform(10, 800), rng.uniform(10, 800)) for _ in range(5)]
    for one_off, model, manual in cases:
        saving = manual - model
        expected = one_off / saving if saving > 0 else math.inf
        case = tr("one-off ${one_off:,.0f}, model ${model:,.0f}/month, by hand ${manual:,.0f}/month",
                  one_off=one_off, model=model, manual=manual)
        got = call("10.break_even_months", case, fn, one_off, model, manual)
        if _close(got, expected):
            continue
        if saving <= 0:
            fail("10.break_even_months", case, math.inf, got,
                 tr("the model costs at least as much each month as doing it by hand: it never pays back (math.inf)"))
        diagnoses = [(one_off / manual, tr("divide by the monthly SAVING (manual - model), not by the manual cost")),
                     (one_off / model, tr("divide by the monthly saving (manual - model), not by the model's cost")),
                     (saving / one_off, tr("upside down: months = one_off / saving"))]
        for wrong, hint in diagnoses:
            if _close(got, wrong):
                fail("10.break_even_months", case, expected, got, hint)
        fail("10.break_even_months", case, expected, got, tr("months = one_off / (manual - model)"))
    return len(cases)


KPI = {"min_accuracy": 0.8, "max_p95_ms": 50.0, "max_cost_per_million": 1.0, "max_labels": 5000}


def _meets(row: dict, kpi: dict) -> bool:
    return (row["accuracy"] >= kpi["min_accuracy"] and row["p95_ms"] <= kpi["max_p95_ms"]
            and row["cost_per_million"] <= kpi["max_cost_per_million"] and row["labels"] <= kpi["max_labels"])


def _random_rows(rng: random.Random, n: int) -> list[dict]:
    return [{"candidate": f"model {chr(65 + i)}", "accuracy": round(rng.uniform(0.6, 0.9), 3),
             "p95_ms": round(rng.uniform(1, 90), 1), "cost_per_million": round(rng.uniform(0.01, 2), 3),
             "labels": rng.choice([500, 1000, 2000, 5000, 10000])} for i in range(n)]


@task("10.choose_candidate")
def check_choose(fn) -> int:
    rng = fresh_rng()
    fixed = [{"candidate": "accurate but slow", "accuracy": 0.86, "p95_ms": 80.0, "cost_per_million": 0.5, "labels": 2000},
             {"candidate": "cheap but weak", "accuracy": 0.70, "p95_ms": 1.0, "cost_per_million": 0.01, "labels": 500},
             {"candidate": "good", "accuracy": 0.82, "p95_ms": 30.0, "cost_per_million": 0.7, "labels": 2000},
             {"candidate": "good, pricier", "accuracy": 0.84, "p95_ms": 20.0, "cost_per_million": 0.9, "labels": 2000},
             {"candidate": "too many labels", "accuracy": 0.85, "p95_ms": 10.0, "cost_per_million": 0.1, "labels": 10000}]
    on_the_limits = {"candidate": "exactly on every limit", "accuracy": KPI["min_accuracy"], "p95_ms": KPI["max_p95_ms"],
                     "cost_per_million": KPI["max_cost_per_million"], "labels": KPI["max_labels"]}
    cases = [(tr("five rows, three traps"), fixed, dict(KPI)), (tr("nothing meets the KPIs"), fixed[:2], dict(KPI)),
             (tr("a row exactly on every KPI limit meets them"), [fixed[1], on_the_limits], dict(KPI))]
    while len(cases) < 8:
        kpi = {**KPI, "min_accuracy": rng.choice([0.7, 0.75, 0.8])}
        cases.append((tr("random rows #{n_cases}", n_cases=len(cases) - 1), _random_rows(rng, 6), kpi))
    for case, rows, kpi in cases:
        meeting = [row for row in rows if _meets(row, kpi)]
        expected = min(meeting, key=lambda r: (r["cost_per_million"], -r["accuracy"]))["candidate"] if meeting else None
        got = call("10.choose_candidate", case, fn, [dict(row) for row in rows], dict(kpi))
        if got == expected:
            continue
        by_name = {row["candidate"]: row for row in rows}
        if expected is None:
            hint = tr("no row meets every KPI: return None (and say so) rather than the least bad one")
        elif got in by_name and not _meets(by_name[got], kpi):
            missed = [k for k, ok in (("accuracy", by_name[got]["accuracy"] >= kpi["min_accuracy"]),
                                      (tr("p95 latency"), by_name[got]["p95_ms"] <= kpi["max_p95_ms"]),
                                      ("cost", by_name[got]["cost_per_million"] <= kpi["max_cost_per_million"]),
                                      ("labels", by_name[got]["labels"] <= kpi["max_labels"])) if not ok]
            hint = tr("{got} misses the KPI(s) {missed}: keep only rows that meet every KPI",
                      got=repr(got), missed=', '.join(missed))
        elif got in by_name:
            hint = tr("among the rows meeting every KPI, return the CHEAPEST (lowest cost_per_million), not the most "
                      "accurate")
        else:
            hint = tr("return the 'candidate' name of the chosen row (a string), or None")
        fail("10.choose_candidate", case, expected, got, hint)
    return len(cases)


WORDS = ["good", "bad", "not", "film", "plot", "never", "fun", "dull", "great", "acting", "story", "no"]


def _slice_case(rng: random.Random, predicate) -> tuple:
    """Random sentences, labels and predictions whose slice is neither empty nor everything, and where each plausible
    mistake gives a value of its own (so a wrong answer gets the hint for what it did, not another mistake's)."""
    while True:
        texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(60)]
        labels = [rng.randint(0, 1) for _ in texts]
        predictions = [label if rng.random() < 0.7 else 1 - label for label in labels]
        members = [i for i, text in enumerate(texts) if predicate(text)]
        if not members or len(members) == len(texts):
            continue
        expected = sum(labels[i] == predictions[i] for i in members) / len(members)
        overall = sum(a == b for a, b in zip(labels, predictions, strict=True)) / len(texts)
        correct = sum(labels[i] == predictions[i] for i in members)
        diagnoses = [(overall, tr("that is the overall accuracy: count only the sentences where predicate(text) is "
                                  "True")),
                     (correct / len(texts), tr("divide by the number of sentences IN the slice, not all sentences")),
                     (len(members) / len(texts), tr("that is the slice's share of the data, not its accuracy")),
                     (1 - expected, tr("you counted the mistakes: accuracy is the share of CORRECT predictions"))]
        values = [expected] + [wrong for wrong, _ in diagnoses]
        if all(not _close(a, b, 1e-9) for i, a in enumerate(values) for b in values[i + 1:]):
            return texts, labels, predictions, members, expected, diagnoses


@task("10.slice_accuracy")
def check_slice_accuracy(fn) -> int:
    rng = fresh_rng()
    predicate = lambda text: "not" in text.split() or "never" in text.split()  # noqa: E731
    for index in range(5):
        texts, labels, predictions, members, expected, diagnoses = _slice_case(rng, predicate)
        case = tr("60 random sentences #{index}, slice 'has not/never' ({n_members} members)",
                  index=index, n_members=len(members))
        got = call("10.slice_accuracy", case, fn, list(texts), list(labels), list(predictions), predicate)
        if _close(got, expected, 1e-9):
            continue
        for wrong, hint in diagnoses:
            if _close(got, wrong, 1e-9):
                fail("10.slice_accuracy", case, expected, got, hint)
        fail("10.slice_accuracy", case, expected, got, tr("accuracy over the sentences for which predicate(text) is "
                                                          "True"))
    return 5


PROBLEMS = ("tuned on test", "different test set", "test data in training")


def _random_run(rng: random.Random, reference: str) -> tuple[dict, set[str]]:
    run = {"selected_on": rng.choice(["validation", "validation", "test"]),
           "test_sha": rng.choice([reference, reference, "9f3a0c21d4e5b6a7"]),
           "train_sha": rng.choice(["1b2c3d4e5f607182", "1b2c3d4e5f607182", "77aa88bb99cc00dd"])}
    run["train_includes"] = rng.choice([[], [], [run["test_sha"]]])
    problems = set()
    if run["selected_on"] == "test":
        problems.add("tuned on test")
    if run["test_sha"] != reference:
        problems.add("different test set")
    if run["test_sha"] in run["train_includes"]:
        problems.add("test data in training")
    return run, problems


@task("10.invalid_comparison")
def check_invalid(fn) -> int:
    rng = fresh_rng()
    reference = "c0ffee0123456789"
    fixed = [({"selected_on": "validation", "test_sha": reference, "train_sha": "aa", "train_includes": []}, set()),
             ({"selected_on": "test", "test_sha": reference, "train_sha": "aa", "train_includes": []}, {"tuned on test"}),
             ({"selected_on": "validation", "test_sha": "ffff", "train_sha": "aa", "train_includes": []},
              {"different test set"}),
             ({"selected_on": "validation", "test_sha": reference, "train_sha": "aa", "train_includes": [reference]},
              {"test data in training"})]
    cases = fixed + [_random_run(rng, reference) for _ in range(8)]
    for index, (run, expected) in enumerate(cases):
        case = tr("run #{index}: {run}", index=index, run=run)
        got = call("10.invalid_comparison", case, fn, dict(run), reference)
        if not isinstance(got, (set, list, tuple)) or not all(isinstance(p, str) for p in got):
            raise CheckFailed(tr("10.invalid_comparison: case '{case}': return a set of problem names (strings from "
                                 "{problems}), got {got}", case=case, problems=PROBLEMS, got=repr(got)))
        got = set(got)
        if got == expected:
            continue
        unknown = got - set(PROBLEMS)
        if unknown:
            hint = tr("use only the names {problems}; unknown: {unknown}", problems=PROBLEMS, unknown=sorted(unknown))
        elif expected - got:
            first = sorted(expected - got)[0]
            hint = {"tuned on test": tr("a run whose settings were chosen on the test split overstates its accuracy"),
                    "different test set": tr("this run was scored on the test set {test_sha} (its test_sha), not on "
                                             "the agreed one (reference {reference}): scores on different test sets "
                                             "are not comparable",
                                             test_sha=repr(run['test_sha']), reference=repr(reference)),
                    "test data in training": tr("the test set this run was scored on (its test_sha) appears in "
                                                "train_includes: it leaked into training")}[first]
            hint = tr("missed {first}: {hint}", first=repr(first), hint=hint)
        else:
            hint = tr("{got} is not a problem of this run: flag only what the fields show", got=sorted(got - expected))
        fail("10.invalid_comparison", case, sorted(expected), sorted(got), hint)
    return len(cases)
