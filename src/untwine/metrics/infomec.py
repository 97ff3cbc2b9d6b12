"""InfoMEC (Hsu et al. 2023): modularity, explicitness and compactness from normalised MI."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from untwine.metrics._checks import (
    check_pair,
    discrete_entropy,
    discrete_mutual_info,
    standardised,
)
from untwine.metrics.registry import Metric, register

DISCRETE_MOST_VALUES = 256  # codes with no more distinct values per latent count as discrete
KSG_NEIGHBOURS = 10


def normalised_mutual_information(
    codes: np.ndarray, factors: np.ndarray, *, discrete: bool, seed: int = 0
) -> np.ndarray:
    """I(factor_i; latent_j) / H(factor_i), (k, d), in nats over nats, at least 0.

    Discrete latents: the plug-in MI of their values less its bias for independent variables,
    (values_i - 1)(values_j - 1) / 2n (Miller and Madow; without it a perfect code of 40- and
    32-valued factors would read 0.017 from every factor it does not hold). Continuous latents:
    the k-nearest-neighbour (KSG) estimate of scikit-learn's `mutual_info_classif` with 10
    neighbours on standardised latents, as the reference; `seed` fixes the jitter it adds.
    """
    entropy = discrete_entropy(factors)  # (k,)
    if discrete:
        classes = [len(np.unique(column)) for column in factors.T]
        values = [len(np.unique(column)) for column in codes.T]
        bias = np.outer(np.subtract(classes, 1), np.subtract(values, 1)) / (2 * len(codes))
        mi = discrete_mutual_info(factors, codes) - bias
    else:
        codes = standardised(codes)
        mi = np.zeros((factors.shape[1], codes.shape[1]))
        for i in np.flatnonzero(entropy > 0):  # a constant factor has nothing to share
            mi[i] = mutual_info_classif(
                codes,
                factors[:, i],
                discrete_features=False,
                n_neighbors=KSG_NEIGHBOURS,
                random_state=seed,
            )
    informative = entropy[:, None] > 0
    return np.where(
        informative, np.maximum(mi, 0.0) / np.where(informative, entropy[:, None], 1), 0
    )


def _normalised_peak_share(nmi: np.ndarray, skip_empty: bool) -> float:
    """Mean over rows of max/sum, rescaled so that an even spread over the columns is 0 and a
    single column is 1. A row with nothing in it is left out (`skip_empty`) or counts 0."""
    columns = nmi.shape[1]
    total = nmi.sum(1)
    if not (total > 0).any():
        return 0.0
    if columns == 1:
        return 1.0 if skip_empty else float((total > 0).mean())
    share = np.where(total > 0, nmi.max(1) / np.where(total > 0, total, 1.0), 1.0 / columns)
    share = share[total > 0] if skip_empty else share
    return float((share.mean() - 1.0 / columns) / (1.0 - 1.0 / columns))


def info_explicitness(codes: np.ndarray, factors: np.ndarray, *, discrete: bool) -> float:
    """Mean over factors of (H_null - H_pred) / H_null: the log loss an unregularised,
    class-balanced multinomial logistic regression on the latents saves over one on nothing,
    both fitted and read on the same points (as Hsu et al.'s reference does)."""
    if discrete:
        codes = np.concatenate(
            [(column[:, None] == np.unique(column)).astype(float) for column in codes.T], axis=1
        )
    else:
        codes = standardised(codes)
    saved = []
    for i in range(factors.shape[1]):
        target = factors[:, i]
        if len(np.unique(target)) < 2:
            continue
        null = _balanced_log_loss(np.zeros((len(codes), 1)), target)
        saved.append((null - _balanced_log_loss(codes, target)) / null)
    return float(np.mean(saved)) if saved else 0.0


def _balanced_log_loss(x: np.ndarray, y: np.ndarray) -> float:
    model = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return float(log_loss(y, model.predict_proba(x), labels=model.classes_))


def infomec(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    discrete: bool | None = None,
    noise_floor: float | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """InfoM, InfoE and InfoC of codes (n, d) against factor classes (n, k), in [0, 1].

    From the normalised MI matrix over the active latents (range above a twentieth of the
    widest; any range when discrete): InfoM, how much of each latent's information is about
    one factor, and InfoC, how much of each factor's information sits in one latent, each
    rescaled so an even spread is 0 and one is 1; InfoE as `info_explicitness`. `discrete`
    None: latents with at most 256 distinct values each are discrete (quantised codes).

    Unlike Hsu et al.'s reference, a normalised MI below `noise_floor` counts as none, and a
    latent informative of no factor is left out of InfoM (it is not unmodular, only idle)
    while a factor no latent informs of scores 0 in InfoC: the reference reads noise codes as
    InfoM ~0.6, the max/sum of estimator noise. The floor defaults to 1/sqrt(n), above the
    largest of 30 estimates on independent codes at every n measured (300 to 10,000: at most
    0.037, 0.017, 0.015, 0.006 against 0.058, 0.032, 0.018, 0.010). `noise_floor=0` and
    `discrete=False` come nearest the reference. With no active latent every score is 0.
    """
    codes, factors = check_pair(codes, factors)
    if discrete is None:
        discrete = all(len(np.unique(column)) <= DISCRETE_MOST_VALUES for column in codes.T)
    ranges = codes.max(0) - codes.min(0)
    active = ranges > 0 if discrete else ranges > ranges.max() / 20
    if not active.any():
        return dict.fromkeys(
            ("infomec.infom", "infomec.infoe", "infomec.infoc", "infomec.active_latents"), 0.0
        )
    nmi = normalised_mutual_information(codes[:, active], factors, discrete=discrete, seed=seed)
    nmi[nmi < (len(codes) ** -0.5 if noise_floor is None else noise_floor)] = 0.0
    return {
        "infomec.infom": _normalised_peak_share(nmi.T, skip_empty=True),
        "infomec.infoe": info_explicitness(codes, factors, discrete=discrete),
        "infomec.infoc": _normalised_peak_share(nmi, skip_empty=False),
        "infomec.active_latents": float(active.sum()),
    }


register(
    Metric(
        name="infomec",
        kind="codes",
        compute=lambda i: infomec(i.codes, i.factors, seed=i.seed),
        meanings={
            "infomec.infom": "InfoM: how much of each informative latent's information is "
            "about a single factor (1: each about one factor; 0: evenly about all).",
            "infomec.infoe": "InfoE: how much of each factor's entropy a linear read-out of the "
            "latents explains (1: all of it).",
            "infomec.infoc": "InfoC: how much of each factor's information sits in a single "
            "latent (1: one latent per factor; 0: spread evenly).",
            "infomec.active_latents": "InfoMEC: latents whose range exceeds a twentieth of the "
            "widest.",
        },
        headline=("infomec.infom", "infomec.infoe", "infomec.infoc"),
        references=("Hsu et al. 2023",),
    )
)
