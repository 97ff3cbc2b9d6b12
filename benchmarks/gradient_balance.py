"""Which term drives a trained VAE's encoder: its penalty's gradient against its reconstruction's.

For each run, on a few batches of its own data at the end of its schedule: the norm of the
gradient the penalty (loss - recon) sends into the encoder's weights, divided by the
reconstruction's. Above 1 the penalty steers the encoder more than the data does. The annealed
VAE's γ·|KL - C| is the case in point (docs/study.md): at C = 25 the ratio reads 19 at
γ = 1,000, 8.8 at γ = 100 and 0.75 at γ = 10, and reconstruction after 1,171 steps improves
in step (199, 156, 113 nats) while the KL holds at C in all three. Prints one JSON object per
run.

    python benchmarks/gradient_balance.py studies/reference/runs/annealedvae-*-s0
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import untwine
from untwine.data import to_tensor
from untwine.models import VAEBase

LATE = 10**9  # a step past every schedule's ramp: the objective the run ends with


def encoder_gradient_ratio(model: VAEBase, x: torch.Tensor, seed: int) -> float:
    """|d penalty / d encoder| / |d recon / d encoder| on batch `x`, the posterior sample seeded."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        terms = model.loss(x, step=LATE)
    weights = list(model.encoder.parameters())
    recon = torch.autograd.grad(terms["recon"], weights, retain_graph=True)
    penalty = torch.autograd.grad(terms["loss"] - terms["recon"], weights)
    return float(_norm(penalty) / _norm(recon))


def _norm(grads: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return torch.sqrt(sum((g**2).sum() for g in grads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories of VAE-family models")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for run in args.runs:
        _, model, dataset = untwine.runs.open_run(run)
        rng = np.random.default_rng(args.seed)
        ratios = [
            encoder_gradient_ratio(
                model,
                to_tensor(dataset.observations(rng.integers(0, len(dataset), args.batch_size))),
                args.seed + batch,
            )
            for batch in range(args.batches)
        ]
        print(
            json.dumps(
                {
                    "run": run,
                    "penalty_over_recon_median": round(float(np.median(ratios)), 3),
                    "per_batch": [round(r, 3) for r in ratios],
                }
            )
        )


if __name__ == "__main__":
    main()
