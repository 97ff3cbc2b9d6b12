"""Input checks and shared pieces: histogram discretisation, discrete MI, the train/test split."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import mutual_info_score

from untwine.errors import UntwineError


def check_codes(codes: np.ndarray, name: str = "codes") -> np.ndarray:
    """A finite float matrix (N, d) with at least two rows."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] < 2 or codes.shape[1] < 1:
        raise UntwineError(f"{name} must be a matrix (N, d) with N >= 2, got shape {codes.shape}")
    if np.iscomplexobj(codes):
        raise UntwineError(f"{name} must hold real numbers, got {codes.dtype}")
    if not np.issubdtype(codes.dtype, np.number) or not np.isfinite(codes).all():
        raise UntwineError(f"{name} must hold finite numbers")
    return codes.astype(np.float64, copy=False)


def check_factors(factors: np.ndarray, n: int, name: str = "factors") -> np.ndarray:
    """An integer matrix (N, k) of factor indices matching N rows of codes."""
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[0] != n or factors.shape[1] < 1:
        raise UntwineError(f"{name} must be a matrix (N, k) with N = {n} rows, got {factors.shape}")
    if not np.issubdtype(factors.dtype, np.integer):
        real = np.issubdtype(factors.dtype, np.number) and not np.iscomplexobj(factors)
        if not real or not np.all(np.mod(factors, 1) == 0):
            raise UntwineError(
                f"{name} must be integer factor indices; discretise continuous factors first "
                "(untwine.metrics.histogram_discretize)"
            )
        factors = factors.astype(np.int64)
    return factors


def check_pair(codes, factors, suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
    codes = check_codes(codes, f"codes{suffix}")
    return codes, check_factors(factors, len(codes), f"factors{suffix}")


def train_test(codes, factors, codes_test=None, factors_test=None):
    """The given test split, or the reference rule: first ceil(0.9 N) rows train, the rest test."""
    codes, factors = check_pair(codes, factors)
    if (codes_test is None) != (factors_test is None):
        raise UntwineError("give both codes_test and factors_test, or neither")
    if codes_test is None:
        n_train = math.ceil(0.9 * len(codes))
        if n_train == len(codes):
            raise UntwineError(f"{len(codes)} rows are too few to hold out a test split")
        return codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:]
    codes_test, factors_test = check_pair(codes_test, factors_test, "_test")
    if codes_test.shape[1] != codes.shape[1] or factors_test.shape[1] != factors.shape[1]:
        raise UntwineError("the test split must have as many code and factor columns as the train")
    return codes, factors, codes_test, factors_test


def standardised(x: np.ndarray) -> np.ndarray:
    """Columns at mean 0 and standard deviation 1; a constant column becomes 0."""
    std = x.std(0)
    return (x - x.mean(0)) / np.where(std > 0, std, 1.0)


def histogram_discretize(values: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Each column to bins 1..num_bins: `np.histogram` edges, then `np.digitize` on edges[:-1]."""
    values = np.asarray(values)
    out = np.empty(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        edges = np.histogram(values[:, j], bins=num_bins)[1]
        out[:, j] = np.digitize(values[:, j], edges[:-1])
    return out


def value_labels(values: np.ndarray) -> np.ndarray:
    """Each column's values as integer labels 0..k-1 (the same value, the same label)."""
    return np.stack([np.unique(c, return_inverse=True)[1] for c in values.T], axis=1)


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MI in nats between every column of `a` (N, p) and of `b` (N, q), each a discrete
    variable (float values too: a quantised code's), matrix (p, q)."""
    a, b = value_labels(a), value_labels(b)
    return np.array(
        [
            [mutual_info_score(b[:, j], a[:, i]) for j in range(b.shape[1])]
            for i in range(a.shape[1])
        ]
    )


def discrete_entropy(values: np.ndarray) -> np.ndarray:
    """Entropy in nats of each column's values, as `mutual_info_score(f, f)`, (k,)."""
    return np.array([mutual_info_score(f, f) for f in value_labels(values).T])
