"""QLAE (Hsu et al. 2023, "Disentanglement via Latent Quantization"): a learnable scalar codebook
per latent; reconstruction + λ_q·quantisation + λ_c·commitment, with high weight decay."""

from __future__ import annotations

import torch
from torch import nn

from untwine.errors import UntwineError
from untwine.models.base import MODELS
from untwine.models.quantized import QuantizedAE


@MODELS.register("qlae")
class QLAE(QuantizedAE):
    """Snaps each latent to the nearest of its own learnable values, with high weight decay.

    Each latent has `values_per_latent` values, initialised evenly on [-0.5, 0.5]; the
    quantisation term pulls the values to the codes, the commitment term the codes to the values.

    The paper's weights (λ_q = λ_c = 0.01, weight decay 0.1, element-wise clipping at 1) are
    given in its units, where the reconstruction is a mean over pixels and the two terms means
    over latents; with the reconstruction summed over pixels here, the terms are multiplied by
    the pixel count, which keeps every ratio the paper trained with. `latent_dim` defaults to
    twice the data's factors, as in the paper (training fills it in; 10 without factors).
    """

    def __init__(
        self,
        quantization_weight: float = 0.01,
        commitment_weight: float = 0.01,
        **quantized,
    ) -> None:
        super().__init__(**quantized)
        if quantization_weight < 0 or commitment_weight < 0:
            raise UntwineError(
                "model.quantization_weight and model.commitment_weight must be non-negative, got "
                f"{quantization_weight} and {commitment_weight}"
            )
        self.quantization_weight, self.commitment_weight = quantization_weight, commitment_weight
        evenly = torch.linspace(-0.5, 0.5, self.values_per_latent)
        self.values = nn.Parameter(evenly.repeat(self.latent_dim, 1))  # (D, V)

    def latent_values(self) -> torch.Tensor:
        """Each latent's codebook, sorted (the values may cross while they learn), (D, V)."""
        return self.values.sort(dim=1).values

    def regularizer(
        self, z: torch.Tensor, quantized: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        quantization = (z.detach() - quantized).pow(2).mean()  # moves the values only
        commitment = (z - quantized.detach()).pow(2).mean()  # moves the encoder only
        # mean over latents and batch, as the paper; times pixels, as the reconstruction's sum
        penalty = (
            self.quantization_weight * quantization + self.commitment_weight * commitment
        ) * self.pixels
        # both terms are the same number, the code's squared distance to its values
        return penalty, {"quantization_error": quantization.detach()}
