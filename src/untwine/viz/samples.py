"""What a model will see: a grid of training images drawn from a dataset."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from untwine.data import Dataset
from untwine.viz.grid import compose


def dataset_samples(
    dataset: Dataset, n: int = 32, *, columns: int = 8, seed: int = 0
) -> Image.Image:
    """n training draws (as the trainer draws them, seeded), `columns` to a row."""
    indices = dataset.sample_indices(n, torch.Generator().manual_seed(seed))
    images = dataset.observations(indices).transpose(0, 3, 1, 2)  # (n, C, H, W)
    rows = -(-n // columns)
    cells = np.zeros((rows * columns, *images.shape[1:]), np.uint8)
    cells[:n] = images
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
