"""Which latents a pair model leaves unpooled when one known factor changes.

Prints one JSON object per run. For each factor, `--pairs` pairs of the run's dataset differ
in that factor alone; the model encodes both and applies its own adaptive threshold
(`untwine.models.pairs.shared_dimensions`). Reported per factor: the mean count of latents
left unpooled, the latent left unpooled most often and in what share of the pairs, and
`alone`, the share of pairs where that latent was the only one. A model whose pooling has
learnt the factors leaves one latent per factor, a different one for each, in nearly every
pair: this is the mechanism Ada-GVAE relies on, measured. See docs/quality.md.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from untwine.data.base import to_tensor
from untwine.models.pairs import kl_between_normals, shared_dimensions
from untwine.runs import open_run


def pairs_differing_in(
    dataset, factor: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n pairs of observation indices whose factors differ in `factor` alone."""
    first = dataset.sample_factors(n, rng)
    second = first.copy()
    size = dataset.factor_sizes[factor]
    second[:, factor] = (first[:, factor] + rng.integers(1, size, n)) % size
    return dataset.indices_from_factors(first, rng), dataset.indices_from_factors(second, rng)


def unpooled_latents(model, dataset, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(n, D) bool: the latents each pair keeps apart under the model's threshold."""
    with torch.no_grad():
        mu1, logvar1 = model.encode(to_tensor(dataset.observations(first)))
        mu2, logvar2 = model.encode(to_tensor(dataset.observations(second)))
    return (~shared_dimensions(kl_between_normals(mu1, logvar1, mu2, logvar2))).numpy()


def selection_by_factor(model, dataset, n: int, seed: int) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    report = {}
    for factor, name in enumerate(dataset.factor_names):
        if dataset.factor_sizes[factor] < 2:
            continue
        apart = unpooled_latents(model, dataset, *pairs_differing_in(dataset, factor, n, rng))
        top = int(apart.mean(0).argmax())
        report[name] = {
            "unpooled": round(float(apart.sum(1).mean()), 2),
            "latent": top,
            "share": round(float(apart[:, top].mean()), 3),
            "alone": round(float((apart[:, top] & (apart.sum(1) == 1)).mean()), 3),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories of models with a posterior")
    parser.add_argument("--pairs", type=int, default=2000, help="pairs per factor")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for run in args.runs:
        _, model, dataset = open_run(run, "cpu")
        report = selection_by_factor(model.eval(), dataset, args.pairs, args.seed)
        print(json.dumps({"run": run, "factors": report}))


if __name__ == "__main__":
    main()
