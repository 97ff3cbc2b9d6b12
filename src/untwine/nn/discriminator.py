"""MLP discriminators on latent codes (FactorVAE's total-correlation critic)."""

from __future__ import annotations

import torch
from torch import nn


class LatentDiscriminator(nn.Module):
    """`layers` dense layers of `hidden` units with leaky ReLU (slope 0.2), then 2 logits."""

    def __init__(self, latent_dim: int, hidden: int = 1000, layers: int = 6) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = latent_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(width, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, 2): logit 0 "from q(z)", logit 1 "dimensions permuted"
