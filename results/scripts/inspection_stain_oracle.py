"""Lesson 11 (issue 26): how visible are the generator's stains? Three detectors that know more than any model
does, each scored on the test split at false alarms <= 0.05 on good parts of the same material (a threshold read on
test itself: optimistic). The test split holds 144 stains among its 500 defects, so a recall of 0.95 over all
defects needs about 0.86 on stains even when every other defect is caught.

1. known place, shape and sign: the stain's own pixel change (zero-mean) correlated with the image;
2. the same, whitened by each material's power spectrum (estimated on the good training images): the optimal
   linear detector of a known signal in stationary Gaussian texture;
3. whitened, but searching place, shape (a bank of 9 blobs, radii 5/7/9 x 5/7/9) and sign: a realistic best case.

    PYTHONPATH=$PWD .venv/bin/python results/scripts/inspection_stain_oracle.py
"""

from __future__ import annotations

import json

import numpy as np

from attention_course.factory import surfaces as S


def draw_with_change(split: str):
    """(image, label, material, the defect's pixel change or None) for every image of ``split``; redraws with the
    generator's own order of random draws so the stain's change is known."""
    code, count = S.SPLITS[split]
    for i in range(count):
        rng = np.random.default_rng([S.VERSION, code, i])
        material = int(rng.integers(len(S.MATERIALS)))
        texture = S.texture(S.MATERIALS[material], rng)
        if i % 2 == 0:
            yield np.clip(texture, 0, 1), 0, material, None
            continue
        kind = int(rng.integers(len(S.DEFECTS)))
        change, _ = S.defect(S.DEFECTS[kind], rng)
        yield np.clip(texture + change, 0, 1), 1 + kind, material, change


def per_material_recall(scores, labels, materials, kind=4) -> tuple[float, list[float]]:
    flagged = np.zeros(len(scores), bool)
    for k in range(len(S.MATERIALS)):
        good = np.sort(scores[(labels == 0) & (materials == k)])[::-1]
        flagged[materials == k] = scores[materials == k] > good[int(0.05 * len(good))]
    chosen = labels == kind
    return float(flagged[chosen].mean()), [round(float(flagged[chosen & (materials == k)].mean()), 2) for k in range(4)]


def main() -> None:
    spectrum = {}
    train = [(x - x.mean(), m) for x, label, m, _ in draw_with_change("train") if label == 0]
    for k in range(len(S.MATERIALS)):
        spectrum[k] = np.mean([np.abs(np.fft.fft2(x)) ** 2 for x, m in train if m == k], 0) + 1e-6
    test = list(draw_with_change("test"))
    goods = {k: [x - x.mean() for x, label, m, _ in test if label == 0 and m == k] for k in range(4)}
    stains = [(x - x.mean(), m, c) for x, label, m, c in test if label == 4]
    out = {"stains": len(stains), "defects": sum(1 for t in test if t[1] > 0)}
    for name, whiten in (("known place, shape, sign", False), ("known place, shape, sign, whitened", True)):
        hits = []
        for x, m, change in stains:
            t = np.fft.fft2(change - change.mean()) / (spectrum[m] if whiten else 1)
            score = lambda y, t=t: float(np.real(np.sum(np.conj(t) * np.fft.fft2(y))))  # noqa: E731
            good = np.sort([score(g) for g in goods[m]])[::-1]
            hits.append((m, score(x) > good[int(0.05 * len(good))]))
        hits = np.array(hits)
        out[name] = {"stain_recall": round(float(hits[:, 1].mean()), 3),
                     "by_material": [round(float(hits[hits[:, 0] == k, 1].mean()), 2) for k in range(4)]}
    rows, cols = np.mgrid[0:64, 0:64].astype(float)
    r, c = np.minimum(rows, 64 - rows), np.minimum(cols, 64 - cols)
    bank = [np.fft.fft2(np.exp(-((r / a) ** 2 + (c / b) ** 2))) for a in (5, 7, 9) for b in (5, 7, 9)]

    def searched(x, m):
        spec = np.fft.fft2(x - x.mean())
        return max(np.abs(np.real(np.fft.ifft2(np.conj(t) * spec / spectrum[m]))).max()
                   / np.sqrt(np.sum(np.abs(t) ** 2 / spectrum[m]) / 4096) for t in bank)

    scores = np.array([searched(x, m) for x, _, m, _ in test])
    labels, materials = np.array([t[1] for t in test]), np.array([t[2] for t in test])
    recall, by_material = per_material_recall(scores, labels, materials)
    out["whitened, place/shape/sign searched"] = {"stain_recall": round(recall, 3), "by_material": by_material}
    out["materials"] = list(S.MATERIALS)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
