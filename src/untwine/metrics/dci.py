"""DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018)."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import scipy.stats
from joblib import Parallel, delayed
from sklearn.ensemble import GradientBoostingClassifier

from untwine.errors import UntwineError
from untwine.metrics._checks import train_test


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    *,
    estimator: Literal["reference", "lightgbm"] = "reference",
    seed: int = 0,
    n_jobs: int = -1,
) -> dict[str, float]:
    """Importance matrix R (d x k) from one gradient-boosted classifier per factor.

    `estimator="reference"` is the study's: sklearn `GradientBoostingClassifier()` with its
    defaults (seeded with `seed`), importances = |feature_importances_|; its trees break ties
    at random, so values agree with disentanglement_lib within about 0.01. It is slow (minutes
    on 10,000 points of dSprites), so factors are fitted in parallel over `n_jobs` processes.
    `estimator="lightgbm"` (the `untwine[fast]` extra) fits the same boosting budget (100
    depth-3 trees per class, learning rate 0.1) with LightGBM and total-gain importances:
    about 30x faster on dSprites-sized inputs, but not the same trees, so not the same numbers.
    On our checks (benchmarks/metrics.py, tests) it reads disentanglement and completeness
    0.03-0.055 higher than the reference and informativeness within 0.02: good for watching a
    run, not for comparing with published DCI values.

    Disentanglement: per code, 1 - entropy of its row of R (base k), weighted by the code's
    share of R. Completeness: per factor, 1 - entropy of its column (base d), weighted
    likewise. Informativeness: mean classification accuracy over factors. Without a test split
    the first ceil(0.9 N) rows train.
    """
    x_train, y_train, x_test, y_test = train_test(codes, factors, codes_test, factors_test)
    if estimator == "lightgbm":
        fits = [
            _fit_factor_lightgbm(x_train, y_train[:, j], x_test, y_test[:, j], seed, n_jobs)
            for j in range(y_train.shape[1])
        ]
    elif estimator == "reference":
        fits = Parallel(n_jobs=n_jobs)(
            delayed(_fit_factor)(x_train, y_train[:, j], x_test, y_test[:, j], seed)
            for j in range(y_train.shape[1])
        )
    else:
        raise UntwineError(f"unknown DCI estimator {estimator!r}; accepted: reference, lightgbm")
    importance = np.stack([f[0] for f in fits], axis=1)  # (d, k)
    return {
        "disentanglement": disentanglement(importance),
        "completeness": completeness(importance),
        "informativeness_train": float(np.mean([f[1] for f in fits])),
        "informativeness_test": float(np.mean([f[2] for f in fits])),
    }


def _fit_factor(x_train, y_train, x_test, y_test, seed) -> tuple[np.ndarray, float, float]:
    """|feature importances|, train accuracy and test accuracy for one factor."""
    if len(np.unique(y_train)) < 2:  # a constant factor: nothing to predict, nothing important
        return np.zeros(x_train.shape[1]), 1.0, float(np.mean(y_test == y_train[0]))
    model = GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
    return (
        np.abs(model.feature_importances_),
        float(np.mean(model.predict(x_train) == y_train)),
        float(np.mean(model.predict(x_test) == y_test)),
    )


def _fit_factor_lightgbm(x_train, y_train, x_test, y_test, seed, n_jobs):
    """The same per-factor fit with LightGBM: normalised total-gain importances, accuracies."""
    try:
        from lightgbm import LGBMClassifier
    except ImportError:
        raise UntwineError(
            "the lightgbm DCI estimator needs LightGBM: pip install 'untwine[fast]'"
        ) from None
    if len(np.unique(y_train)) < 2:
        return np.zeros(x_train.shape[1]), 1.0, float(np.mean(y_test == y_train[0]))
    model = LGBMClassifier(
        n_estimators=100,
        learning_rate=0.1,
        max_depth=3,
        num_leaves=8,
        min_child_samples=1,
        reg_lambda=0.0,
        importance_type="gain",
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=n_jobs if n_jobs > 0 else os.cpu_count() or 1,
        verbose=-1,
    ).fit(x_train, y_train)
    gain = model.booster_.feature_importance("gain")
    importance = gain / gain.sum() if gain.sum() > 0 else gain
    return (
        importance,
        float(np.mean(model.predict(x_train) == y_train)),
        float(np.mean(model.predict(x_test) == y_test)),
    )


def disentanglement(importance: np.ndarray) -> float:
    """Importance-weighted mean over codes of 1 - H(row) with log base k (rows of R are codes)."""
    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    weights = importance.sum(axis=1) / importance.sum()
    return float(np.sum(per_code * weights))


def completeness(importance: np.ndarray) -> float:
    """Importance-weighted mean over factors of 1 - H(column) with log base d."""
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    weights = importance.sum(axis=0) / importance.sum()
    return float(np.sum(per_factor * weights))
