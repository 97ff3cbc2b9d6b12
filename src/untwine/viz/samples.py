"""Grids of observations: what a model will see (training draws), and what it generates."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from untwine.data import Dataset, to_tensor
from untwine.models import Autoencoder, Model
from untwine.viz.grid import compose


@torch.no_grad()
def model_samples(model: Model, n: int = 64, *, columns: int = 8, seed: int = 0) -> Image.Image:
    """A grid of n observations the model generates (seeded): prior samples decoded, or G's."""
    model.eval()
    device = next(model.parameters()).device
    images = model.sample(n, torch.Generator(device=device).manual_seed(seed))
    return _grid(images.clamp(0, 1).mul(255).round().byte().cpu().numpy(), columns)


@torch.no_grad()
def reconstructions(
    model: Autoencoder, dataset: Dataset, n: int = 8, *, seed: int = 0
) -> Image.Image:
    """n observations (top row) above their reconstructions from their codes (a VAE's posterior
    mean, a quantised code)."""
    model.eval()
    device = next(model.parameters()).device
    indices = np.random.default_rng(seed).integers(0, len(dataset), n)
    x = to_tensor(dataset.observations(indices), device)
    rebuilt = model.mean_image(model.representation(x))
    cells = torch.stack([x, rebuilt]).clamp(0, 1).mul(255).round().byte().cpu().numpy()
    return compose(cells, ["input", "rebuilt"])


@torch.no_grad()
def model_sample_rows(
    model: Model, dataset: Dataset, n: int = 64, *, seed: int = 0
) -> tuple[tuple[str, ...], np.ndarray]:
    """Column names and n rows the model generates, back in the table's units (seeded)."""
    model.eval()
    device = next(model.parameters()).device
    rows = model.sample(n, torch.Generator(device=device).manual_seed(seed)).cpu().numpy()
    if hasattr(dataset, "feature_mean"):  # undo the table's standardisation
        rows = rows * dataset.feature_std + dataset.feature_mean
    names = dataset.feature_names or tuple(f"x{i}" for i in range(rows.shape[1]))
    return tuple(names), rows


def dataset_samples(
    dataset: Dataset, n: int = 32, *, columns: int = 8, seed: int = 0
) -> Image.Image:
    """n training draws (as the trainer draws them, seeded), `columns` to a row."""
    indices = dataset.sample_indices(n, torch.Generator().manual_seed(seed))
    return _grid(dataset.observations(indices).transpose(0, 3, 1, 2), columns)


def dataset_pairs(
    dataset: Dataset, n: int = 16, k: int = -1, *, columns: int = 8, seed: int = 0
) -> Image.Image:
    """n training pairs that differ in k factors (`sample_pairs`), each image above its partner."""
    first, second = dataset.sample_pairs(n, k, torch.Generator().manual_seed(seed))
    rows = -(-n // columns)
    cells = np.zeros((rows * columns, 2, *dataset.observation_shape), np.uint8)
    cells[:n, 0] = dataset.observations(first).transpose(0, 3, 1, 2)
    cells[:n, 1] = dataset.observations(second).transpose(0, 3, 1, 2)
    by_row = cells.reshape(rows, columns, *cells.shape[1:]).swapaxes(1, 2)  # a row of partners
    return compose(by_row.reshape(rows * 2, columns, *cells.shape[2:]))


def _grid(images: np.ndarray, columns: int) -> Image.Image:
    """uint8 images (n, C, H, W) in rows of `columns`, the last row padded with blanks."""
    rows = -(-len(images) // columns)
    cells = np.zeros((rows * columns, *images.shape[1:]), np.uint8)
    cells[: len(images)] = images
    return compose(cells.reshape(rows, columns, *images.shape[1:]))


def dataset_head(dataset: Dataset, n: int = 10, *, seed: int = 0) -> str:
    """The first n training draws of a table, as text: features as the model sees them, factors."""
    indices = dataset.sample_indices(n, torch.Generator().manual_seed(seed))
    names = dataset.feature_names or tuple(f"x{i}" for i in range(dataset.observation_shape[0]))
    header = [*names, *(f"[{f}]" for f in dataset.factor_names)]
    rows = [[f"{v:.3f}" for v in row] for row in dataset.observations(indices)]
    if dataset.factor_names:
        rows = [
            [*row, *map(str, f)]
            for row, f in zip(rows, dataset.index_to_factors(indices), strict=True)
        ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)
