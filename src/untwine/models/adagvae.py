"""Ada-GVAE (Locatello et al. 2020): pairs pool their shared dimensions by averaging."""

from __future__ import annotations

import torch

from untwine.models.base import MODELS
from untwine.models.pairs import PairVAE


@MODELS.register("adagvae")
class AdaGVAE(PairVAE):
    """Learns from pairs: the dimensions a pair shares take the average of its two posteriors.

    The group VAE's pooling (Hosoya 2019): the arithmetic mean of the two means and of the two
    variances; `pairs.py` finds the shared dimensions and holds the loss.
    """

    @staticmethod
    def pool(
        mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        variance = 0.5 * (logvar1.exp() + logvar2.exp())
        return 0.5 * (mu1 + mu2), variance.log()
