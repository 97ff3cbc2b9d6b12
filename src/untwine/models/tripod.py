"""Tripod (Hsu et al. 2024): finite scalar quantisation, plus a kernel estimate of the code's
multiinformation (KLM) and a normalised Hessian penalty on the decoder (NHP)."""

from __future__ import annotations

from typing import Literal

import torch

from untwine.errors import UntwineError
from untwine.losses import kernel_multiinformation, normalized_hessian_penalty
from untwine.models.base import MODELS
from untwine.models.quantized import QuantizedAE
from untwine.nn import hidden_activations


@MODELS.register("tripod")
class Tripod(QuantizedAE):
    """Rounds each latent to fixed levels and penalises its dependence and the decoder's mixing.

    Each latent is squashed by tanh and rounded to `values_per_latent` fixed levels evenly
    spaced on [-1, 1] (finite scalar quantisation, no codebook to learn). Two penalties:
    KLM, the multiinformation of the batch's codes under Gaussian kernel density estimates,
    and NHP, how far off the diagonal the Hessian of each of the decoder's hidden activations
    in the code lies (finite differences along `perturbations` random directions of step
    `epsilon` code standard deviations).

    The weights are the paper's for Shapes3D (λ_KLM = 1e-4, λ_NHP = 1e-2, 12 levels; no weight
    decay, every gradient clipped element-wise at 1) in its units, a reconstruction averaged
    over pixels, so both penalties are multiplied by the pixel count here. The backbone's
    activation is GELU, as the paper's decoder: on a ReLU network most second differences are
    exactly zero and NHP's ratio jumps whenever a step crosses a kink.
    """

    def __init__(
        self,
        values_per_latent: int = 12,
        multiinformation_weight: float = 1e-4,
        hessian_weight: float = 1e-2,
        perturbations: int = 2,
        epsilon: float = 0.1,
        weight_decay: float = 0.0,
        activation: Literal["relu", "gelu"] = "gelu",
        **quantized,
    ) -> None:
        super().__init__(
            values_per_latent=values_per_latent,
            weight_decay=weight_decay,
            activation=activation,
            **quantized,
        )
        if multiinformation_weight < 0 or hessian_weight < 0:
            raise UntwineError(
                "model.multiinformation_weight and model.hessian_weight must be non-negative, "
                f"got {multiinformation_weight} and {hessian_weight}"
            )
        if perturbations < 2:
            raise UntwineError(f"model.perturbations must be at least 2, got {perturbations}")
        if not epsilon > 0:
            raise UntwineError(f"model.epsilon must be positive, got {epsilon}")
        self.multiinformation_weight, self.hessian_weight = multiinformation_weight, hessian_weight
        self.perturbations, self.epsilon = perturbations, epsilon
        levels = torch.linspace(-1.0, 1.0, values_per_latent)
        self.register_buffer("levels", levels.repeat(self.latent_dim, 1))  # (D, V)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The continuous code, squashed into [-1, 1], (B, D)."""
        return torch.tanh(self.run_network(self.encoder, x))

    def latent_values(self) -> torch.Tensor:
        """The fixed levels, (D, V)."""
        return self.levels

    def clipped_parameters(self) -> list[torch.nn.Parameter]:
        """Every parameter, as the paper clips them all."""
        return list(self.parameters())

    def regularizer(
        self, z: torch.Tensor, quantized: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        code = z + (quantized - z).detach()  # the decoder's input, straight through
        std = z.std(0) + 1e-6  # (D,) of the continuous code
        klm = kernel_multiinformation(code, std).mean()
        nhp = normalized_hessian_penalty(
            lambda points: hidden_activations(self.decoder, points),
            code,
            std,
            perturbations=self.perturbations,
            epsilon=self.epsilon,
        )
        # the paper's weights on a per-pixel mean; times pixels, as the reconstruction's sum
        penalty = (self.multiinformation_weight * klm + self.hessian_weight * nhp) * self.pixels
        return penalty, {"klm": klm.detach(), "nhp": nhp.detach()}
