"""Drawing points from a ground-truth dataset and encoding them, a bounded chunk at a time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from untwine.data import Dataset

RepresentationFn = Callable[[np.ndarray], np.ndarray]  # uint8 images (n, H, W, C) -> codes (n, d)


def sample_codes(
    dataset: Dataset,
    encode: RepresentationFn,
    n: int,
    rng: np.random.Generator,
    chunk: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Codes and factor indices of `n` images drawn afresh and uniformly from the grid."""
    factors = dataset.sample_factors(n, rng)
    return encode_factors(dataset, encode, factors, rng, chunk), factors


def encode_factors(
    dataset: Dataset,
    encode: RepresentationFn,
    factors: np.ndarray,
    rng: np.random.Generator,
    chunk: int = 1024,
) -> np.ndarray:
    """Codes (n, d) of one image per factor vector (n, k), `chunk` images per encoder call."""
    return np.concatenate(
        [
            encode(dataset.observations_from_factors(factors[i : i + chunk], rng))
            for i in range(0, len(factors), chunk)
        ]
    )
