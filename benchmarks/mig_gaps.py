"""Where a run's MIG goes: for each factor, the two latents that know it best and how much.

Prints one JSON object per run. MIG scores each factor by the gap between the normalised MI of
its best and second-best latent (20 equal-width bins, as disentanglement_lib). A small gap
with a high best means the factor is split over two latents (rotated, or shared); a low best
means no latent holds it cleanly. The same gaps under equal-mass (quantile) bins show whether
the binning, rather than the code, limits a factor: a perfect code of a 32-valued factor reads
at most log 20 / log 32 = 0.86 either way. See docs/quality.md.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import untwine
from untwine.evaluate import representation_function
from untwine.metrics import normalized_mutual_info
from untwine.metrics._sampling import sample_codes


def factor_gaps(codes: np.ndarray, factors: np.ndarray, names: list[str]) -> dict:
    """Per factor: best and second latent, their normalised MI, and the gap, under both bins."""
    ranks = codes.argsort(0).argsort(0).astype(float)  # equal-mass bins after histogramming
    found = {}
    for label, table in (("equal_width", codes), ("quantile", ranks)):
        nmi = normalized_mutual_info(table, factors)  # (latents, factors)
        order = np.argsort(-nmi, axis=0)
        found[label] = {
            name: {
                "latents": [int(order[0, f]), int(order[1, f])],
                "nmi": [round(float(nmi[order[0, f], f]), 3), round(float(nmi[order[1, f], f]), 3)],
                "gap": round(float(nmi[order[0, f], f] - nmi[order[1, f], f]), 3),
            }
            for f, name in enumerate(names)
        }
        found[label]["mig"] = round(float(np.mean([v["gap"] for v in found[label].values()])), 3)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories trained on a dataset with factors")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for run in args.runs:
        _, model, dataset = untwine.runs.open_run(run)
        rng = np.random.default_rng(args.seed)
        codes, factors = sample_codes(dataset, representation_function(model), args.samples, rng)
        print(json.dumps({"run": run, **factor_gaps(codes, factors, list(dataset.factor_names))}))


if __name__ == "__main__":
    main()
