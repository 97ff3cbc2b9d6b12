"""How much β-TCVAE's objective prefers x and y over a rotation of the position plane.

Prints one JSON object. `exact`: TC and dimension-wise KL of a uniform square of unit variance,
blurred by a posterior of width `s` and turned by 0° to 45°, by numerical integration.
`estimated`: the same two terms as the training loss estimates them from batches
(`untwine.losses.elbo_decomposition`), with a scale-like latent and four collapsed ones
beside the plane. `preference` is what turning to 45° adds to the loss, β ΔTC + γ ΔdwKL, in
nats per image; positive means the axes are cheaper. See docs/quality.md.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch
from scipy.stats import norm

from untwine.losses import elbo_decomposition

HALF_WIDTH = math.sqrt(3.0)  # a uniform on [-√3, √3] has unit variance


def exact_terms(theta: float, s: float, n: int = 801, lim: float = 4.0) -> tuple[float, float]:
    """TC and dimension-wise KL to N(0, 1) of the blurred square turned by `theta`."""
    grid = np.linspace(-lim, lim, n)
    dx = grid[1] - grid[0]
    x, y = np.meshgrid(grid, grid, indexing="ij")
    u = math.cos(theta) * x + math.sin(theta) * y  # coordinates in the square's own frame
    v = -math.sin(theta) * x + math.cos(theta) * y

    def blurred_uniform(t: np.ndarray) -> np.ndarray:
        return (norm.cdf((t + HALF_WIDTH) / s) - norm.cdf((t - HALF_WIDTH) / s)) / (2 * HALF_WIDTH)

    joint = blurred_uniform(u) * blurred_uniform(v)
    joint /= joint.sum() * dx * dx
    marginals = (joint.sum(1) * dx, joint.sum(0) * dx)

    def entropy(p: np.ndarray, cell: float) -> float:
        p = p[p > 0]
        return float(-(p * np.log(p)).sum() * cell)

    tc = sum(entropy(m, dx) for m in marginals) - entropy(joint, dx * dx)
    # KL(m || N(0, 1)) = -H(m) + E_m[z^2 / 2] + log(2π) / 2
    dwkl = sum(
        -entropy(m, dx) + 0.5 * float((m * grid**2).sum() * dx) + 0.5 * math.log(2 * math.pi)
        for m in marginals
    )
    return tc, dwkl


def estimated_terms(
    theta: float, s: float, batch: int, estimator: str, batches: int, generator: torch.Generator
) -> tuple[float, float]:
    """Mean batch estimates of TC and dimension-wise KL, the plane turned by `theta`."""
    rotation = torch.tensor(
        [[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]]
    )
    tc, dwkl = [], []
    for _ in range(batches):
        plane = ((torch.rand(batch, 2, generator=generator) * 2 - 1) * HALF_WIDTH) @ rotation
        scale = (torch.rand(batch, 1, generator=generator) * 2 - 1) * HALF_WIDTH
        mu = torch.cat([plane, scale, torch.zeros(batch, 4)], 1)
        logvar = torch.full_like(mu, 2 * math.log(s))
        logvar[:, 3:] = 0.0  # collapsed latents: posterior = prior
        z = mu + logvar.mul(0.5).exp() * torch.randn(mu.shape, generator=generator)
        terms = elbo_decomposition(z, mu, logvar, 737_280, estimator)
        tc.append(terms["tc"].item())
        dwkl.append(terms["dwkl"].item())
    return float(np.mean(tc)), float(np.mean(dwkl))


def turn_costs(
    tc0: float, tc45: float, dw0: float, dw45: float, beta: float, gamma: float
) -> dict[str, float]:
    """TC and dim-wise KL at 0° and 45°, and β·ΔTC + γ·ΔdwKL, what turning 45° costs."""
    return {
        "tc_0": round(tc0, 3),
        "tc_45": round(tc45, 3),
        "dwkl_0": round(dw0, 3),
        "dwkl_45": round(dw45, 3),
        "preference": round(beta * (tc45 - tc0) + gamma * (dw45 - dw0), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beta", type=float, default=6.0)
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--batches", type=int, default=40, help="batches per estimate")
    args = parser.parse_args()

    exact = []
    for s in (0.01, 0.3, 0.6):
        tc0, dw0 = exact_terms(0.0, s)
        tc45, dw45 = exact_terms(math.pi / 4, s)
        row = {"posterior_std": s}
        exact.append({**row, **turn_costs(tc0, tc45, dw0, dw45, args.beta, args.gamma)})
    generator = torch.Generator().manual_seed(0)
    estimated = []
    for estimator, batch in (("mws", 256), ("mss", 256), ("mss", 1024)):
        for s in (0.1, 0.3):
            tc0, dw0 = estimated_terms(0.0, s, batch, estimator, args.batches, generator)
            tc45, dw45 = estimated_terms(math.pi / 4, s, batch, estimator, args.batches, generator)
            row = {"estimator": estimator, "batch": batch, "posterior_std": s}
            estimated.append({**row, **turn_costs(tc0, tc45, dw0, dw45, args.beta, args.gamma)})
    print(
        json.dumps(
            {"beta": args.beta, "gamma": args.gamma, "exact": exact, "estimated": estimated},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
