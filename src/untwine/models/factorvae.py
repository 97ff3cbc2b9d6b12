"""FactorVAE (Kim & Mnih 2018): recon + KL + γ·TC, TC estimated by a discriminator."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from untwine.errors import UntwineError
from untwine.losses import density_ratio_tc, permute_dims
from untwine.models.base import MODELS, Posterior, VAEBase, frozen
from untwine.nn import LatentDiscriminator


@MODELS.register("factorvae")
class FactorVAE(VAEBase):
    """A second player, D, tells z from its dimension-permuted copy; the VAE pays γ·TC.

    D is trained on the same batch (z detached) against that batch with each latent column
    shuffled independently, with its own Adam (lr `discriminator_lr`, betas 0.5, 0.9), as in
    the reference study. TC = mean(logit_0 - logit_1) of D(z), the density-ratio trick.
    `discriminator_steps` > 1 gives D that many Adam steps per VAE step, the later ones on the
    same codes against fresh shuffles, so that it keeps up with an encoder that learns to fool
    it. `discriminator_accuracy` is logged each step.

    Its defaults (γ = 40, an MLP, batches of 256 at lr 1e-3) scored best of the FactorVAE
    settings tried on dSprites within a CPU budget; docs/quality.md has the experiments.
    """

    example_options: ClassVar[dict[str, Any]] = {
        **VAEBase.example_options,
        "discriminator_hidden": 16,
    }

    def __init__(
        self,
        gamma: float = 40.0,
        discriminator_lr: float = 1e-4,
        discriminator_hidden: int = 1000,
        discriminator_layers: int = 6,
        discriminator_steps: int = 1,
        **backbone,
    ) -> None:
        super().__init__(**backbone)
        if gamma < 0 or not discriminator_lr > 0:
            raise UntwineError("model.gamma must be non-negative and discriminator_lr positive")
        sizes = {
            "discriminator_hidden": discriminator_hidden,
            "discriminator_layers": discriminator_layers,
            "discriminator_steps": discriminator_steps,
        }
        for key, value in sizes.items():
            if value < 1:
                raise UntwineError(f"model.{key} must be at least 1, got {value}")
        self.gamma, self.discriminator_lr = gamma, discriminator_lr
        self.discriminator_steps = discriminator_steps
        self._codes: torch.Tensor | None = None  # the last batch's z, for D's extra steps
        self.discriminator = LatentDiscriminator(
            self.latent_dim, discriminator_hidden, discriminator_layers
        )

    def regularizer(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with frozen(self.discriminator):  # the VAE's gradient passes through D, not into it
            tc = density_ratio_tc(self.discriminator(posterior.z))
        self._codes = posterior.z.detach()
        discriminator_loss, accuracy = self._discriminator_loss(self._codes)
        terms = {
            "tc": tc,
            "discriminator_loss": discriminator_loss,
            "discriminator_accuracy": accuracy,
        }
        return posterior.kl_per_dim.sum() + self.gamma * tc, terms

    def _discriminator_loss(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's cross-entropy on z (class 0) against z shuffled column-wise (class 1); accuracy."""
        logits = self.discriminator(torch.cat([z, permute_dims(z)]))  # (2B, 2)
        labels = torch.cat([torch.zeros(len(z)), torch.ones(len(z))]).long().to(z.device)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return F.cross_entropy(logits, labels), accuracy

    def objectives(self) -> dict[str, dict[str, Any]]:
        critic = set(self.discriminator.parameters())
        return {
            "loss": {"params": [p for p in self.parameters() if p not in critic]},
            "discriminator_loss": {
                "params": list(self.discriminator.parameters()),
                "options": {"lr": self.discriminator_lr, "betas": (0.5, 0.9)},
                "steps": self.discriminator_steps,
                "again": lambda: self._discriminator_loss(self._codes)[0],
            },
        }
