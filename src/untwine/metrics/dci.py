"""DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018)."""

from __future__ import annotations

from typing import Literal

import numba
import numpy as np
import scipy.stats
import torch
from joblib import Parallel, delayed
from sklearn.ensemble import GradientBoostingClassifier

from untwine.errors import UntwineError
from untwine.metrics._boosting import fit_boosted_trees
from untwine.metrics._checks import train_test
from untwine.metrics.registry import Metric, prefixed, register


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    *,
    estimator: Literal["fast", "reference"] = "fast",
    seed: int = 0,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """Importance matrix R (d x k) from one gradient-boosted classifier per factor.

    The classifier is the study's, sklearn's `GradientBoostingClassifier()` with its defaults,
    and importances are its impurity importances. `estimator="reference"` runs sklearn itself
    (seeded with `seed`; factors in parallel over `n_jobs` processes): minutes on 10,000
    points of dSprites. `estimator="fast"` (the default) runs the same algorithm compiled
    (`untwine.metrics._boosting`; a stage's trees in parallel over `n_jobs` threads; `seed`
    orders features when splits tie), about 30x faster. `n_jobs=None` takes torch's thread
    count, the process's share of the cores (one in a two-worker sweep); -1 takes every core.
    The two grow the same trees except where two splits are exactly as good, which sklearn
    settles by a random feature order and by rounding, as it does differently with another
    seed. Stated tolerance: D, C and I within 0.01 of the reference; measured differences are
    ~0.001, as large as sklearn's own across seeds (benchmarks/metrics.py --reference prints
    them).

    Disentanglement: per code, 1 - entropy of its row of R (base k), weighted by the code's
    share of R. Completeness: per factor, 1 - entropy of its column (base d), weighted
    likewise. Informativeness: mean classification accuracy over factors. Without a test split
    the first ceil(0.9 N) rows train.
    """
    x_train, y_train, x_test, y_test = train_test(codes, factors, codes_test, factors_test)
    columns = range(y_train.shape[1])
    torch_before = torch.get_num_threads()  # read first: numba's first call may change it
    n_jobs = torch_before if n_jobs is None else n_jobs
    if estimator == "fast":
        most = numba.config.NUMBA_NUM_THREADS
        before = numba.get_num_threads()
        numba.set_num_threads(min(n_jobs, most) if n_jobs > 0 else most)
        try:
            fits = [
                _fit_factor_fast(x_train, y_train[:, j], x_test, y_test[:, j], seed)
                for j in columns
            ]
        finally:  # thread counts are process-wide, and numba's OpenMP layer also sets torch's
            numba.set_num_threads(before)
            torch.set_num_threads(torch_before)
    elif estimator == "reference":
        fits = Parallel(n_jobs=n_jobs)(
            delayed(_fit_factor)(x_train, y_train[:, j], x_test, y_test[:, j], seed)
            for j in columns
        )
    else:
        raise UntwineError(f"unknown DCI estimator {estimator!r}; accepted: fast, reference")
    importance = np.stack([f[0] for f in fits], axis=1)  # (d, k)
    return {
        "disentanglement": disentanglement(importance),
        "completeness": completeness(importance),
        "informativeness_train": float(np.mean([f[1] for f in fits])),
        "informativeness_test": float(np.mean([f[2] for f in fits])),
    }


def _fit_factor(x_train, y_train, x_test, y_test, seed) -> tuple[np.ndarray, float, float]:
    """|feature importances|, train accuracy and test accuracy for one factor, with sklearn."""
    if len(np.unique(y_train)) < 2:  # a constant factor: nothing to predict, nothing important
        return np.zeros(x_train.shape[1]), 1.0, float(np.mean(y_test == y_train[0]))
    model = GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
    return (
        np.abs(model.feature_importances_),
        float(np.mean(model.predict(x_train) == y_train)),
        float(np.mean(model.predict(x_test) == y_test)),
    )


def _fit_factor_fast(x_train, y_train, x_test, y_test, seed) -> tuple[np.ndarray, float, float]:
    """The same fit with the compiled boosting; test values unseen in training count as misses."""
    classes, labels = np.unique(y_train, return_inverse=True)
    if len(classes) < 2:
        return np.zeros(x_train.shape[1]), 1.0, float(np.mean(y_test == y_train[0]))
    importance, train_pred, test_pred = fit_boosted_trees(x_train, labels, x_test, seed=seed)
    return (
        importance,
        float(np.mean(classes[train_pred] == y_train)),
        float(np.mean(classes[test_pred] == y_test)),
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


register(
    Metric(
        name="dci",
        kind="codes",
        compute=lambda i: prefixed("dci", dci(*i.split, seed=i.seed, estimator=i.dci_estimator)),
        meanings={
            "dci.disentanglement": "DCI disentanglement: how much each latent's importance for "
            "the boosted trees concentrates on a single factor.",
            "dci.completeness": "DCI completeness: how much each factor is captured by a single "
            "latent.",
            "dci.informativeness_test": "DCI informativeness: accuracy of boosted trees "
            "predicting the factors from all latents, on held-out points.",
        },
        headline=("dci.disentanglement", "dci.completeness"),
        references=("Eastwood & Williams 2018",),
    )
)
