"""Lesson 10's experiment: train every PoC candidate on the same labels and measure each the same way.

Candidates, for each label budget of the profile:
- baselines: the majority class; TF-IDF + logistic regression;
- lesson 07: a linear probe on frozen MiniLM features; fine-tuned MiniLM;
and, from the fine-tuned MiniLM of the largest budget within the label KPI as the teacher (first seed):
- lesson 08: a 3-layer student distilled from it (soft targets on the labelled sentences and on unlabelled
  film-synopsis sentences); the fine-tuned model in int8 on the CPU (only the layers that keep validation
  accuracy, chosen by ``quantize.choose_layers``).
Selection uses the validation split only; the test split scores each trained model once.
Before anything trains, the KPI file's hash goes into the run record. Each candidate that can show an explanation
(the MiniLM ones) has its explanations compared with erasure on validation sentences, on its own predictions;
each keeps its first seed's test probabilities as an operating curve (confidence threshold -> coverage, errors).
``run_poc`` returns one dict that the tables, the what-if widget and the memo all read.
"""

from __future__ import annotations

import copy
import datetime
import importlib.util
import platform
import time
import warnings
from dataclasses import asdict

import numpy as np
import torch

from ..core.device import device_name, seed_everything
from ..core.language import say
from ..core.profiles import LESSONS
from ..deploy.cost import DEFAULT_HOURLY_PRICES
from .evidence import (
    BOOTSTRAP,
    KPI_FILE,
    SLICE_RULE,
    KPIs,
    add_costs,
    bootstrap_interval,
    choose,
    cpu_copy,
    kpi_file_hash,
    operating_curve,
    run_record,
    sample_std,
    serving_rows,
    slice_report,
)

NAMES = {"tfidf": "TF-IDF + logistic regression", "probe": "linear probe on MiniLM", "finetune": "fine-tuned MiniLM",
         "student": "distilled 3-layer MiniLM", "int8": "int8 fine-tuned MiniLM"}


EXPLAINED = ("attention", "rollout", "gradient x input", "word weights")  # what could be shown; "random": control


def _index_of(train, size: int | None, seed: int) -> np.ndarray:
    if size is None or size >= len(train):
        return np.arange(len(train))
    chosen = set(train.subset(size, seed=seed).texts)
    return np.array([i for i, text in enumerate(train.texts) if text in chosen])


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def run_poc(device: torch.device, profile: str, kpis: KPIs | None = None, sizes=None, progress: bool = True) -> dict:
    """Train and measure every candidate; return one dict that the tables, the widget and the memo all read.

    ``sizes``: the lesson's size table for ``profile`` (``profiles.LESSONS["10"]``; a dict or ``lesson.sizes``).
    ``kpis``: by default those of the KPI file, whose hash the run record keeps (taken before anything trains).
    """
    kpi_hash = kpi_file_hash(KPI_FILE)  # first: the record proves which KPIs existed before any result
    from sklearn.feature_extraction.text import TfidfVectorizer
    from tqdm.auto import tqdm

    from ..core.training import autocast
    from ..deploy import distill, quantize
    from ..inside import transfer
    from ..inside.explain import ClassifierExplainer, agreement_with_erasure, tfidf_agreement
    from ..inside.pretrained import SentimentClassifier, embed, freeze_encoder, tokenize

    kpis = kpis or KPIs.from_file(KPI_FILE)
    sizes = dict(LESSONS["10"][profile] if sizes is None else sizes if isinstance(sizes, dict) else vars(sizes))
    started = time.perf_counter()
    setup = transfer.prepare(device, sizes["eval_limit"], sizes["train_limit"])
    splits, test = setup.splits, setup.splits["test"]
    train_hw = "gpu" if device.type == "cuda" else "cpu"
    cpu = torch.device("cpu")
    pretrained = copy.deepcopy(setup.encoder).eval()
    tokenizer = setup.tokenizer
    rows, predictions, accuracies, probabilities, explanation, intervals = [], {}, {}, {}, {}, {}
    explain_texts = splits["validation"].texts[: sizes["explain_sentences"]]

    def explain(name, explainer):
        """Each explanation method against erasure, on the candidate's own predictions (validation sentences)."""
        if explainer is None:
            explanation[name] = None
            return
        if isinstance(explainer, tuple):  # TF-IDF: its word weights, the explanation a linear model can show
            scores = tfidf_agreement(*explainer, explain_texts)
            explanation[name] = {method: float(np.mean(v)) if v else None for method, v in scores.items()}
            explanation[name]["sentences"] = len(scores["word weights"])
            return
        scores = agreement_with_erasure(explainer, explain_texts, batched=True)
        explanation[name] = {method: float(np.mean(v)) if v else None for method, v in scores.items()}
        explanation[name]["sentences"] = len(scores["attention"])

    def encoder_predict(encoder, dev, head):
        def predict(texts):
            with torch.no_grad():
                return head(embed(encoder, tokenizer, texts, dev))
        return predict

    def classifier_predict(model, dev):
        def predict(texts):
            with torch.no_grad(), autocast(dev):
                return model(**tokenize(tokenizer, texts, dev)).argmax(-1).cpu().numpy()
        return predict

    def classifier_probability(model, dev, texts):
        """Positive-class probabilities of ``texts`` (the test split: the operating curve), in one call like
        ``predict`` (one input shape: a compiled int8 model does not recompile)."""
        with torch.no_grad(), autocast(dev):
            logits = model(**tokenize(tokenizer, texts, dev)).float()
        return torch.softmax(logits, -1)[:, 1].cpu().numpy()

    def serve_both(model):
        """Predictors on the CPU box (a float32 copy) and, where there is one, on the GPU (bf16 autocast)."""
        predictors = {"cpu": (classifier_predict(cpu_copy(model), cpu), None)}
        if device.type == "cuda":
            predictors["gpu"] = (classifier_predict(copy.deepcopy(model).eval(), device), device)
        return predictors

    def record(name, family, per_seed, predictors, labels, seconds, probability):
        """``per_seed``: each seed's test predictions; ``probability``: the first seed's positive probabilities."""
        truth = np.asarray(test.labels)
        accuracies[name] = [float(np.mean(p == truth)) for p in per_seed]
        predictions[name] = per_seed[0]
        probabilities[name] = operating_curve(truth, probability) | {"negative_share": float(np.mean(truth == 0))}
        low, high = bootstrap_interval(np.mean([p == truth for p in per_seed], axis=0))
        intervals[name] = [low, high]
        agreement = explanation.get(name)
        best = max(EXPLAINED, key=lambda m: agreement[m] if agreement and agreement.get(m) is not None else -2)
        shown = agreement[best] if agreement else None
        rows.extend({**row, "accuracy_low": low, "accuracy_high": high, "explanation_agreement": shown,
                     "explanation_method": best if agreement else None}
                    for row in serving_rows(name, family, float(np.mean(accuracies[name])),
                                            sample_std(accuracies[name]), labels, seconds, train_hw, predictors,
                                            test.texts, sizes))

    majority = int(np.mean(splits["train"].labels) >= 0.5)
    prior = float(np.mean(splits["train"].labels))
    always = lambda texts: np.full(len(texts), majority)  # noqa: E731
    training_started_at = _now()
    explain("majority class", None)
    record("majority class", "baseline", [always(test.texts)], {"cpu": (always, None)}, 0, 0.0,
           np.full(len(test), prior))
    runs = [(size, method) for size in sizes["label_budgets"] for method in ("tfidf", "probe", "finetune")]
    teacher = None
    for size, method in tqdm(runs, desc=say("progress_candidates"), disable=not progress):
        n_labels, per_seed, seconds, predictors, first = None, [], 0.0, {}, None
        for seed in sizes["seeds"]:
            seed_everything(seed)
            index = _index_of(splits["train"], size, seed)
            n_labels = len(index)
            if per_seed and method != "finetune" and n_labels == len(splits["train"]):
                per_seed.append(per_seed[0])  # all labels, a deterministic fit: every seed gives the same model
                seconds += seconds / len(per_seed[:-1])
                continue
            texts = [splits["train"].texts[i] for i in index]
            labels = [splits["train"].labels[i] for i in index]
            clock = time.perf_counter()
            if method == "tfidf":
                vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
                _, model = transfer.select_logistic(vectorizer.fit_transform(texts), labels,
                                                    vectorizer.transform(splits["validation"].texts),
                                                    splits["validation"].labels)
                predict = lambda t, v=vectorizer, m=model: m.predict(v.transform(t))  # noqa: E731
                seconds += time.perf_counter() - clock
                per_seed.append(predict(test.texts))
                if not predictors:
                    predictors = {"cpu": (predict, None)}
                    first = (model.predict_proba(vectorizer.transform(test.texts))[:, 1], (vectorizer, model))
            elif method == "probe":
                _, model = transfer.select_logistic(setup.features["train"][index], labels,
                                                    setup.features["validation"], splits["validation"].labels)
                seconds += time.perf_counter() - clock
                per_seed.append(model.predict(setup.features["test"]))
                if not predictors:
                    predictors = {"cpu": (encoder_predict(cpu_copy(pretrained), cpu, model.predict), None)}
                    if device.type == "cuda":
                        predictors["gpu"] = (encoder_predict(pretrained, device, model.predict), device)
                    first = (model.predict_proba(setup.features["test"])[:, 1],
                             ClassifierExplainer.from_logistic(pretrained, model, tokenizer))
            else:
                setup.encoder.load_state_dict(setup.pretrained_state)
                net = SentimentClassifier(freeze_encoder(setup.encoder, trainable=True)).to(device)
                idx = torch.as_tensor(index, device=device)
                train = {key: value[idx] for key, value in setup.encoded["train"].items()}
                net, _, _ = transfer.fit_with_validation(net, train, setup.labels["train"][idx],
                                                         setup.encoded["validation"], setup.labels["validation"],
                                                         transfer.FitConfig(**sizes["fit"]), seed)
                fit_seconds = time.perf_counter() - clock
                seconds += fit_seconds
                per_seed.append(classifier_predict(net.eval(), device)(test.texts))
                if not predictors:
                    predictors = serve_both(net)
                    kept = copy.deepcopy(net).eval()
                    first = (classifier_probability(kept, device, test.texts),
                             ClassifierExplainer.from_classifier(kept, tokenizer))
                    if n_labels <= kpis.max_labels or teacher is None:  # the largest budget the label KPI allows
                        teacher = (kept, index, fit_seconds)
        family = "baseline" if method == "tfidf" else "07 transfer"
        name = f"{NAMES[method]}, {n_labels:,} labels"
        explain(name, first[1])
        record(name, family, per_seed, predictors, n_labels, seconds / len(sizes["seeds"]), first[0])

    # ---- lesson 08: a distilled shallow student and int8 on the CPU, from the largest budget's teacher
    teacher_net, index, teacher_seconds = teacher
    n_labels = len(index)
    options = sizes["lesson08"]
    idx = torch.as_tensor(index, device=device)
    unlabelled = distill.plot_sentences()[: options["unlabelled"]]
    texts = [splits["train"].texts[i] for i in index]
    transfer_set = tokenize(tokenizer, texts + unlabelled, device)
    transfer_labels = torch.cat([setup.labels["train"][idx], torch.full((len(unlabelled),), -1, device=device)])
    dsetup = distill.DistillSetup(
        {"train": {k: v[idx] for k, v in setup.encoded["train"].items()}, "validation": setup.encoded["validation"],
         "test": setup.encoded["test"]},
        {"train": setup.labels["train"][idx], "validation": setup.labels["validation"], "test": setup.labels["test"]},
        transfer_set, transfer_labels, distill.predict_logits(teacher_net, transfer_set), teacher_net, tokenizer,
        device, {"labelled training sentences": n_labels, "film-synopsis sentences": len(unlabelled)}, teacher_seconds)
    per_seed, seconds, predictors, first = [], 0.0, {}, None
    for seed in sizes["seeds"]:
        seed_everything(seed)
        clock = time.perf_counter()
        student, _ = distill.fit_student(distill.shallow_student(teacher_net, options["student_layers"]), dsetup,
                                         "distilled", distill.StudentConfig(**options["student"]), seed)
        seconds += time.perf_counter() - clock
        per_seed.append(classifier_predict(student, device)(test.texts))
        if not predictors:
            predictors = serve_both(student)
            first = (classifier_probability(student.eval(), device, test.texts),
                     ClassifierExplainer.from_classifier(student, tokenizer))
    name = f"{NAMES['student']}, {n_labels:,} labels"
    explain(name, first[1])
    record(name, "08 distilled", per_seed, predictors, n_labels, teacher_seconds + seconds / len(sizes["seeds"]),
           first[0])

    cpu_teacher = cpu_copy(teacher_net)
    val_texts = splits["validation"].texts[: options["int8_validation"]]
    val_labels = np.asarray(splits["validation"].labels[: options["int8_validation"]])
    int8_skipped = None
    if importlib.util.find_spec("torchao") is None:  # int8 needs torchao (requirements.txt); say so, train the rest
        int8_skipped = "torchao is not installed here: pip install torchao==0.18.0"
        layers, tried = [], []
        warnings.warn(f"lesson 10: the int8 candidate is left out ({int8_skipped})", stacklevel=2)
    else:
        layers, tried = quantize.choose_layers(
            cpu_teacher, lambda model: float(np.mean(classifier_predict(model, cpu)(val_texts) == val_labels)))
    int8_layers = len(layers)
    if layers:
        clock = time.perf_counter()
        quantized = quantize.quantize_int8(cpu_teacher, layers, compile=options["int8_compile"])
        predict = classifier_predict(quantized, cpu)
        name = f"{NAMES['int8']}, {n_labels:,} labels"
        explain(name, None)  # a compiled int8 graph returns no attention maps: nothing measured, so the KPI is missed
        record(name, "08 quantised", [predict(test.texts)], {"cpu": (predict, None)},
               n_labels, teacher_seconds + time.perf_counter() - clock, classifier_probability(quantized, cpu, test.texts))

    rows = add_costs(rows)
    best, closest = choose(rows, kpis)
    slices = {name: slice_report(test.texts, test.labels, pred) for name, pred in predictions.items()}
    return {"profile": profile, "hardware": device_name(device), "device": device.type,
            "cpu_box": f"{sizes['cpu_threads']} PyTorch threads of {platform.processor() or platform.machine()}",
            "kpis": asdict(kpis), "prices": dict(DEFAULT_HOURLY_PRICES), "test_sentences": len(test),
            "train_pool": len(splits["train"]), "rows": rows, "accuracies": accuracies, "intervals": intervals,
            "bootstrap": dict(BOOTSTRAP), "operating": probabilities, "majority": majority,
            "recommended": best["candidate"] + " on " + best["hardware"] if best else None,
            "closest": closest["candidate"] + " on " + closest["hardware"], "slices": slices,
            "slice_rule": dict(SLICE_RULE), "int8_layers_tried": tried, "int8_layers": int8_layers,
            "int8_skipped": int8_skipped,
            "unlabelled_sentences": len(unlabelled), "teacher_labels": n_labels,
            "explanation": explanation, "explanation_sentences": len(explain_texts),
            "record": run_record(profile, device, sizes["seeds"], splits, kpi_hash, training_started_at),
            "seconds": time.perf_counter() - started}
