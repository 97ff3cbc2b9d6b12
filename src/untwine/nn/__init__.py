"""Architectures only: encoders and decoders, no losses."""

from __future__ import annotations

from torch import nn

from untwine.errors import UntwineError
from untwine.nn.conv import Conv64Decoder, Conv64Encoder
from untwine.nn.discriminator import LatentDiscriminator

ARCHITECTURES = ("conv64",)
__all__ = [
    "ARCHITECTURES",
    "Conv64Decoder",
    "Conv64Encoder",
    "LatentDiscriminator",
    "build_backbone",
]


def build_backbone(
    arch: str, observation_shape: tuple[int, int, int], latent_dim: int
) -> tuple[nn.Module, nn.Module]:
    """Encoder (x -> 2 * latent_dim posterior parameters) and decoder (z -> x logits or means)."""
    channels, height, width = observation_shape
    if arch == "conv64":
        if (height, width) != (64, 64):
            raise UntwineError(f"arch conv64 needs 64x64 images, the data has {height}x{width}")
        return Conv64Encoder(channels, 2 * latent_dim), Conv64Decoder(latent_dim, channels)
    raise UntwineError(f"unknown arch {arch!r}; available: {', '.join(ARCHITECTURES)}")
