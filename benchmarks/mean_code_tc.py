"""Where a VAE's mean-code total correlation comes from: its active latents or its passive ones.

The reference study saw the Gaussian total correlation of the mean code rise with β while the
sampled code's fell. Bonheme & Grzes (2023) trace the rise to passive latents (those the KL
term switched off): their means still vary a little with the input and follow the active ones,
while their samples are prior noise. This script measures that split for each run: the mean
code's Gaussian TC over all latents, over the active latents alone (KL >= 0.1 nats, the run
report's line) and over the passive ones, and how many of each. Prints one JSON object per run.

    python benchmarks/mean_code_tc.py studies/reference/runs/*
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import untwine
from untwine.evaluate import representation_function
from untwine.metrics._sampling import sample_codes
from untwine.metrics.unsupervised import unsupervised
from untwine.viz import kl_per_dim
from untwine.viz.charts import COLLAPSED_KL


def gaussian_tc(codes: np.ndarray) -> float | None:
    """The Gaussian total correlation of `codes` (n, d), the `unsupervised` metric's; None for
    fewer than two varying columns, where it is not defined or trivially 0."""
    if codes.shape[1] < 2 or (codes.var(axis=0) > 0).sum() < 2:
        return None
    return round(unsupervised(codes)["gaussian_total_correlation"], 4)


def tc_split(codes: np.ndarray, kl: np.ndarray) -> dict:
    """The mean code's Gaussian TC over all latents, the active ones and the passive ones, and
    the dependence between the two groups: TC(all) - TC(active) - TC(passive)."""
    active = kl >= COLLAPSED_KL
    whole, among_active, among_passive = (
        gaussian_tc(codes),
        gaussian_tc(codes[:, active]),
        gaussian_tc(codes[:, ~active]),
    )
    between = None if whole is None else whole - (among_active or 0.0) - (among_passive or 0.0)
    return {
        "active": int(active.sum()),
        "passive": int((~active).sum()),
        "tc_all": whole,
        "tc_active": among_active,
        "tc_passive": among_passive,
        "tc_between_groups": None if between is None else round(between, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="VAE run directories trained on a dataset")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for run in args.runs:
        _, model, dataset = untwine.runs.open_run(run)
        rng = np.random.default_rng(args.seed)
        codes, _ = sample_codes(dataset, representation_function(model), args.samples, rng)
        kl = kl_per_dim(model, dataset, n=args.samples, seed=args.seed)
        print(json.dumps({"run": run, **tc_split(codes, kl)}))


if __name__ == "__main__":
    main()
