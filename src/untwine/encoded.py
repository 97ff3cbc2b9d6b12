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

FILL = 4096  # observations rendered at once
BATCH = 512  # rows per encoder call: the MLP's and conv64's fastest on two cores
MIN_BATCH = 32  # CPU kernels round batches under 12 rows differently (a code moves by ~1e-7)


def batch_size_for(rows: int) -> int:
    """The encoder batch that `rows` new rows go out in: a power of two from MIN_BATCH up to
    BATCH, or whole BATCHes. Few sizes let the allocator reuse its blocks (varied sizes grew a
    conv encoder's heap past 2.5 GB), and no batch is small enough to round differently."""
    if rows >= BATCH:
        return -(-rows // BATCH) * BATCH
    return max(MIN_BATCH, 1 << (rows - 1).bit_length())


class EncodedDataset(Dataset):
    """`dataset` with each observation replaced by `encode`'s float32 row for it (n, width).

    The table holds a row per observation (memory `table_bytes`); a row is computed the first
    time its index is drawn, in a batch topped up with rows not drawn yet (see
    `batch_size_for`). `encode` gets at most BATCH images at a time. `encoded` counts the rows
    computed so far.
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
        if len(new):
            new = self._topped_up(new, batch_size_for(len(new)))
        for start in range(0, len(new), FILL):
            self._fill(new[start : start + FILL])
        return self._rows[indices]

    def _topped_up(self, new: np.ndarray, size: int) -> np.ndarray:
        """`new` and the first rows not yet encoded, `size` in all where that many are left."""
        extra, need = [], size - len(new)
        while need > 0 and self._cursor < len(self):  # every row below the cursor is encoded
            window = np.arange(self._cursor, min(self._cursor + FILL, len(self)))
            free = window[~self._filled[window] & ~np.isin(window, new)][:need]
            extra.append(free)
            need -= len(free)
            if need > 0:
                self._cursor = window[-1] + 1
        return np.concatenate([new, *extra])

    def _fill(self, indices: np.ndarray) -> None:
        images = self.dataset.observations(indices)
        for start in range(0, len(indices), BATCH):
            part = images[start : start + BATCH]
            padded = np.resize(np.arange(len(part)), batch_size_for(len(part)))  # repeats
            self._rows[indices[start : start + BATCH]] = self._encode(part[padded])[: len(part)]
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
