"""A finite dataset seen through a deterministic encoder: each observation encoded once.

The metrics draw points from a dataset (by factors, by index) and encode them; the BetaVAE and
FactorVAE scores alone draw about three million at the reference budget, from grids of a few
hundred thousand images. `EncodedDataset` stands in for both the dataset and the encoder: its
observations are the encoder's outputs at the same indices, computed in batches the first
time an index is drawn and read from a code table after. Every draw is still the dataset's
own, from the same generator, so the scores are those of encoding afresh.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from untwine.data import Dataset

FILL = 4096  # observations rendered and encoded per fill: big batches encode fastest
MIN_FILL = 32  # fewer new rows are topped up with rows not yet drawn: CPU kernels for tiny
# batches round differently (under 12 rows move a code by ~1e-7), and a code must not depend on
# when its index was first drawn


class EncodedDataset(Dataset):
    """`dataset` with each observation replaced by `encode`'s float32 row for it (n, width).

    The table holds a row per observation (memory `table_bytes`); a row is computed the first
    time its index is drawn. `encoded` counts the rows computed so far.
    """

    def __init__(
        self, dataset: Dataset, encode: Callable[[np.ndarray], np.ndarray], width: int
    ) -> None:
        self.dataset = dataset
        self.factor_names = dataset.factor_names
        self.factor_sizes = dataset.factor_sizes
        self.observation_shape = (width,)
        self._encode = encode
        self._rows = np.zeros((len(dataset), width), np.float32)  # pages appear as rows fill
        self._filled = np.zeros(len(dataset), bool)
        self._cursor = 0
        self.encoded = 0

    @staticmethod
    def table_bytes(dataset: Dataset, width: int) -> int:
        """Memory the table of `dataset` takes at `width` float32 values per row."""
        return len(dataset) * (4 * width + 1)

    def __len__(self) -> int:
        return len(self.dataset)

    def observations(self, indices: np.ndarray) -> np.ndarray:
        """The encoder's rows (n, width) for indices (n,), encoding those not seen before."""
        indices = np.asarray(indices)
        new = np.unique(indices[~self._filled[indices]])
        if 0 < len(new) < MIN_FILL:
            new = self._topped_up(new)
        for start in range(0, len(new), FILL):
            self._fill(new[start : start + FILL])
        return self._rows[indices]

    def _topped_up(self, new: np.ndarray) -> np.ndarray:
        """`new` and the first rows not yet encoded, MIN_FILL in all where that many are left."""
        extra, need = [], MIN_FILL - len(new)
        while need > 0 and self._cursor < len(self):  # every row below the cursor is encoded
            window = np.arange(self._cursor, min(self._cursor + FILL, len(self)))
            free = window[~self._filled[window] & ~np.isin(window, new)][:need]
            extra.append(free)
            need -= len(free)
            if need > 0:
                self._cursor = window[-1] + 1
        return np.concatenate([new, *extra])

    def _fill(self, indices: np.ndarray) -> None:
        batch = np.resize(indices, max(len(indices), MIN_FILL))  # repeats a short last batch
        self._rows[indices] = self._encode(self.dataset.observations(batch))[: len(indices)]
        self._filled[indices] = True
        self.encoded += len(indices)

    def indices_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        return self.dataset.indices_from_factors(factors, rng)

    def index_to_factors(self, indices: np.ndarray) -> np.ndarray:
        return self.dataset.index_to_factors(indices)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.dataset.sample_factors(n, rng)

    def resample_sharing(
        self, factors: np.ndarray, fixed: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        return self.dataset.resample_sharing(factors, fixed, rng)

    def sample_indices(self, n: int, generator: torch.Generator) -> np.ndarray:
        return self.dataset.sample_indices(n, generator)

    def held_out_indices(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.dataset.held_out_indices(n, rng)
