"""What a model will see: a grid of training images drawn from a dataset."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from untwine.data import GroundTruthDataset
from untwine.viz.grid import compose


def dataset_samples(
    dataset: GroundTruthDataset, n: int = 32, *, columns: int = 8, seed: int = 0
) -> Image.Image:
    """n training draws (as the trainer draws them, seeded), `columns` to a row."""
    indices = dataset.sample_indices(n, torch.Generator().manual_seed(seed))
    images = dataset.images(indices).transpose(0, 3, 1, 2)  # (n, C, H, W)
    rows = -(-n // columns)
    cells = np.zeros((rows * columns, *images.shape[1:]), np.uint8)
    cells[:n] = images
    return compose(cells.reshape(rows, columns, *images.shape[1:]))
