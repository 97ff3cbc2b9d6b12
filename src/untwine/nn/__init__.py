"""Architectures only: encoders and decoders, no losses."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from untwine.errors import UntwineError
from untwine.nn.conv import (
    Conv64Decoder,
    Conv64DeepDecoder,
    Conv64DeepEncoder,
    Conv64Encoder,
    Conv64StyleDecoder,
)
from untwine.nn.discriminator import LatentDiscriminator
from untwine.nn.mlp import MLPDecoder, MLPEncoder

ARCHITECTURES = ("conv64", "conv64-deep", "conv64-style", "mlp")
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}
__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "Conv64Decoder",
    "Conv64DeepDecoder",
    "Conv64DeepEncoder",
    "Conv64Encoder",
    "Conv64StyleDecoder",
    "LatentDiscriminator",
    "MLPDecoder",
    "MLPEncoder",
    "build_backbone",
    "hidden_activations",
]


def build_backbone(
    arch: str,
    observation_shape: tuple[int, ...],
    latent_dim: int,
    hidden: Sequence[int] = (1200, 1200),
    outputs_per_latent: int = 2,
    activation: str = "relu",
) -> tuple[nn.Module, nn.Module]:
    """Encoder (x -> `outputs_per_latent` * latent_dim numbers: a VAE's mean and log-variance,
    a quantised code's one value) and decoder (z -> x logits or means).

    `hidden` sizes the `mlp` arch's layers (encoder order; the decoder mirrors them), and
    `activation` (relu, gelu) follows every hidden layer.
    """
    if activation not in ACTIVATIONS:
        raise UntwineError(
            f"unknown activation {activation!r}; available: {', '.join(ACTIVATIONS)}"
        )
    act = ACTIVATIONS[activation]
    if arch == "mlp":
        if not hidden or min(hidden) < 1:
            raise UntwineError(f"model.hidden must be positive layer sizes, got {list(hidden)}")
        return (
            MLPEncoder(observation_shape, hidden, outputs_per_latent * latent_dim, act),
            MLPDecoder(latent_dim, hidden, observation_shape, act),
        )
    convs = {
        "conv64": (Conv64Encoder, Conv64Decoder),
        "conv64-deep": (Conv64DeepEncoder, Conv64DeepDecoder),
        "conv64-style": (Conv64Encoder, Conv64StyleDecoder),
    }
    if arch not in convs:
        raise UntwineError(f"unknown arch {arch!r}; available: {', '.join(ARCHITECTURES)}")
    if len(observation_shape) != 3 or tuple(observation_shape[1:]) != (64, 64):
        raise UntwineError(
            f"arch {arch} needs 64x64 images (C, 64, 64), the data has shape "
            f"{tuple(observation_shape)}; use arch mlp for other shapes"
        )
    encoder, decoder = convs[arch]
    return (
        encoder(observation_shape[0], outputs_per_latent * latent_dim, act),
        decoder(latent_dim, observation_shape[0], act),
    )


def hidden_activations(decoder: nn.Module, z: torch.Tensor) -> list[torch.Tensor]:
    """The output of each activation layer inside a decoder, in the order they run, for z."""
    outputs: list[torch.Tensor] = []
    hooks = [
        module.register_forward_hook(lambda module, args, out: outputs.append(out))
        for module in decoder.modules()
        if isinstance(module, tuple(ACTIVATIONS.values()))
    ]
    try:
        decoder(z)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs
