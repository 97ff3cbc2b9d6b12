"""Mean Correlation Coefficient: the identifiability literature's score (not in the study)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.stats
from scipy.optimize import linear_sum_assignment

from untwine.metrics._checks import check_pair
from untwine.metrics.registry import Metric, register


def mcc(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    correlation: Literal["pearson", "spearman"] = "pearson",
) -> float:
    """Mean |correlation| of factors and codes after matching each factor to a distinct code.

    The matching maximises the total |correlation| (linear sum assignment); with fewer codes
    than factors, only min(d, k) pairs are matched. A constant code or factor correlates 0.
    Deterministic.
    """
    codes, factors = check_pair(codes, factors)
    if correlation == "spearman":
        codes = scipy.stats.rankdata(codes, axis=0)
        factors = scipy.stats.rankdata(factors, axis=0)
    corr = np.abs(_correlation(factors.astype(np.float64), codes))  # (k, d)
    rows, cols = linear_sum_assignment(corr, maximize=True)
    return float(corr[rows, cols].mean())


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of `a` with every column of `b`; 0 if one is constant."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    denominator = np.outer(np.sqrt((a**2).sum(0)), np.sqrt((b**2).sum(0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, a.T @ b / denominator, 0.0)


register(
    Metric(
        name="mcc",
        kind="codes",
        compute=lambda i: {"mcc": mcc(i.codes, i.factors)},
        meanings={
            "mcc": "MCC: mean absolute correlation between factors and their best-matched latents."
        },
        references=("Khemakhem et al. 2020",),
    )
)
