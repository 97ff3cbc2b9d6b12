"""The reference study's 64x64 convolutional encoder and decoder (Locatello et al. 2019)."""

from __future__ import annotations

import torch
from torch import nn


class Conv64Encoder(nn.Module):
    """Stride-2 convs: 32, 32, 64, 64 filters (kernels 4, 4, 2, 2), dense 256, `out_dim` outputs."""

    def __init__(
        self, in_channels: int, out_dim: int, activation: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 32, 4, stride=2, padding=1),  # (B, 32, 32, 32); "same"
            activation(),
            nn.Conv2d(32, 32, 4, stride=2, padding=1),  # (B, 32, 16, 16)
            activation(),
            nn.Conv2d(32, 64, 2, stride=2),  # (B, 64, 8, 8)
            activation(),
            nn.Conv2d(64, 64, 2, stride=2),  # (B, 64, 4, 4)
            activation(),
            nn.Flatten(),  # (B, 1024)
            nn.Linear(1024, 256),
            activation(),
            nn.Linear(256, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Conv64Decoder(nn.Module):
    """Dense 256, dense 4x4x64, 4x4 stride-2 transposed convs (64, 32, 32, C): 64x64 outputs."""

    def __init__(
        self, latent_dim: int, out_channels: int, activation: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 256),
            activation(),
            nn.Linear(256, 1024),
            activation(),
            nn.Unflatten(1, (64, 4, 4)),
            nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1),  # (B, 64, 8, 8)
            activation(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),  # (B, 32, 16, 16)
            activation(),
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1),  # (B, 32, 32, 32)
            activation(),
            nn.ConvTranspose2d(32, out_channels, 4, stride=2, padding=1),  # (B, C, 64, 64)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Conv64DeepEncoder(nn.Module):
    """Four 4x4 stride-2 convs with 32, 64, 128, 256 filters, dense 256, `out_dim` outputs."""

    def __init__(
        self, in_channels: int, out_dim: int, activation: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip((in_channels, 32, 64, 128), (32, 64, 128, 256), strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), activation()]  # halves H, W
        self.net = nn.Sequential(
            *layers,  # (B, 256, 4, 4)
            nn.Flatten(),
            nn.Linear(256 * 4 * 4, 256),
            activation(),
            nn.Linear(256, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Conv64DeepDecoder(nn.Module):
    """The deep encoder mirrored: dense 256, dense 4x4x256, transposed convs 128, 64, 32, C."""

    def __init__(
        self, latent_dim: int, out_channels: int, activation: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip((256, 128, 64), (128, 64, 32), strict=True):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), activation()]
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 256),
            activation(),
            nn.Linear(256, 256 * 4 * 4),
            activation(),
            nn.Unflatten(1, (256, 4, 4)),
            *layers,  # (B, 32, 32, 32)
            nn.ConvTranspose2d(32, out_channels, 4, stride=2, padding=1),  # (B, C, 64, 64)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Conv64StyleDecoder(nn.Module):
    """A style-modulated decoder, as QLAE and Tripod use (after Karras et al. 2019), at the
    study's decoder's sizes: a learned 4x4x64 map, upsampled by 4x4 stride-2 transposed convs
    (64, 32, 32 filters), each followed by the activation, instance norm, and a per-channel
    scale and shift that z sets; a last transposed conv to C channels at 64x64. z reaches
    every resolution, instead of only the first layer."""

    widths = (64, 32, 32)

    def __init__(
        self, latent_dim: int, out_channels: int, activation: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        self.style = nn.Sequential(nn.Linear(latent_dim, 256), activation())  # z -> w
        self.start = nn.Parameter(torch.full((64, 4, 4), 0.1))  # the map z modulates
        self.blocks = nn.ModuleList()
        self.modulations = nn.ModuleList()
        for c_in, c_out in zip((64, *self.widths[:-1]), self.widths, strict=True):
            self.blocks.append(
                nn.Sequential(
                    nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),  # doubles H, W
                    activation(),
                    nn.InstanceNorm2d(c_out),
                )
            )
            self.modulations.append(nn.Linear(256, 2 * c_out))
        self.out = nn.ConvTranspose2d(self.widths[-1], out_channels, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = self.style(z)
        h = self.start.expand(z.shape[0], -1, -1, -1)
        for block, modulation in zip(self.blocks, self.modulations, strict=True):
            scale, shift = modulation(w)[:, :, None, None].chunk(2, dim=1)
            h = block(h) * (1 + scale) + shift  # 1 + scale: the identity at initialisation
        return self.out(h)  # (B, C, 64, 64)
