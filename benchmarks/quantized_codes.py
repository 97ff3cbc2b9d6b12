"""Whether a quantised model's codes snap to their values, or only pass through a coarse grain.

Prints one JSON object per run (`qlae`, `tripod`). Per latent: the snap ratio, the continuous
code's mean squared distance to its nearest value over what it would be were the codes spread
evenly over each value's cell (the interval nearer that value than any other; an end value's
cell mirrors its inner half). 0 means every code sits on a value, the organised latent space
QLAE is built for; 1 or more means the codes fill the cells as a continuous code would, and
the quantiser acts as rounding. Also each codebook's span and how many values the codes use.
See docs/quality.md, "Quantised latents".
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from untwine import runs
from untwine.evaluate import to_tensor


def even_spread_sq_distance(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """E[(z - v)^2] for z uniform over the cell of value `index` of sorted `values` (V,)."""
    mids = (values[1:] + values[:-1]) / 2
    upper = np.append(mids, np.inf)[index]
    lower = np.insert(mids, 0, -np.inf)[index]
    v = values[index]
    upper = np.where(np.isinf(upper), 2 * v - lower, upper)  # an end cell mirrors its inner half
    lower = np.where(np.isinf(lower), 2 * v - upper, lower)
    return ((upper - v) ** 3 + (v - lower) ** 3) / (3 * (upper - lower))


def snap_ratios(codes: np.ndarray, values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per latent: mean squared distance of `codes` (n, D) to their nearest of `values` (D, V),
    at `index` (n, D), over the same for codes spread evenly within each value's cell."""
    nearest = np.take_along_axis(values.T, index, axis=0)  # (n, D)
    actual = np.mean((codes - nearest) ** 2, axis=0)
    even = [even_spread_sq_distance(values[d], index[:, d]).mean() for d in range(len(values))]
    return actual / np.array(even)


@torch.no_grad()
def describe(run: str, samples: int, seed: int) -> dict:
    """The snap ratios, codebook spans and values used of `run`'s codes on `samples` images."""
    _, model, dataset = runs.open_run(run)
    indices = np.random.default_rng(seed).choice(len(dataset), samples, replace=False)
    parts = np.array_split(indices, 20)
    codes = torch.cat([model.encode(to_tensor(dataset.observations(p))) for p in parts])
    _, index = model.quantize(codes)  # the model's own nearest value, as it trains with
    codes, index, values = codes.numpy(), index.numpy(), model.latent_values().numpy()
    ratios = snap_ratios(codes, values, index)
    return {
        "run": run,
        "snap_ratio": [round(float(r), 3) for r in ratios],
        "snap_ratio_mean": round(float(ratios.mean()), 3),
        "span": [round(float(s), 2) for s in values[:, -1] - values[:, 0]],
        "values_used": [len(np.unique(index[:, d])) for d in range(index.shape[1])],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories of quantised models")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for run in args.runs:
        print(json.dumps(describe(run, args.samples, args.seed)))


if __name__ == "__main__":
    main()
