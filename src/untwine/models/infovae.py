"""InfoVAE (Zhao et al. 2019): recon + (1 − α)·KL + (α + λ − 1)·MMD(q(z), p(z))."""

from __future__ import annotations

from typing import Literal

import torch

from untwine.errors import UntwineError
from untwine.losses import mmd
from untwine.models.base import MODELS, Posterior, VAEBase


@MODELS.register("infovae")
class InfoVAE(VAEBase):
    """Matches the aggregate posterior to the prior with an MMD between batch samples.

    α = 0, λ = 1 is the plain VAE; α = 1 drops the per-sample KL (the MMD-VAE). The MMD compares
    the batch's z with as many prior samples, under an `rbf` or `imq` kernel.
    """

    def __init__(
        self,
        alpha: float = 0.0,
        lambda_: float = 1000.0,
        kernel: Literal["rbf", "imq"] = "rbf",
        **backbone,
    ) -> None:
        super().__init__(**backbone)
        if alpha > 1 or alpha + lambda_ - 1 < 0:
            raise UntwineError(
                f"model.alpha must be at most 1 and alpha + lambda_ at least 1, got {alpha}, "
                f"{lambda_}"
            )
        self.alpha, self.lambda_, self.kernel = alpha, lambda_, kernel

    def regularizer(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        prior = torch.randn_like(posterior.z)
        divergence = mmd(posterior.z, prior, self.kernel)
        kl = posterior.kl_per_dim.sum()
        penalty = (1 - self.alpha) * kl + (self.alpha + self.lambda_ - 1) * divergence
        return penalty, {"mmd": divergence}
