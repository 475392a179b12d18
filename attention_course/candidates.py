"""Lesson 10's experiment: train every PoC candidate on the same labels and measure each the same way.

Candidates, for each label budget of the profile:
- baselines: the majority class; TF-IDF + logistic regression;
- lesson 07: a linear probe on frozen MiniLM features; fine-tuned MiniLM;
and, from the largest budget's fine-tuned MiniLM as the teacher (first seed):
- lesson 08: a 3-layer student distilled from it (soft targets on the labelled sentences and on unlabelled
  film-synopsis sentences); the fine-tuned model in int8 on the CPU (only the layers that keep validation
  accuracy, chosen by ``quantize.choose_layers``).
Selection uses the validation split only; the test split scores each trained model once.
``run_poc`` returns one dict that the tables, the what-if widget and the memo all read.
"""

from __future__ import annotations

import copy
import platform
import time
from dataclasses import asdict

import numpy as np
import torch

from .device import device_name, seed_everything
from .poc import SLICE_RULE, KPIs, add_costs, choose, cpu_copy, run_record, serving_rows, slice_report
from .profiles import LESSONS
from .serving import DEFAULT_HOURLY_PRICES

NAMES = {"tfidf": "TF-IDF + logistic regression", "probe": "linear probe on MiniLM", "finetune": "fine-tuned MiniLM",
         "student": "distilled 3-layer MiniLM", "int8": "int8 fine-tuned MiniLM"}


def _index_of(train, size: int | None, seed: int) -> np.ndarray:
    if size is None or size >= len(train):
        return np.arange(len(train))
    chosen = set(train.subset(size, seed=seed).texts)
    return np.array([i for i, text in enumerate(train.texts) if text in chosen])


def run_poc(device: torch.device, profile: str, kpis: KPIs | None = None, sizes=None, progress: bool = True) -> dict:
    """Train and measure every candidate; return one dict that the tables, the widget and the memo all read.

    ``sizes``: the lesson's size table for ``profile`` (``profiles.LESSONS["10"]``; a dict or ``lesson.sizes``).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from tqdm.auto import tqdm

    from . import distill, quantize, transfer
    from .explain import SentimentProbe, agreement_with_erasure
    from .pretrained import SentimentClassifier, embed, freeze_encoder, tokenize
    from .training import autocast

    kpis = kpis or KPIs()
    sizes = dict(LESSONS["10"][profile] if sizes is None else sizes if isinstance(sizes, dict) else vars(sizes))
    started = time.perf_counter()
    setup = transfer.prepare(device, sizes["eval_limit"], sizes["train_limit"])
    splits, test = setup.splits, setup.splits["test"]
    train_hw = "gpu" if device.type == "cuda" else "cpu"
    cpu = torch.device("cpu")
    pretrained = copy.deepcopy(setup.encoder).eval()
    tokenizer = setup.tokenizer
    rows, predictions, accuracies = [], {}, {}

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

    def serve_both(model):
        """Predictors on the CPU box (a float32 copy) and, where there is one, on the GPU (bf16 autocast)."""
        predictors = {"cpu": (classifier_predict(cpu_copy(model), cpu), None)}
        if device.type == "cuda":
            predictors["gpu"] = (classifier_predict(copy.deepcopy(model).eval(), device), device)
        return predictors

    def record(name, family, per_seed, predictors, labels, seconds):
        accuracies[name] = [float(np.mean(p == np.asarray(test.labels))) for p in per_seed]
        predictions[name] = per_seed[0]
        rows.extend(serving_rows(name, family, float(np.mean(accuracies[name])), float(np.std(accuracies[name])),
                                 labels, seconds, train_hw, predictors, test.texts, sizes))

    majority = int(np.mean(splits["train"].labels) >= 0.5)
    always = lambda texts: np.full(len(texts), majority)  # noqa: E731
    record("majority class", "baseline", [always(test.texts)], {"cpu": (always, None)}, 0, 0.0)
    runs = [(size, method) for size in sizes["label_budgets"] for method in ("tfidf", "probe", "finetune")]
    teacher = None
    for size, method in tqdm(runs, desc="candidates", disable=not progress):
        n_labels, per_seed, seconds, predictors = None, [], 0.0, {}
        for seed in sizes["seeds"]:
            seed_everything(seed)
            index = _index_of(splits["train"], size, seed)
            n_labels = len(index)
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
                predictors = predictors or {"cpu": (predict, None)}
            elif method == "probe":
                _, model = transfer.select_logistic(setup.features["train"][index], labels,
                                                    setup.features["validation"], splits["validation"].labels)
                seconds += time.perf_counter() - clock
                per_seed.append(model.predict(setup.features["test"]))
                if not predictors:
                    predictors = {"cpu": (encoder_predict(cpu_copy(pretrained), cpu, model.predict), None)}
                    if device.type == "cuda":
                        predictors["gpu"] = (encoder_predict(pretrained, device, model.predict), device)
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
                    teacher = (copy.deepcopy(net).eval(), index, fit_seconds)  # the largest (last) budget's is kept
        family = "baseline" if method == "tfidf" else "07 transfer"
        record(f"{NAMES[method]}, {n_labels:,} labels", family, per_seed, predictors, n_labels,
               seconds / len(sizes["seeds"]))

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
    per_seed, seconds, predictors = [], 0.0, {}
    for seed in sizes["seeds"]:
        seed_everything(seed)
        clock = time.perf_counter()
        student, _ = distill.fit_student(distill.shallow_student(teacher_net, options["student_layers"]), dsetup,
                                         "distilled", distill.StudentConfig(**options["student"]), seed)
        seconds += time.perf_counter() - clock
        per_seed.append(classifier_predict(student, device)(test.texts))
        predictors = predictors or serve_both(student)
    record(f"{NAMES['student']}, {n_labels:,} labels", "08 distilled", per_seed, predictors, n_labels,
           teacher_seconds + seconds / len(sizes["seeds"]))

    cpu_teacher = cpu_copy(teacher_net)
    val_texts = splits["validation"].texts[: options["int8_validation"]]
    val_labels = np.asarray(splits["validation"].labels[: options["int8_validation"]])
    layers, tried = quantize.choose_layers(
        cpu_teacher, lambda model: float(np.mean(classifier_predict(model, cpu)(val_texts) == val_labels)))
    int8_layers = len(layers)
    if layers:
        clock = time.perf_counter()
        quantized = quantize.quantize_int8(cpu_teacher, layers, compile=options["int8_compile"])
        predict = classifier_predict(quantized, cpu)
        record(f"{NAMES['int8']}, {n_labels:,} labels", "08 quantised", [predict(test.texts)], {"cpu": (predict, None)},
               n_labels, teacher_seconds + time.perf_counter() - clock)

    rows = add_costs(rows)
    best, closest = choose(rows, kpis)
    slices = {name: slice_report(test.texts, test.labels, pred) for name, pred in predictions.items()}
    explain_train = splits["train"].subset(min(sizes["explain_train"], len(splits["train"])), seed=0)
    probe = SentimentProbe(pretrained, tokenizer, explain_train.texts, explain_train.labels)
    agreement = agreement_with_erasure(probe, splits["validation"].texts[: sizes["explain_sentences"]])
    return {"profile": profile, "hardware": device_name(device), "device": device.type,
            "cpu_box": f"{sizes['cpu_threads']} PyTorch threads of {platform.processor() or platform.machine()}",
            "kpis": asdict(kpis), "prices": dict(DEFAULT_HOURLY_PRICES), "test_sentences": len(test),
            "train_pool": len(splits["train"]), "rows": rows, "accuracies": accuracies,
            "recommended": best["candidate"] + " on " + best["hardware"] if best else None,
            "closest": closest["candidate"] + " on " + closest["hardware"], "slices": slices,
            "slice_rule": dict(SLICE_RULE), "int8_layers_tried": tried, "int8_layers": int8_layers,
            "unlabelled_sentences": len(unlabelled),
            "explanation": {method: float(np.mean(values)) if values else None for method, values in agreement.items()},
            "explanation_sentences": len(agreement["attention"]),
            "record": run_record(profile, device, sizes["seeds"], splits),
            "seconds": time.perf_counter() - started}
