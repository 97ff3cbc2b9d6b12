"""β-VAE (Higgins et al. 2017): reconstruction + β·KL."""

from __future__ import annotations

import torch

from untwine.errors import UntwineError
from untwine.models.base import MODELS, Posterior, VAEBase


@MODELS.register("betavae")
class BetaVAE(VAEBase):
    """A heavier KL weight (β > 1) pressures the posterior towards the factorised prior."""

    def __init__(self, beta: float = 4.0, **backbone) -> None:
        super().__init__(**backbone)
        if beta < 0:
            raise UntwineError(f"model.beta must be non-negative, got {beta}")
        self.beta = beta

    def regularizer(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.beta * posterior.kl_per_dim.sum(), {}
