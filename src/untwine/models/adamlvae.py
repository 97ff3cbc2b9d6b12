"""Ada-ML-VAE (Locatello et al. 2020): pairs pool shared dimensions as a product of experts."""

from __future__ import annotations

import torch

from untwine.models.base import MODELS
from untwine.models.pairs import PairVAE


@MODELS.register("adamlvae")
class AdaMLVAE(PairVAE):
    """Learns from pairs: the dimensions a pair shares take the product of its two posteriors.

    The multi-level VAE's pooling (Bouchacourt et al. 2018), the normalised product of the two
    Gaussians: precisions add, 1/v = 1/v1 + 1/v2, and the mean is the precision-weighted mean.
    `pairs.py` finds the shared dimensions and holds the loss. disentanglement_lib's released
    code averages the two natural parameters instead: the same mean, twice this variance.
    """

    @staticmethod
    def pool(
        mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        precision1, precision2 = (-logvar1).exp(), (-logvar2).exp()
        precision = precision1 + precision2
        return (mu1 * precision1 + mu2 * precision2) / precision, -precision.log()
