"""Fully connected encoder and decoder, for vectors, tables and small images of any shape."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn


def _mlp(sizes: Sequence[int], activation: type[nn.Module]) -> list[nn.Module]:
    """Linear layers through `sizes`, `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return layers


class MLPEncoder(nn.Module):
    """Flattened input through `hidden` layers (ReLU unless told) to `out_dim` outputs."""

    def __init__(
        self,
        in_shape: Sequence[int],
        hidden: Sequence[int],
        out_dim: int,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        sizes = [math.prod(in_shape), *hidden, out_dim]
        self.net = nn.Sequential(nn.Flatten(), *_mlp(sizes, activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """Latents through `hidden` layers (reversed; ReLU unless told) to outputs of `out_shape`."""

    def __init__(
        self,
        latent_dim: int,
        hidden: Sequence[int],
        out_shape: Sequence[int],
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            *_mlp([latent_dim, *reversed(hidden), math.prod(out_shape)], activation),
            nn.Unflatten(1, tuple(out_shape)),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
