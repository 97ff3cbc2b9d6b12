"""What the weakly-supervised models share (Locatello et al. 2020): they learn from pairs of
observations that differ in a few factors, and find for each pair the latent dimensions the two
share, whose posteriors they then pool. `adagvae.py` and `adamlvae.py` say how they pool."""

from __future__ import annotations

from abc import abstractmethod

import torch

from untwine.errors import UntwineError
from untwine.models.base import Posterior, VAEBase


def kl_between_normals(
    mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor
) -> torch.Tensor:
    """KL(N(mu1, exp(logvar1)) || N(mu2, exp(logvar2))) per sample and dimension, (B, D)."""
    return 0.5 * (
        (logvar1 - logvar2).exp() + (mu1 - mu2).pow(2) * (-logvar2).exp() - 1 + logvar2 - logvar1
    )


def shared_dimensions(divergence: torch.Tensor) -> torch.Tensor:
    """Which dimensions each pair shares, (P, D) bool: those whose KL between the pair's two
    posteriors is below the pair's threshold, halfway between its smallest and largest KL."""
    low = divergence.min(1, keepdim=True).values
    high = divergence.max(1, keepdim=True).values
    return divergence < 0.5 * (low + high)


class PairVAE(VAEBase):
    """A β-VAE on pairs: each pair's shared dimensions take one pooled posterior.

    A batch holds P first observations and then their P partners. Per pair, the dimensions
    whose KL(q(z|x1) || q(z|x2)) is below the adaptive threshold are taken as shared and both
    observations use `pool(...)` of the two posteriors there; the others keep their own. The
    loss is the β-VAE loss of every observation with these posteriors (sum over pixels and
    dimensions, mean over the 2P observations), so a pair weighs as two observations.
    `representation(x)` is the posterior mean of one observation, as for any VAE.
    """

    def __init__(self, beta: float = 1.0, k: int = 1, **backbone) -> None:
        """`k`: the number of factors in which the pairs drawn from a factor grid differ
        (-1: drawn for each pair from 1 to one less than the varying factors); pairs a user
        supplies (ordered frames, a `pairs` array) come as they are."""
        super().__init__(**backbone)
        if beta < 0:
            raise UntwineError(f"model.beta must be non-negative, got {beta}")
        if not (k == -1 or k >= 1):
            raise UntwineError(f"model.k must be -1 (drawn for each pair) or at least 1, got {k}")
        self.beta = beta
        self.pair_k = k

    @staticmethod
    @abstractmethod
    def pool(
        mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the posterior two observations share, each (P, D)."""

    def posterior_parameters(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        if len(x) % 2:
            raise UntwineError(
                f"a pair model's batch holds pairs: an even number of observations, got {len(x)}"
            )
        mu, logvar = self.encode(x)
        (mu1, mu2), (logvar1, logvar2) = mu.chunk(2), logvar.chunk(2)
        shared = shared_dimensions(kl_between_normals(mu1, logvar1, mu2, logvar2))  # (P, D)
        pooled_mu, pooled_logvar = self.pool(mu1, logvar1, mu2, logvar2)
        both = shared.repeat(2, 1)  # both observations of a pair share the same dimensions
        mu = torch.where(both, pooled_mu.repeat(2, 1), mu)
        logvar = torch.where(both, pooled_logvar.repeat(2, 1), logvar)
        return mu, logvar, {"shared_dims": shared.sum(1).float().mean()}

    def regularizer(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.beta * posterior.kl_per_dim.sum(), {}
