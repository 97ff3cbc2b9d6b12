"""Pure loss functions. Convention everywhere: sum over pixels and latent dims, mean over batch."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from untwine.errors import UntwineError

LIKELIHOODS = ("bernoulli", "gaussian", "laplace")
LOG_2PI = math.log(2 * math.pi)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per sample and dimension, (B, D)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar)); broadcasts."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def reconstruction(
    output: torch.Tensor, x: torch.Tensor, likelihood: str, log_scale: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """Negative log-likelihood of `x` given the decoder output: sum over pixels, mean over batch.

    bernoulli: `output` holds logits. gaussian: `output` is the mean, `log_scale` the log of
    the standard deviation. laplace: `output` is the location, `log_scale` the log of the scale.
    """
    log_scale = torch.as_tensor(log_scale, dtype=output.dtype, device=output.device)
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(output, x, reduction="none")
    elif likelihood == "gaussian":
        nll = 0.5 * (LOG_2PI + 2 * log_scale + (x - output).pow(2) * torch.exp(-2 * log_scale))
    elif likelihood == "laplace":
        nll = math.log(2) + log_scale + (x - output).abs() * torch.exp(-log_scale)
    else:
        raise UntwineError(
            f"unknown likelihood {likelihood!r}; available: {', '.join(LIKELIHOODS)}"
        )
    return nll.flatten(1).sum(1).mean()


def _pairwise_log_density(z, mu, logvar) -> torch.Tensor:
    """log q(z_i[d] | x_j) for every sample i, posterior j and dimension d, (B, B, D)."""
    return log_normal(z[:, None, :], mu[None, :, :], logvar[None, :, :])


def _stratified_log_weights(batch: int, dataset_size: int, device) -> torch.Tensor:
    """Chen et al. (2018, appendix C.2) minibatch stratified sampling: log weights, (B, B).

    Row i weighs the posteriors of the batch for sample i: 1/N on its own, (N - M)/(N M) on one
    other (the stratum standing in for the points outside the batch), 1/M on the remaining
    B - 2, with M = B - 1; every row sums to 1. Chen et al.'s released code writes the 1/N and
    stratum weights with a stride of B instead of B + 1, so they land in columns 0 and 1 of
    every row and the sample's own posterior gets 1/M: minibatch weighted sampling, nearly.
    """
    n, m = dataset_size, batch - 1
    rows = torch.arange(batch, device=device)
    weights = torch.full((batch, batch), 1.0 / m, device=device, dtype=torch.float64)
    weights[rows, rows] = 1.0 / n  # the sample's own posterior
    weights[rows, (rows + 1) % batch] = (n - m) / (n * m)  # the stratum
    return weights.log()


def elbo_decomposition(
    z: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    dataset_size: int,
    estimator: Literal["mws", "mss"] = "mws",
) -> dict[str, torch.Tensor]:
    """Index-code MI, total correlation and dimension-wise KL of a batch (Chen et al. 2018, eq. 2).

    Their sum is the batch's Monte Carlo estimate of KL(q(z|x) || p(z)). The aggregate
    posterior q(z) and its marginals are estimated from the batch by minibatch weighted
    sampling (`mws`: every posterior weighs 1/B) or minibatch stratified sampling (`mss`, which
    needs the dataset size N). Chen et al.'s code weighs MWS by 1/(N B) instead, which shifts
    the three terms by constants (TC by (D - 1) log N) and leaves every gradient unchanged; the
    weights here sum to 1, so the logged terms estimate the quantities themselves.
    """
    batch = z.shape[0]
    log_q_pairs = _pairwise_log_density(z, mu, logvar)  # (B, B, D)
    if estimator == "mws":
        log_w = torch.full((batch, batch), -math.log(batch), device=z.device)
    elif estimator == "mss":
        if not 2 <= batch <= dataset_size:
            raise UntwineError(
                f"the mss estimator needs 2 <= batch size <= dataset size, got a batch of {batch} "
                f"from {dataset_size} points; use mws"
            )
        log_w = _stratified_log_weights(batch, dataset_size, z.device).to(z.dtype)
    else:
        raise UntwineError(f"unknown TC estimator {estimator!r}; accepted: mws, mss")
    log_qz = torch.logsumexp(log_w + log_q_pairs.sum(2), dim=1)  # (B,)
    log_qz_product = torch.logsumexp(log_w[:, :, None] + log_q_pairs, dim=1).sum(1)  # (B,)
    log_qz_given_x = log_normal(z, mu, logvar).sum(1)  # (B,)
    log_pz = log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)  # (B,)
    return {
        "mi": (log_qz_given_x - log_qz).mean(),
        "tc": (log_qz - log_qz_product).mean(),
        "dwkl": (log_qz_product - log_pz).mean(),
    }


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Shuffle each latent column independently across the batch: samples of prod_d q(z_d)."""
    batch = z.shape[0]
    return torch.stack([z[torch.randperm(batch, device=z.device), d] for d in range(z.shape[1])], 1)


def density_ratio_tc(logits: torch.Tensor) -> torch.Tensor:
    """Density-ratio TC estimate: mean of logit("from q(z)") - logit("permuted")."""
    return (logits[:, 0] - logits[:, 1]).mean()


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Biased covariance of the rows of x (B, D): E[x x^T] - E[x] E[x]^T, (D, D)."""
    centred = x - x.mean(0, keepdim=True)
    return centred.T @ centred / x.shape[0]


def dip_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """DIP-VAE (Kumar et al. 2018): λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)²."""
    diag = torch.diagonal(cov)
    off_diagonal = cov - torch.diag(diag)
    return lambda_od * off_diagonal.pow(2).sum() + lambda_d * (diag - 1).pow(2).sum()


def mmd(x: torch.Tensor, y: torch.Tensor, kernel: Literal["rbf", "imq"] = "rbf") -> torch.Tensor:
    """Unbiased MMD^2 between samples x (B, D) and y (B, D).

    rbf: exp(-|a - b|^2 / (2 D)); imq: C / (C + |a - b|^2) with C = 2 D (WAE's choice for a
    unit-variance prior).
    """
    dim = x.shape[1]

    def k(a, b):
        distance = torch.cdist(a, b).pow(2)
        if kernel == "rbf":
            return torch.exp(-distance / (2.0 * dim))
        return (2.0 * dim) / (2.0 * dim + distance)

    def mean_off_diagonal(matrix):
        n = matrix.shape[0]
        return (matrix.sum() - torch.diagonal(matrix).sum()) / (n * (n - 1))

    return mean_off_diagonal(k(x, x)) + mean_off_diagonal(k(y, y)) - 2 * k(x, y).mean()


def gaussian_code_nll(code: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """-log N(code; mean, exp(logvar)), summed over code dimensions, mean over batch.

    InfoGAN's continuous information loss: Q's factorised Gaussian read of the codes.
    """
    return -log_normal(code, mean, logvar).sum(1).mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E (||grad critic(x_hat)||_2 - 1)^2 on random mixes.

    x_hat = e real + (1 - e) fake with e ~ U[0, 1] per sample; the graph is kept (create_graph)
    so that the penalty trains the critic.
    """
    e = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
    mixed = (e * real + (1 - e) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def silverman_bandwidth(n: int, d: int) -> float:
    """Silverman's rule of thumb: a Gaussian kernel's width, in standard deviations of the
    data, for a density estimate from n points in d dimensions."""
    return (4 / (d + 2)) ** (1 / (d + 4)) * n ** (-1 / (d + 4))


def kernel_multiinformation(z: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Tripod's KLM (Hsu et al. 2024): log q(z_i) - Σ_k log q_k(z_ik) per sample, (B,), in nats.

    q and each marginal q_k are Gaussian kernel density estimates over the batch (each sample
    among its own kernels); the joint's kernels are `std` (D,) times Silverman's factor for D
    dimensions wide, each marginal's `std` itself, as the authors' code has them. Averaged over
    a batch it estimates the multiinformation (total correlation) of the code, biased upwards
    by the self-kernels (docs/quality.md measures it).
    """
    b, d = z.shape
    diff = z[:, None, :] - z[None, :, :]  # (B, B, D)

    def log_kernels(width: torch.Tensor) -> torch.Tensor:  # (B, B, D)
        return -0.5 * (diff / width).pow(2) - width.log() - 0.5 * LOG_2PI

    log_b = math.log(b)
    joint = log_kernels(std * silverman_bandwidth(b, d)).sum(2)  # (B, B)
    log_q = torch.logsumexp(joint, dim=1) - log_b  # (B,)
    marginals = torch.logsumexp(log_kernels(std), dim=1) - log_b  # (B, D)
    return log_q - marginals.sum(1)


def normalized_hessian_penalty(
    f: Callable[[torch.Tensor], list[torch.Tensor]],
    z: torch.Tensor,
    scale: torch.Tensor,
    *,
    perturbations: int = 2,
    epsilon: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Tripod's normalised Hessian penalty: for each output of `f` (a list of (B, ...) tensors,
    e.g. a decoder's hidden activations), the share of its Hessian in z that lies off the
    diagonal, summed over outputs, mean over batch.

    Peebles et al. (2020): along a direction v, the central second difference
    (f(z + v) - 2 f(z) + f(z - v)) / epsilon² reads v'Hv. Its variance over Rademacher v is
    2 Σ_{i≠j} H_ij², over Gaussian v 2 Σ_ij H_ij²; each is estimated from `perturbations`
    directions (steps epsilon · `scale`, (D,)) and averaged over the output's units, and the
    first is divided by the second.
    """
    b, d = z.shape
    k = perturbations
    signs = torch.randint(0, 2, (k, b, d), generator=generator).to(z) * 2 - 1
    gaussian = torch.randn(k, b, d, generator=generator).to(z)
    steps = epsilon * torch.cat([signs, gaussian]) * scale  # (2k, B, D)
    points = torch.cat([z[None], z[None] + steps, z[None] - steps])  # (1 + 4k, B, D)
    penalty = z.new_zeros(b)
    for out in f(points.flatten(0, 1)):
        out = out.unflatten(0, (1 + 4 * k, b)).flatten(2)  # (1 + 4k, B, units)
        second = (out[1 : 1 + 2 * k] - 2 * out[:1] + out[1 + 2 * k :]) / epsilon**2  # (2k, B, U)
        off_diagonal = second[:k].var(0, unbiased=False).mean(1)  # (B,)
        total = second[k:].var(0, unbiased=False).mean(1)
        penalty = penalty + off_diagonal / (total + 1e-10)
    return penalty.mean()
