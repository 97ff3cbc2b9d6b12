"""Scores that read the codes alone: Gaussian total and Wasserstein correlation, discrete MI."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from untwine.metrics._checks import check_codes, discrete_mutual_info, histogram_discretize
from untwine.metrics.registry import Metric, prefixed, register


def unsupervised(codes: np.ndarray, *, num_bins: int = 20) -> dict[str, float]:
    """The study's unsupervised scores from the codes' covariance C (`np.cov`).

    gaussian_total_correlation = 0.5 (sum log diag C - log det C); gaussian_wasserstein_correlation
    = 2 tr C - 2 tr sqrtm(C * diag(C)[:, None]); its `_norm` version divides by tr C;
    mutual_info_score = mean off-diagonal MI between histogram-discretised codes. Constant codes
    make the Gaussian scores undefined, so they are dropped from those and counted in
    `constant_codes`. Deterministic.
    """
    codes = check_codes(codes)
    varying = codes.var(axis=0) > 0
    cov = np.atleast_2d(np.cov(codes[:, varying], rowvar=False))
    scores = {"constant_codes": int((~varying).sum())}
    if varying.any():
        diag = np.diag(cov)
        trace = float(np.sum(diag))
        sqrt = scipy.linalg.sqrtm(cov * diag[:, None])
        wasserstein = 2 * trace - 2 * float(np.real(np.trace(sqrt)))
        scores["gaussian_total_correlation"] = float(
            0.5 * (np.sum(np.log(diag)) - np.linalg.slogdet(cov)[1])
        )
        scores["gaussian_wasserstein_correlation"] = wasserstein
        scores["gaussian_wasserstein_correlation_norm"] = wasserstein / trace
    d = codes.shape[1]
    if d > 1:
        mi = discrete_mutual_info(*(2 * [histogram_discretize(codes, num_bins)]))
        scores["mutual_info_score"] = float((mi.sum() - np.trace(mi)) / (d * d - d))
    return scores


register(
    Metric(
        name="unsupervised",
        kind="codes",
        compute=lambda i: prefixed("unsupervised", unsupervised(i.codes)),
        meanings={
            "unsupervised.gaussian_total_correlation": "Total correlation of a Gaussian fitted "
            "to the latents (0: independent latents).",
            "unsupervised.mutual_info_score": "Mean mutual information between pairs of latents "
            "(0: independent latents).",
        },
        better="lower",
        needs_factors=False,
        references=("Locatello et al. 2019",),
    )
)
