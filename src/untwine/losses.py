"""Pure loss functions. Convention everywhere: sum over pixels and latent dims, mean over batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from untwine.errors import UntwineError

LIKELIHOODS = ("bernoulli",)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per sample and dimension, (B, D)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


def reconstruction(output: torch.Tensor, x: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Negative log-likelihood of `x` given the decoder output: sum over pixels, mean over batch."""
    if likelihood == "bernoulli":  # output holds logits; x in [0, 1]
        nll = F.binary_cross_entropy_with_logits(output, x, reduction="none")
    else:
        raise UntwineError(
            f"unknown likelihood {likelihood!r}; available: {', '.join(LIKELIHOODS)}"
        )
    return nll.flatten(1).sum(1).mean()
