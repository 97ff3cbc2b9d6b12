"""Separated Attribute Predictability (Kumar et al. 2018)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from untwine.metrics._checks import train_test
from untwine.metrics.registry import Metric, register


def sap(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    *,
    continuous: bool = False,
    n_jobs: int | None = None,
) -> float:
    """Mean over factors of the gap between the two codes that predict it best, alone.

    Discrete factors (the default): the score of (code i, factor j) is the test accuracy of
    `LinearSVC(C=0.01, class_weight="balanced")` fitted on code i alone. `continuous=True` uses
    the squared correlation on the train split instead; the d x k fits run in `n_jobs` threads
    (by default torch's thread count, the process's share of the cores).
    Deterministic given the inputs. A perfect code scores low on factors with many values
    (~0.24 on dSprites): a one-dimensional linear classifier cannot separate many classes.
    """
    x_train, y_train, x_test, y_test = train_test(codes, factors, codes_test, factors_test)
    if continuous:
        scores = _squared_correlations(x_train, y_train)
    else:
        pairs = [(i, j) for i in range(x_train.shape[1]) for j in range(y_train.shape[1])]
        with warnings.catch_warnings():  # set here: the filter is process-wide, threads share it
            warnings.simplefilter("ignore", ConvergenceWarning)
            threads = torch.get_num_threads() if n_jobs is None else n_jobs
            accuracies = Parallel(n_jobs=threads, prefer="threads")(
                delayed(_accuracy)(x_train[:, i], y_train[:, j], x_test[:, i], y_test[:, j])
                for i, j in pairs
            )  # liblinear releases the GIL
        scores = np.array(accuracies).reshape(x_train.shape[1], y_train.shape[1])  # (d, k)
    ranked = np.sort(scores, axis=0)
    if len(ranked) < 2:
        return float(np.mean(ranked[-1]))
    return float(np.mean(ranked[-1] - ranked[-2]))


def _accuracy(code, factor, code_test, factor_test) -> float:
    if len(np.unique(factor)) < 2:
        return 0.0
    classifier = LinearSVC(C=0.01, class_weight="balanced").fit(code[:, None], factor)
    return float(np.mean(classifier.predict(code_test[:, None]) == factor_test))


def _squared_correlations(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """cov(c_i, f_j)^2 / (var c_i var f_j); 0 where either is constant, (d, k)."""
    c = codes - codes.mean(0)
    f = factors - factors.mean(0)
    cov = c.T @ f / len(c)
    denominator = np.outer(c.var(0), f.var(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, cov**2 / denominator, 0.0)


register(
    Metric(
        name="sap",
        kind="codes",
        compute=lambda i: {"sap": sap(*i.split)},
        meanings={
            "sap": "SAP: per factor, the gap in accuracy between the two best single-latent "
            "linear classifiers."
        },
        references=("Kumar et al. 2018",),
    )
)
