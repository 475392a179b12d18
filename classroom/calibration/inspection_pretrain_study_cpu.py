"""Lesson 11 (issue 26): why is the masked-patch pretraining's benefit at 200 labels small and unstable over
seeds, and which recipe change (pretraining / fine-tuning, never the data) makes it reliable?

A CPU proxy of the gpu profile (d_model 96, 4 layers, 1,500 fine-tuning and 2,500 pretraining steps, one H100):
a smaller ViT (``--d-model``, ``--layers``), fewer steps (``--steps``, ``--pretrain-steps``), the same surfaces
(version 2), the same split prefixes (first n labelled training images; all 4,000 training images unlabelled for
pretraining), the same evaluation (recall at false alarms <= 0.05 on the test ROC, ``inspection.evaluate``).

Each pretraining (one per (pretraining recipe, pretraining seed)) is cached under ``--cache`` so that fine-tuning
variants share it. Every finished run is appended as one JSON line to ``--out`` at once (results as we go).

    PYTHONPATH=$PWD .venv/bin/python classroom/calibration/inspection_pretrain_study_cpu.py \
        --variants scratch base --seeds 0 1 2 --labels 200 --out /tmp/pretrain-study.jsonl

A variant is a name in ``VARIANTS``: a model ("scratch" or "pretrained"), a pretraining recipe and a fine-tuning
recipe. ``--pretrain-seed`` fixes one pretraining for every fine-tuning seed (where does the spread come from?).
Pretraining recipe "cutpaste" is not masked patches but CutPaste (Li et al., 2021), tried as an alternative.

Diagnostics: ``--probe`` (logistic regression on frozen features: do they hold the defect?) and ``--recon`` (the
masked model's reconstruction error as a detector without labels: does the pretext itself see the defects?).
Results: results/inspection_pretrain_study_cpu.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from attention_course.beyond.vision import n_params, patchify
from attention_course.core.training import make_optimizer, update, warmup_cosine_lr
from attention_course.factory import inspection
from attention_course.factory.surfaces import load_split

# pretraining recipes: mask ratio, per-patch normalised targets, steps multiplier
PRETRAIN = {
    "simmim": dict(mask_ratio=0.6, norm_pix=False),
    "normpix": dict(mask_ratio=0.6, norm_pix=True),
    "mask75": dict(mask_ratio=0.75, norm_pix=False),
    "mask40": dict(mask_ratio=0.4, norm_pix=False),
    "cutpaste": dict(cutpaste=True),  # not masked patches: tell an image from itself with a piece moved (CutPaste)
}
# fine-tuning recipes: encoder lr factor, layer-wise decay, share of steps with a frozen encoder (linear probe first),
# pooling ("cls", "mean", "max"), weight decay, warm-up share
FINETUNE = {
    "lesson": dict(),
    "lr03": dict(encoder_lr=0.3),
    "lr01": dict(encoder_lr=0.1),
    "lld75": dict(layer_decay=0.75),
    "lld50": dict(layer_decay=0.5),
    "lpft": dict(probe=0.25),
    "mean": dict(pool="mean"),
    "max": dict(pool="max"),
    "warm20": dict(warmup=0.2),
    "wd0": dict(weight_decay=0.0),
}
VARIANTS = {"scratch": ("scratch", None, "lesson"), "scratch-mean": ("scratch", None, "mean"),
            "scratch-max": ("scratch", None, "max")}
for p in PRETRAIN:
    for f in FINETUNE:
        VARIANTS[f"{p}+{f}"] = ("pretrained", p, f)
VARIANTS["base"] = VARIANTS["simmim+lesson"]


class PooledViT(inspection.InspectionViT):
    """InspectionViT classifying from the mean or the max of its patch tokens instead of [CLS]."""

    pool = "cls"

    def forward(self, images):
        x = self.features(images)
        if self.pool == "mean":
            return self.head(x[:, 1:].mean(1))
        if self.pool == "max":
            return self.head(x[:, 1:].amax(1))
        return self.head(x[:, 0])


class MaskedNormPix(inspection.MaskedPatchModel):
    """SimMIM whose targets are each patch's standardised pixels normalised by the patch's own mean and spread (MAE)."""

    def forward(self, images, mask):
        embed = self.vit.embed
        patches = patchify(inspection.standardise(images), embed.patch)
        tokens = embed.proj(patches)
        tokens = torch.where(mask[..., None], self.mask_token.expand_as(tokens), tokens)
        x = torch.cat([embed.cls.expand(len(tokens), -1, -1), tokens], dim=1) + embed.positions
        for block in self.vit.blocks:
            x = block(x)
        rebuilt = self.decoder(self.vit.norm(x)[:, 1:])
        target = (patches - patches.mean(-1, keepdim=True)) / (patches.var(-1, keepdim=True) + 1e-6).sqrt()
        return F.mse_loss(rebuilt[mask], target[mask])


def pretrain(vit_kw, pool_images, recipe, steps, batch, lr, seed, cache: Path):
    path = cache / f"pt-{recipe}-{vit_kw['d_model']}x{vit_kw['n_layers']}-{steps}-{batch}-{lr}-s{seed}.pt"
    torch.manual_seed(seed)
    vit = PooledViT(**vit_kw)
    if path.exists():
        vit.load_state_dict(torch.load(path))
        return vit, json.loads(path.with_suffix(".json").read_text())
    cfg = PRETRAIN[recipe]
    if cfg.get("cutpaste"):
        return pretrain_cutpaste(vit, pool_images, steps, batch, lr, seed, path)
    model = (MaskedNormPix if cfg["norm_pix"] else inspection.MaskedPatchModel)(vit)
    optimizer = make_optimizer(model, lr, 0.05, "cpu")
    generator = torch.Generator().manual_seed(seed)
    n_patches = vit.grid**2
    hidden = max(1, round(cfg["mask_ratio"] * n_patches))
    losses, start = [], time.perf_counter()
    model.train()
    for step in range(steps):
        index = torch.randint(len(pool_images), (batch,), generator=generator)
        mask = torch.rand(batch, n_patches, generator=generator).argsort(-1) < hidden
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(step, max(1, steps // 20), steps, lr, 0.0)
        loss = model(inspection.flip(pool_images[index], generator), mask)
        update(optimizer, loss)
        losses.append(float(loss))
    info = {"pretrain_loss_first": sum(losses[:20]) / 20, "pretrain_loss_last": sum(losses[-50:]) / 50,
            "pretrain_seconds": time.perf_counter() - start}
    torch.save(vit.state_dict(), path)
    torch.save(model.state_dict(), path.with_name(path.stem + "-mim.pt"))  # with the decoder (``reconstruction_error``)
    path.with_suffix(".json").write_text(json.dumps(info))
    return vit, info


def cut_paste(images, generator):
    """Half the images get a rectangle (2-16 x 2-16 px) of themselves copied to another random place (Li et al.,
    2021, CutPaste): a local irregularity drawn from the image's own texture. Returns the images and 1 where pasted."""
    images = images.clone()
    pasted = torch.rand(len(images), generator=generator) < 0.5
    for i in pasted.nonzero().flatten().tolist():
        h, w = (int(v) for v in torch.randint(2, 17, (2,), generator=generator))
        y0, x0, y1, x1 = (int(torch.randint(0, 64 - d + 1, (1,), generator=generator)) for d in (h, w, h, w))
        images[i, y1:y1 + h, x1:x1 + w] = images[i, y0:y0 + h, x0:x0 + w].clone()
    return images, pasted.long()


def pretrain_cutpaste(vit, pool_images, steps, batch, lr, seed, path):
    """Self-supervised without labels: the ViT's [CLS] (through a temporary 2-way head) tells pasted from intact."""
    head = torch.nn.Linear(vit.head.in_features, 2)
    model = torch.nn.ModuleDict({"vit": vit, "head": head})
    optimizer = make_optimizer(model, lr, 0.05, "cpu")
    generator = torch.Generator().manual_seed(seed)
    losses, start = [], time.perf_counter()
    model.train()
    for step in range(steps):
        index = torch.randint(len(pool_images), (batch,), generator=generator)
        images, target = cut_paste(inspection.flip(pool_images[index], generator), generator)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(step, max(1, steps // 20), steps, lr, 0.0)
        loss = F.cross_entropy(head(vit.features(images)[:, 0]), target)
        update(optimizer, loss)
        losses.append(float(loss))
    info = {"pretrain_loss_first": sum(losses[:20]) / 20, "pretrain_loss_last": sum(losses[-50:]) / 50,
            "pretrain_seconds": time.perf_counter() - start}
    torch.save(vit.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps(info))
    return vit, info


def depth_of(name: str, n_layers: int) -> int:
    """0 for the patch embedding, i for block i-1, n_layers + 1 for the final norm and head."""
    if name.startswith("embed."):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return n_layers + 1


def fine_tune(model, images, labels, steps, batch, lr, seed, recipe, n_layers):
    """The lesson's train_model (AdamW, warm-up + cosine, random flips) with per-group learning-rate factors."""
    cfg = {"encoder_lr": 1.0, "layer_decay": 1.0, "probe": 0.0, "pool": "cls", "weight_decay": 0.05,
           "warmup": 0.05, **FINETUNE[recipe]}
    model.pool = cfg["pool"]
    groups = []
    for name, p in model.named_parameters():
        depth = depth_of(name, n_layers)
        factor = 1.0 if name.startswith("head.") else cfg["encoder_lr"] * cfg["layer_decay"] ** (n_layers + 1 - depth)
        groups.append({"params": [p], "weight_decay": cfg["weight_decay"] if p.dim() >= 2 else 0.0,
                       "factor": factor, "head": name.startswith("head.")})
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))
    generator = torch.Generator().manual_seed(seed)
    probe_steps = int(cfg["probe"] * steps)
    losses = []
    model.train()
    for step in range(steps):
        index = torch.randint(len(images), (min(batch, len(images)),), generator=generator)
        if step < probe_steps:  # linear probe: head only, its own warm-up + cosine
            rate = warmup_cosine_lr(step, max(1, probe_steps // 10), probe_steps, lr, 0.0)
        else:
            rate = warmup_cosine_lr(step - probe_steps, max(1, int(cfg["warmup"] * (steps - probe_steps))),
                                    steps - probe_steps, lr, 0.0)
        for group in optimizer.param_groups:
            group["lr"] = rate * (group["factor"] if step >= probe_steps or group["head"] else 0.0)
        loss = F.cross_entropy(model(inspection.flip(images[index], generator)), labels[index])
        update(optimizer, loss)
        losses.append(float(loss))
    model.eval()
    return {"final_loss": sum(losses[-50:]) / 50}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", nargs="+", required=True, choices=sorted(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--pretrain-seed", type=int, default=None, help="one pretraining for every fine-tuning seed")
    parser.add_argument("--labels", nargs="+", type=int, default=[200])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--pretrain-steps", type=int, default=800)
    parser.add_argument("--pretrain-batch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/pretrain-study-cache"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    vit_kw = dict(patch=8, d_model=args.d_model, n_heads=4, n_layers=args.layers)
    train, validation, test = load_split("train"), load_split("validation"), load_split("test")
    for seed in args.seeds:
        for variant in args.variants:
            kind, pre_recipe, ft_recipe = VARIANTS[variant]
            pt_seed = seed if args.pretrain_seed is None else args.pretrain_seed
            for n in args.labels:
                start = time.perf_counter()
                info = {}
                if kind == "scratch":
                    torch.manual_seed(seed)
                    model = PooledViT(**vit_kw)
                else:
                    encoder, info = pretrain(vit_kw, train.images, pre_recipe, args.pretrain_steps, args.pretrain_batch,
                                             args.lr, pt_seed, args.cache)
                    model = copy.deepcopy(encoder)
                    torch.manual_seed(seed)
                    model.head.reset_parameters()
                labelled = train.take(n)
                fit = fine_tune(model, labelled.images, labelled.labels, args.steps, args.batch, args.lr, seed,
                                ft_recipe, args.layers)
                scores = inspection.evaluate(model, validation, test)
                row = {"variant": variant, "model": kind, "pretrain": pre_recipe, "finetune": ft_recipe, "labels": n,
                       "seed": seed, "pretrain_seed": pt_seed if kind == "pretrained" else None,
                       "recall_at_far": scores["recall_at_far"], "deployed_recall": scores["deployed"]["recall"],
                       "kind_accuracy": scores["kind_accuracy"], **fit, **info, "params": n_params(model),
                       "proxy": dict(vit=vit_kw, steps=args.steps, pretrain_steps=args.pretrain_steps,
                                     pretrain_batch=args.pretrain_batch, batch=args.batch, lr=args.lr),
                       "seconds": round(time.perf_counter() - start, 1)}
                print(json.dumps({k: row[k] for k in ("variant", "labels", "seed", "pretrain_seed", "recall_at_far",
                                                      "final_loss", "seconds")}), flush=True)
                with args.out.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")



def probe_features() -> None:
    """Diagnostic: do the frozen encoders' features hold the defect at all? For each cached pretraining (and a
    randomly initialised ViT as the control), the final [CLS] state, the mean and the max of the patch tokens of the
    first n labelled training images are fitted by logistic regression (defect vs good, sklearn, C chosen on
    validation) and scored as recall at false alarms <= 0.05 on test."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--labels", nargs="+", type=int, default=[200, 1000])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/pretrain-study-cache"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-control", action="store_true", help="skip the randomly initialised encoders")
    parser.add_argument("--only", default="pt-", help="probe the cached pretrainings whose name starts so")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, validation, test = load_split("train"), load_split("validation"), load_split("test")
    encoders = {} if args.no_control else {f"random init (d64x3, seed {s})": None for s in (0, 1)}
    encoders.update({path.stem: path for path in sorted(args.cache.glob(f"{args.only}*.pt"))})
    for name, path in encoders.items():
        torch.manual_seed(int(name[-2]) if path is None else 0)
        vit = PooledViT(patch=8, d_model=64, n_heads=4, n_layers=3)
        if path is not None:
            vit.load_state_dict(torch.load(path))
        vit.eval()
        with torch.no_grad():
            feats = {split: vit.features(data.images[: max(args.labels)] if split == "train" else data.images)
                     for split, data in (("train", train), ("validation", validation), ("test", test))}
        for pool, reduce in (("cls", lambda x: x[:, 0]), ("mean", lambda x: x[:, 1:].mean(1)),
                             ("max", lambda x: x[:, 1:].amax(1))):
            x = {split: reduce(f).numpy() for split, f in feats.items()}
            for n in args.labels:
                scaler = StandardScaler().fit(x["train"][:n])
                best = None
                for c in (0.01, 0.1, 1.0, 10.0):
                    clf = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x["train"][:n]),
                                                                     train.defective[:n].numpy())
                    val = inspection.recall_at_false_alarm(clf.decision_function(scaler.transform(x["validation"])),
                                                           validation.defective.numpy())["recall"]
                    if best is None or val > best[0]:
                        best = (val, c, clf)
                scores = best[2].decision_function(scaler.transform(x["test"]))
                row = {"probe": name, "pool": pool, "labels": n, "C": best[1], "recall_val": best[0],
                       "recall_at_far": inspection.recall_at_false_alarm(scores, test.defective.numpy())["recall"]}
                print(json.dumps(row), flush=True)
                with args.out.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
        del feats


def reconstruction_error() -> None:
    """Diagnostic: does the masked-patch objective itself see the defects? With NO label, score each test image by
    the largest reconstruction error over its patches (every patch hidden once: the patches are split at random into
    ``--groups`` groups, each group hidden in turn while the rest stay visible), and report recall at false alarms
    <= 0.05 on test. High recall would mean the pretrained model knows normal texture and fine-tuning fails to use it."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--recon", action="store_true")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--pretrain-steps", type=int, default=800)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/pretrain-study-cache-recon"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    train, test = load_split("train"), load_split("test")
    vit_kw = dict(patch=8, d_model=64, n_heads=4, n_layers=3)
    for seed in args.seeds:
        vit, info = pretrain(vit_kw, train.images, "simmim", args.pretrain_steps, 64, 1e-3, seed, args.cache)
        model = inspection.MaskedPatchModel(vit)
        name = f"pt-simmim-64x3-{args.pretrain_steps}-64-0.001-s{seed}-mim.pt"
        model.load_state_dict(torch.load(args.cache / name))
        model.eval()
        n_patches = vit.grid**2
        groups = torch.randperm(n_patches, generator=torch.Generator().manual_seed(seed)) % args.groups
        errors = torch.zeros(len(test.images), n_patches)
        with torch.no_grad():
            for chunk in range(0, len(test.images), 250):
                images = test.images[chunk: chunk + 250]
                patches = patchify(inspection.standardise(images), vit.embed.patch)
                for g in range(args.groups):
                    mask = (groups == g).expand(len(images), -1)
                    embed = vit.embed
                    tokens = torch.where(mask[..., None], model.mask_token.expand(len(images), n_patches, -1),
                                         embed.proj(patches))
                    x = torch.cat([embed.cls.expand(len(images), -1, -1), tokens], 1) + embed.positions
                    for block in vit.blocks:
                        x = block(x)
                    rebuilt = model.decoder(vit.norm(x)[:, 1:])
                    err = ((rebuilt - patches) ** 2).mean(-1)
                    errors[chunk: chunk + 250][mask] = err[mask]
        for how, score in (("max patch error", errors.amax(1)), ("mean patch error", errors.mean(1))):
            row = {"detector": f"reconstruction error ({how}), no labels", "seed": seed,
                   "pretrain_steps": args.pretrain_steps, **info,
                   "recall_at_far": inspection.recall_at_false_alarm(score.numpy(), test.defective.numpy())["recall"]}
            print(json.dumps(row), flush=True)
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__" and "--recon" in __import__("sys").argv:
    reconstruction_error()
    raise SystemExit


if __name__ == "__main__" and "--probe" in __import__("sys").argv:
    probe_features()
    raise SystemExit


if __name__ == "__main__":
    main()
