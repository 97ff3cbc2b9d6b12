"""The abstract quantised autoencoder: a deterministic code whose latents each take one of a few
values, trained with a straight-through gradient; the loss is reconstruction + `regularizer`.
`qlae.py` and `tripod.py` say which values a latent takes and what regularises the code."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from untwine.errors import UntwineError
from untwine.models.base import ACTIVE_UNIT_THRESHOLD, Autoencoder


class QuantizedAE(Autoencoder, ABC):
    """Encoder -> continuous code z -> each latent snapped to its nearest allowed value -> decoder.

    The decoder sees the quantised code on the forward pass and passes its gradient straight
    through to z (van den Oord et al. 2017). Trained with AdamW: `weight_decay` on the weight
    matrices only (not biases, nor the allowed values), whose gradients are also clipped element
    by element (`clipped_parameters`) at `clip_value` in the papers' units (a reconstruction
    averaged over pixels; here it is summed, so the bound is scaled by the pixel count).
    """

    example_options: ClassVar[dict[str, Any]] = {
        "latent_dim": 3,
        "hidden": (32,),
        "values_per_latent": 4,
    }

    def __init__(
        self,
        latent_dim: int | None = None,
        values_per_latent: int = 10,
        weight_decay: float = 0.1,
        clip_value: float = 1.0,
        **backbone,
    ) -> None:
        """`latent_dim` None: training sets it to twice the data's factors (10 without)."""
        if latent_dim is None:
            raise UntwineError(
                "model.latent_dim is required (training sets it to twice the data's factors)"
            )
        super().__init__(latent_dim=latent_dim, **backbone)
        if values_per_latent < 2:
            raise UntwineError(
                f"model.values_per_latent must be at least 2, got {values_per_latent}"
            )
        if weight_decay < 0:
            raise UntwineError(f"model.weight_decay must be non-negative, got {weight_decay}")
        if not clip_value > 0:
            raise UntwineError(f"model.clip_value must be positive, got {clip_value}")
        self.values_per_latent = values_per_latent
        self.weight_decay, self.clip_value = weight_decay, clip_value

    @property
    def pixels(self) -> int:
        """Numbers per observation: the papers' per-pixel means become sums over these."""
        return math.prod(self.observation_shape)

    @abstractmethod
    def latent_values(self) -> torch.Tensor:
        """The values each latent may take, sorted, (D, V)."""

    @abstractmethod
    def regularizer(
        self, z: torch.Tensor, quantized: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The term added to the reconstruction loss, and named terms to log, from the
        continuous code and its quantised values (both (B, D))."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The continuous code before quantisation, (B, D)."""
        return self.run_network(self.encoder, x)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each latent's nearest allowed value (B, D) and its index into `latent_values` (B, D)."""
        values = self.latent_values()  # (D, V)
        index = (z[:, :, None] - values[None]).abs().argmin(dim=2)  # (B, D)
        return values.gather(1, index.T).T, index

    @torch.no_grad()
    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """The quantised code (B, D), as Hsu et al. score it."""
        return self.quantize(self.encode(x))[0]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n observations decoded from codes whose latents take allowed values uniformly."""
        values = self.latent_values()
        index = torch.randint(values.shape[1], (self.latent_dim, n), generator=generator)
        return self.mean_image(values.gather(1, index.to(values.device)).T)

    def loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """`loss` to minimise plus every named term, all scalars."""
        z = self.encode(x)
        quantized, index = self.quantize(z)
        straight_through = z + (quantized - z).detach()
        recon = self.nll(self.decode(straight_through), x)
        penalty, terms = self.regularizer(z, quantized, step)
        used = [index[:, d].unique().numel() for d in range(self.latent_dim)]
        return {
            "loss": recon + penalty,
            "recon": recon,
            **terms,
            "active_units": (quantized.detach().var(0) > ACTIVE_UNIT_THRESHOLD).sum().float(),
            "values_used": torch.tensor(used, dtype=torch.float32).mean(),
        }

    def decayed_parameters(self) -> list[torch.nn.Parameter]:
        """The weight matrices and kernels of the encoder and decoder, not their biases."""
        weights = [p for part in (self.encoder, self.decoder) for p in part.parameters()]
        return [p for p in weights if p.dim() > 1]

    def clipped_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters whose gradients are clipped element-wise: the decayed ones."""
        return self.decayed_parameters()

    def objectives(self) -> dict[str, dict[str, Any]]:
        """One AdamW over every parameter, decaying `weights` and clipping `clipped`."""
        return {
            "loss": {
                "params": list(self.parameters()),
                "optimizer": "adamw",
                "options": {"weight_decay": self.weight_decay},
                "weights": self.decayed_parameters(),
                "clipped": self.clipped_parameters(),
                "clip_value": self.clip_value * self.pixels,
            }
        }
