"""How far each run's position plane is turned away from the latent axes.

Prints one JSON object per run. The means of `--samples` dSprites images are regressed on
position x and y (standardised); the two latents with the largest coefficients span the
plane, and the rotation part of that 2x2 map (its polar factor) gives the angle. 0° means x
and y each drive a latent of their own; 45° means both latents move the sprite diagonally,
which is what the histogram MIG cannot credit. See docs/quality.md.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import untwine
from untwine.data.base import to_tensor


def plane_angle(codes: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict:
    """Angle (degrees, 0 to 45) from the axes of the plane (x, y) span in `codes` (N, d)."""
    position = np.stack([x, y], 1).astype(float)
    position = (position - position.mean(0)) / position.std(0)
    codes = codes - codes.mean(0)
    coef, *_ = np.linalg.lstsq(position, codes, rcond=None)  # (2, d)
    latents = np.argsort(-(coef**2).sum(0))[:2]
    u, _, vt = np.linalg.svd(coef[:, latents])
    rotation = u @ vt
    angle = float(np.degrees(np.arctan2(rotation[1, 0], rotation[0, 0])) % 90)
    explained = 1 - ((codes - position @ coef) ** 2).sum(0) / (codes**2).sum(0)
    return {
        "latents": [int(j) for j in latents],
        "angle": round(min(angle, 90 - angle), 1),
        "explained": [round(float(explained[j]), 2) for j in latents],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories trained on dsprites")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dataset = untwine.load_dataset("dsprites")
    names = list(dataset.factor_names)
    for run in args.runs:
        model = untwine.load_run(run).eval()
        rng = np.random.default_rng(args.seed)
        factors = dataset.sample_factors(args.samples, rng)
        with torch.no_grad():
            mu, _ = model.encode(to_tensor(dataset.observations_from_factors(factors, rng)))
        x = factors[:, names.index("position_x")]
        y = factors[:, names.index("position_y")]
        print(json.dumps({"run": run, **plane_angle(mu.numpy(), x, y)}))


if __name__ == "__main__":
    main()
