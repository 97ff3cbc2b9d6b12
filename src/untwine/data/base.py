"""The ground-truth dataset interface: a factor grid, and images as a pure function of it."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from untwine.registry import Registry

DATASETS = Registry("dataset", section="data")


def data_root() -> Path:
    """Where caches and official files live: $UNTWINE_DATA, else ~/.cache/untwine."""
    return Path(os.environ.get("UNTWINE_DATA", Path.home() / ".cache" / "untwine")).expanduser()


class GroundTruthDataset(ABC):
    """Images indexed in C-order over a factor grid; images are uint8 HWC, factors integer indices.

    Subclasses set `factor_names`, `factor_sizes` and `observation_shape` (C, H, W) and implement
    `images(indices)`. Nothing is ever held as float: `to_tensor` converts one batch at a time.
    """

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    observation_shape: tuple[int, int, int]

    @abstractmethod
    def images(self, indices: np.ndarray) -> np.ndarray:
        """uint8 images (n, H, W, C) in 0..255 for flat grid indices (n,)."""

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index = index % len(self)
        return self.images(np.array([index]))[0], self.index_to_factors(np.array([index]))[0]

    def sample_indices(self, n: int, generator: torch.Generator) -> np.ndarray:
        """n flat indices for a training batch: uniform with replacement, unless overridden."""
        return torch.randint(len(self), (n,), generator=generator).numpy()

    def index_to_factors(self, indices: np.ndarray) -> np.ndarray:
        """Factor indices (n, k) of flat grid indices (n,), C-order over `factor_sizes`."""
        return np.stack(np.unravel_index(np.asarray(indices), self.factor_sizes), axis=1)

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        """Flat grid indices (n,) of factor indices (n, k); inverse of `index_to_factors`."""
        return np.ravel_multi_index(tuple(np.asarray(factors).T), self.factor_sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n factor vectors drawn uniformly and independently from the grid, (n, k)."""
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1)

    def observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """uint8 images (n, H, W, C) for factor indices (n, k); `rng` is for noisy datasets."""
        return self.images(self.factors_to_index(factors))


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (n, H, W, C) -> float32 (n, C, H, W) in [0, 1] on `device`; converts after transfer."""
    batch = torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True)
    return batch.permute(0, 3, 1, 2).float().div_(255.0)


def load_dataset(name: str, **options) -> GroundTruthDataset:
    """Build a registered dataset by name, e.g. `load_dataset("dsprites")`."""
    return DATASETS.create(name, **options)
