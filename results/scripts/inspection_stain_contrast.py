"""Lesson 11 (issue 26, generator version 2): is a stain brighter or darker than the texture's own slow variation?
For each material, the spread (sd) over good textures of a disc's mean minus the mean of the ring around it (radius
7 px, about a stain's; ring 8-12 px), against a stain's mean change inside its mask, for version 1's stain (a soft
Gaussian blob, kept here as the record) and the generator's current one. Textures and stains are drawn from a
fixed seed, as many as ``--draws``.

    PYTHONPATH=$PWD .venv/bin/python results/scripts/inspection_stain_contrast.py
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from attention_course.factory import surfaces as S

ROWS, COLS = np.mgrid[0:S.SIZE, 0:S.SIZE].astype(float)


def version1_stain(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Version 1's stain, as surfaces.defect drew it (after the same centre draw)."""
    centre = rng.uniform(8, S.SIZE - 8, 2)
    radii = rng.uniform(5, 9, 2)
    blob = np.exp(-(((ROWS - centre[0]) / radii[0]) ** 2 + ((COLS - centre[1]) / radii[1]) ** 2))
    return blob * rng.choice([-1.0, 1.0]) * rng.uniform(0.08, 0.14), blob >= 0.5


def disc_minus_ring(image: np.ndarray, centre: np.ndarray, radius: float = 7) -> float:
    distance = np.hypot(ROWS - centre[0], COLS - centre[1])
    return float(image[distance <= radius].mean() - image[(distance > radius + 1) & (distance <= radius + 5)].mean())


def quantiles(values) -> dict:
    return {f"q{int(q * 100):02d}": round(float(np.quantile(values, q)), 4) for q in (0.05, 0.5, 0.95)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    texture = {m: round(float(np.std([disc_minus_ring(S.texture(m, rng), rng.uniform(14, 50, 2))
                                      for _ in range(args.draws)])), 4) for m in S.MATERIALS}
    inside, peak, ring_step = {"version 1": [], f"version {S.VERSION}": []}, {"version 1": [], f"version {S.VERSION}": []}, {}
    for name, draw in (("version 1", version1_stain), (f"version {S.VERSION}", lambda r: S.defect("stain", r))):
        steps = []
        for _ in range(args.draws):
            change, mask = draw(rng)
            inside[name].append(np.abs(change[mask]).mean())
            peak[name].append(np.abs(change).max())
            centre = np.argwhere(mask).mean(0)
            steps.append(abs(disc_minus_ring(change, centre, float(np.sqrt(mask.sum() / np.pi)))))
        ring_step[name] = quantiles(steps)
    out = {"texture_disc_minus_ring_sd": texture,
           "stain_mean_abs_change_inside_mask": {k: quantiles(v) for k, v in inside.items()},
           "stain_peak_abs_change": {k: quantiles(v) for k, v in peak.items()},
           "stain_disc_minus_ring": ring_step, "draws": args.draws}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
