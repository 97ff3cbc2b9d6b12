"""Mutual Information Gap (Chen et al. 2018), with disentanglement_lib's histogram estimator."""

from __future__ import annotations

import numpy as np

from untwine.errors import UntwineError
from untwine.metrics._checks import (
    check_pair,
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
)
from untwine.metrics.registry import Metric, by_factor, register


def mig(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20) -> float:
    """Mean over factors of (largest - second largest MI over codes) / the factor's entropy.

    Codes are discretised into `num_bins` histogram bins per column. Constant factors (entropy
    0) carry no information to capture and are left out of the mean. Deterministic: equals
    disentanglement_lib's value to float precision. A perfect code scores < 1 when a factor has
    more values than bins (0.89 on dSprites).
    """
    gaps = mig_per_factor(codes, factors, num_bins=num_bins)
    return float(np.mean(gaps[~np.isnan(gaps)]))


def mig_per_factor(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20) -> np.ndarray:
    """Each factor's term of MIG, (k,): which factors a code captures; NaN for constant ones."""
    codes, factors = check_pair(codes, factors)
    if codes.shape[1] < 2:
        raise UntwineError("mig needs at least two code dimensions")
    varying = discrete_entropy(factors) > 0
    if not varying.any():
        raise UntwineError("every factor is constant; mig needs a factor that varies")
    top_two = np.sort(normalized_mutual_info(codes, factors, num_bins=num_bins), axis=0)[::-1][:2]
    return np.where(varying, top_two[0] - top_two[1], np.nan)


def normalized_mutual_info(
    codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20
) -> np.ndarray:
    """I(code_i; factor_j) / H(factor_j) for every code and factor, (d, k), as MIG reads them.

    Codes are histogram-discretised into `num_bins` bins; a constant factor's column is 0.
    1 means the code determines the factor; 0, that it says nothing about it.
    """
    codes, factors = check_pair(codes, factors)
    mi = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)  # (d, k)
    entropy = discrete_entropy(factors)  # (k,)
    return np.divide(mi, entropy, out=np.zeros_like(mi), where=entropy > 0)


register(
    Metric(
        name="mig",
        kind="codes",
        compute=lambda i: by_factor("mig", mig_per_factor(i.codes, i.factors), i.factor_names),
        meanings={
            "mig": "Mutual Information Gap: per factor, how much more the best latent knows "
            "about it than the second best, over the factor's entropy (1: each factor in one "
            "latent)."
        },
        per_factor="MIG for {factor} alone (MIG above is the mean of these terms).",
        references=("Chen et al. 2018",),
    )
)
