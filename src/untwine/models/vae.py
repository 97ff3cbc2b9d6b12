"""The plain VAE (Kingma & Welling 2014): reconstruction + KL."""

from __future__ import annotations

import torch

from untwine.models.base import MODELS, Posterior, VAEBase


@MODELS.register("vae")
class VAE(VAEBase):
    """The evidence lower bound, unweighted: β-VAE with β = 1."""

    def regularizer(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return posterior.kl_per_dim.sum(), {}
