"""The ground-truth dataset interface: a factor grid, and images as a pure function of it."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from untwine.errors import UntwineError
from untwine.registry import Registry

DATASETS = Registry("dataset", section="data")


def data_root() -> Path:
    """Where caches and official files live: $UNTWINE_DATA, else ~/.cache/untwine."""
    return Path(os.environ.get("UNTWINE_DATA", Path.home() / ".cache" / "untwine")).expanduser()


class Dataset(ABC):
    """What the trainer, metrics and figures read: observations by index, and factors if known.

    Observations are uint8 images (n, H, W, C) in 0..255 or float32 rows (n, F) of a table;
    `observation_shape` is (C, H, W) or (F,). Factors are integer class indices (n, k); a
    dataset without them has empty `factor_names` and `factor_sizes`. The factor methods are
    what the metrics draw from: `sample_factors`, `observations_from_factors` and
    `resample_sharing` (the BetaVAE and FactorVAE scores' "same value of factor k").
    A `finite` dataset's scored observations are all among `observations(indices)`, so codes
    computed once per index can stand in for the encoder (`untwine.encoded`).
    """

    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    observation_shape: tuple[int, ...]
    feature_names: tuple[str, ...] | None = None  # column names when observations are rows
    notes: tuple[str, ...] | list[str] = ()  # what loading did (splits, discretised factors)
    finite: bool = True  # False where scoring draws a nuisance afresh, beside the index

    @abstractmethod
    def __len__(self) -> int: ...

    @classmethod
    def suggested_model_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Model options that suit this data (e.g. the MLP for tables), given its options."""
        return {}

    @abstractmethod
    def observations(self, indices: np.ndarray) -> np.ndarray:
        """uint8 images (n, H, W, C) or float32 rows (n, F) for indices (n,)."""

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} observations")
        index = np.array([index % len(self)])
        factors = self.index_to_factors(index)[0] if self.factor_names else np.zeros(0, int)
        return self.observations(index)[0], factors

    def sample_indices(self, n: int, generator: torch.Generator) -> np.ndarray:
        """n indices for a training batch: uniform with replacement, unless overridden."""
        return torch.randint(len(self), (n,), generator=generator).numpy()

    def check_pairs(self, k: int, option: str = "k") -> None:
        """Refuse, in one line naming `option`, pairs that differ in k factors where this data
        cannot give them (a pair model checks at the door)."""
        raise UntwineError(self._no_pairs())

    def sample_pairs(
        self, n: int, k: int, generator: torch.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """n pairs of indices whose factors differ in k factors (a factor grid draws them)."""
        raise UntwineError(self._no_pairs())

    def _no_pairs(self) -> str:
        return (
            f"{type(self).__name__} draws no pairs; pairs that differ in k factors come from a "
            "factor grid (dsprites and its variants, shapes3d, the official files)"
        )

    def held_out_indices(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Up to n indices to check a model on: random draws unless a validation split exists."""
        return rng.integers(0, len(self), n)

    @abstractmethod
    def index_to_factors(self, indices: np.ndarray) -> np.ndarray:
        """Factor indices (n, k) of observation indices (n,)."""

    @abstractmethod
    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n factor vectors (n, k) drawn from the data's factor distribution."""

    @abstractmethod
    def indices_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """The index of one observation per factor vector (n, k); `rng` breaks any tie."""

    def observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """One observation per factor vector (n, k); `rng` draws any nuisance or tie-break."""
        return self.observations(self.indices_from_factors(factors, rng))

    @abstractmethod
    def resample_sharing(
        self, factors: np.ndarray, fixed: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Factor vectors (n, k) that keep factor `fixed[i]` of row i and redraw the rest."""


class GroundTruthDataset(Dataset):
    """Images indexed in C-order over a complete factor grid, every factor independent.

    Subclasses set `factor_names`, `factor_sizes` and `observation_shape` (C, H, W) and implement
    `observations(indices)`. Nothing is held as float: `to_tensor` converts one batch at a time.
    """

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes))

    def index_to_factors(self, indices: np.ndarray) -> np.ndarray:
        """Factor indices (n, k) of flat grid indices (n,), C-order over `factor_sizes`."""
        return np.stack(np.unravel_index(np.asarray(indices), self.factor_sizes), axis=1)

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        """Flat grid indices (n,) of factor indices (n, k); inverse of `index_to_factors`."""
        return np.ravel_multi_index(tuple(np.asarray(factors).T), self.factor_sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n factor vectors drawn uniformly and independently from the grid, (n, k)."""
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1)

    def indices_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """The grid index of each factor vector (n, k): one image each, nothing to draw."""
        return self.factors_to_index(factors)

    def sample_pairs(
        self, n: int, k: int, generator: torch.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """n pairs of indices whose factors differ in exactly k factors (Locatello et al. 2020).

        The first of a pair is a training draw (`sample_indices`); the second changes k of the
        factors that vary, chosen uniformly, each to a value drawn uniformly among its others.
        k = -1 draws k for each pair uniformly from 1..F-1 (F: the factors that vary). This
        follows the paper; disentanglement_lib's sampler changes 1 or k factors with even odds
        and may redraw a factor's own value, so that its pairs can differ in fewer.
        """
        self.check_pairs(k)
        sizes = torch.tensor(self.factor_sizes)
        varying = sizes > 1
        most = int(varying.sum()) - 1
        first = self.sample_indices(n, generator)
        factors = torch.from_numpy(self.index_to_factors(first))
        counts = torch.randint(1, most + 1, (n, 1), generator=generator) if k == -1 else k
        keys = torch.rand(factors.shape, generator=generator).masked_fill(~varying, 2.0)
        changed = keys.argsort(1).argsort(1) < counts  # the `counts` lowest keys of each row
        steps = 1 + (torch.rand(factors.shape, generator=generator) * (sizes - 1)).long()
        second = torch.where(changed, (factors + steps) % sizes, factors)
        return first, self.factors_to_index(second.numpy())

    def check_pairs(self, k: int, option: str = "k") -> None:
        varying = sum(size > 1 for size in self.factor_sizes)
        most = varying - 1  # a pair shares at least one factor
        if not (k == -1 or 1 <= k <= most):
            raise UntwineError(
                f"{option} must be -1 (drawn for each pair) or 1..{most}, as pairs here share "
                f"at least one of {varying} varying factors; got {k}"
            )

    def resample_sharing(
        self, factors: np.ndarray, fixed: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        rows = np.arange(len(factors))
        fresh = self.sample_factors(len(factors), rng)
        fresh[rows, fixed] = np.asarray(factors)[rows, fixed]
        return fresh


def read_npy_header(stream: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the header of a .npy stream, leaving it at the first byte of data."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    return tuple(shape), dtype


def to_tensor(observations: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """A float32 batch on `device`, converted after the transfer.

    uint8 images (n, H, W, C) become (n, C, H, W) in [0, 1]; float images (n, H, W, C) become
    (n, C, H, W) as they are; rows (n, F) stay (n, F).
    """
    batch = torch.from_numpy(np.ascontiguousarray(observations)).to(device, non_blocking=True)
    if batch.ndim == 4:
        batch = batch.permute(0, 3, 1, 2)
    return batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch.float()


def load_dataset(name: str, **options) -> Dataset:
    """Build a registered dataset by name, e.g. `load_dataset("dsprites")`."""
    return DATASETS.create(name, **options)
