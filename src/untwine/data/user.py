"""The user's own data, what its three sources share: observations in memory, a seeded
train/validation split, optional factors (continuous ones discretised into quantile bins, as
the metrics need classes), optional pairs for the pair models, and `notes` saying what loading
did. The sources: `folder.py` (images), `array.py` (.npy / .npz files) and `table.py` (CSV).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch

from untwine.data.base import Dataset
from untwine.errors import UntwineError, UntwineWarning


class UserDataset(Dataset):
    """Observations in memory with optional factors and a seeded train/validation split.

    `validation` of the observations (chosen by `split_seed`) are held out: training never
    draws them, and `evaluate` reads reconstruction and KL on them. The metrics draw factor
    vectors from the data and pick an observation with exactly those factors.
    """

    def _setup(
        self,
        data: np.ndarray,
        layout: Literal["nhwc", "nchw", "rows"],
        factors: np.ndarray | None,
        factor_names: tuple[str, ...],
        validation: float,
        split_seed: int,
        pairs: np.ndarray | None = None,
    ) -> None:
        """Hold `data`, check and index the factors, and split; the subclasses' last step.

        `pairs` (M, 2) are observation indices that pair up for the pair models; training
        draws those whose two observations are both in the training split.
        """
        if not 0 <= validation < 1:
            raise UntwineError(f"data.validation must be in [0, 1), got {validation}")
        self._data, self._layout = data, layout
        n = len(data)
        if layout == "rows":
            self.observation_shape = (data.shape[1],)
        elif layout == "nchw":
            self.observation_shape = tuple(data.shape[1:])
        else:
            self.observation_shape = (data.shape[3], data.shape[1], data.shape[2])
        self._factors = None
        if factors is not None:
            self._factors = factors
            self.factor_names = factor_names
            self.factor_sizes = tuple(int(s) for s in factors.max(axis=0) + 1)
            if np.prod(self.factor_sizes, dtype=float) >= 2**62:
                raise UntwineError(
                    f"{len(factor_names)} factors with {self.factor_sizes} classes make too many "
                    "combinations to index; use fewer factors or fewer data.bins"
                )
        order = np.random.default_rng(split_seed).permutation(n)
        held = round(validation * n)
        if validation > 0 and n >= 2:
            held = min(max(held, 1), n - 1)
        self.validation_indices = np.sort(order[:held])
        self.training_indices = np.sort(order[held:])
        self.notes.append(
            f"{n} observations: {len(self.training_indices)} train, {held} validation "
            f"(data.validation={validation}, data.split_seed={split_seed})"
        )
        self._pairs = None
        if pairs is not None:
            training = np.zeros(n, bool)
            training[self.training_indices] = True
            self._pairs = pairs[training[pairs].all(axis=1)]
            self.notes.append(
                f"{len(pairs)} pairs, {len(self._pairs)} with both observations in the training "
                "split"
            )

    def __len__(self) -> int:
        return len(self._data)

    def observations(self, indices: np.ndarray) -> np.ndarray:
        batch = self._data[np.asarray(indices)]
        if self._layout == "nchw":
            batch = batch.transpose(0, 2, 3, 1)
        return batch if batch.dtype == np.uint8 else batch.astype(np.float32)

    def sample_indices(self, n: int, generator: torch.Generator) -> np.ndarray:
        """Training draws come from the training split only."""
        picks = torch.randint(len(self.training_indices), (n,), generator=generator).numpy()
        return self.training_indices[picks]

    def check_pairs(self, k: int, option: str = "k") -> None:
        """The data's own pairs must exist; they differ in what they differ in, so k is unused."""
        self._training_pairs()
        if k != 1:
            warnings.warn(
                f"{option}={k} is not used: this data's pairs come as given (ordered frames or "
                "its `pairs` array), not drawn to differ in k factors",
                UntwineWarning,
                stacklevel=2,
            )

    def sample_pairs(
        self, n: int, k: int, generator: torch.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """n of the data's training pairs, drawn uniformly with replacement; k is unused."""
        pairs = self._training_pairs()
        rows = torch.randint(len(pairs), (n,), generator=generator).numpy()
        return pairs[rows, 0], pairs[rows, 1]

    def _training_pairs(self) -> np.ndarray:
        if self._pairs is None:
            raise UntwineError(
                "this data has no pairs: a folder of frames ordered in time takes "
                "data.frames=true, an .npz file a `pairs` array (M, 2) of observation indices"
            )
        if len(self._pairs) == 0:
            raise UntwineError(
                "no pair has both observations in the training split; lower data.validation"
            )
        return self._pairs

    def held_out_indices(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The validation split (a random n of it when larger); random draws without one."""
        if len(self.validation_indices) == 0:
            return rng.integers(0, len(self), n)
        if len(self.validation_indices) <= n:
            return self.validation_indices
        return np.sort(rng.choice(self.validation_indices, n, replace=False))

    def index_to_factors(self, indices: np.ndarray) -> np.ndarray:
        return self._labels()[np.asarray(indices)]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Factors of n observations drawn uniformly: the data's own joint distribution."""
        return self._labels()[rng.integers(0, len(self), n)]

    def indices_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """For each factor vector, an observation that has it (random among equals with `rng`)."""
        keys, sorted_keys, order = self._keys(factors), *self._key_index()
        low = np.searchsorted(sorted_keys, keys, side="left")
        high = np.searchsorted(sorted_keys, keys, side="right")
        if np.any(high == low):
            missing = np.asarray(factors)[np.argmax(high == low)]
            raise UntwineError(f"no observation has the factor values {missing.tolist()}")
        offset = 0 if rng is None else (rng.random(len(keys)) * (high - low)).astype(np.int64)
        return order[low + offset]

    def resample_sharing(
        self, factors: np.ndarray, fixed: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Row i becomes the factors of a random observation sharing factor fixed[i]'s value."""
        labels, factors, fixed = self._labels(), np.asarray(factors), np.asarray(fixed)
        items = np.empty(len(factors), np.int64)
        for j in np.unique(fixed):
            rows = np.flatnonzero(fixed == j)
            order, starts, counts = self._by_value(j)
            values = factors[rows, j]
            offset = (rng.random(len(rows)) * counts[values]).astype(np.int64)
            items[rows] = order[starts[values] + offset]
        return labels[items]

    def _labels(self) -> np.ndarray:
        if self._factors is None:
            raise UntwineError(
                "this dataset has no factors; give them (an array's `factors` key, a table's "
                "--factors) to use the supervised metrics"
            )
        return self._factors

    def _by_value(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Observations sorted by factor j, where each value's run starts, and its length.

        Cached: the metrics ask for it once per chunk of points.
        """
        if not hasattr(self, "_grouped"):
            self._grouped = {}
        if j not in self._grouped:
            column = self._labels()[:, j]
            counts = np.bincount(column, minlength=self.factor_sizes[j])
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            self._grouped[j] = (np.argsort(column, kind="stable"), starts, counts)
        return self._grouped[j]

    def _keys(self, factors: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(tuple(np.asarray(factors).T), self.factor_sizes)

    def _key_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Every observation's factor key, sorted, and the order that sorts them (cached)."""
        if not hasattr(self, "_sorted"):
            keys = self._keys(self._labels())
            order = np.argsort(keys, kind="stable")
            self._sorted = (keys[order], order)
        return self._sorted


def discretise(
    values: list[np.ndarray], names: tuple[str, ...], bins: int
) -> tuple[np.ndarray, list[str]]:
    """Factor class indices (n, k) from raw columns, and a note per factor on how.

    A column of text, or with at most `bins` distinct values, is categorical (sorted values ->
    0, 1, ...); any other numeric column is cut into `bins` equal-count (quantile) bins.
    """
    if bins < 2:
        raise UntwineError(f"data.bins must be at least 2, got {bins}")
    columns, notes = [], []
    for name, column in zip(names, values, strict=True):
        distinct = np.unique(column)
        if column.dtype.kind not in "biuf" or len(distinct) <= bins:
            columns.append(np.searchsorted(distinct, column))
            notes.append(f"factor {name}: {len(distinct)} classes")
            continue
        edges = np.quantile(column, np.linspace(0, 1, bins + 1)[1:-1])
        classes = np.unique(np.searchsorted(edges, column, side="right"), return_inverse=True)[1]
        columns.append(classes.reshape(-1))
        notes.append(
            f"factor {name}: continuous ({len(distinct)} values), discretised into "
            f"{classes.max() + 1} quantile bins"
        )
    return np.stack(columns, axis=1).astype(np.int64), notes
