"""Interventional Robustness Score (Suter et al. 2019), as disentanglement_lib computes it."""

from __future__ import annotations

import numpy as np

from untwine.metrics._checks import check_pair, histogram_discretize
from untwine.metrics.registry import Metric, prefixed, register


def irs(
    codes: np.ndarray, factors: np.ndarray, *, diff_quantile: float = 0.99, num_bins: int = 20
) -> dict[str, float]:
    """How little each code moves while the factor it tracks is held fixed.

    Factors are discretised with the 20-bin histogram rule; zero-variance codes are dropped.
    For each factor value, the `diff_quantile` quantile of |code - mean code within that value|,
    averaged over the factor's values and divided by the code's largest deviation from its mean;
    IRS matrix = 1 - that; each code scores its best factor; the result is the mean weighted by
    the codes' largest deviations. Deterministic. `active_codes` counts the codes kept (the
    reference reports a sum of code values there, a bug).
    """
    codes, factors = check_pair(codes, factors)
    codes = codes[:, codes.var(axis=0) > 0]
    if codes.shape[1] == 0:
        return {"irs": 0.0, "active_codes": 0}
    factors = histogram_discretize(factors, num_bins)
    max_deviation = np.abs(codes - codes.mean(axis=0)).max(axis=0)  # (d,)
    deviation = np.zeros((codes.shape[1], factors.shape[1]))  # (d, k)
    for j in range(factors.shape[1]):
        values = np.unique(factors[:, j])
        for value in values:
            group = codes[factors[:, j] == value]
            spread = np.abs(group - group.mean(axis=0))
            deviation[:, j] += np.percentile(spread, diff_quantile * 100, axis=0)
        deviation[:, j] /= len(values)
    per_code = (1.0 - deviation / max_deviation[:, None]).max(axis=1)
    score = (
        np.average(per_code, weights=max_deviation) if max_deviation.sum() > 0 else per_code.mean()
    )
    return {"irs": float(score), "active_codes": int(codes.shape[1])}


register(
    Metric(
        name="irs",
        kind="codes",
        compute=lambda i: prefixed("irs", irs(i.codes, i.factors), main="irs"),
        meanings={
            "irs": "IRS: how little a factor's latents move when only the other factors change."
        },
        references=("Suter et al. 2019",),
    )
)
