"""Modularity and explicitness (Ridgeway & Mozer 2018), as disentanglement_lib computes them."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import label_binarize

from untwine.metrics._checks import (
    check_pair,
    discrete_mutual_info,
    histogram_discretize,
    train_test,
)
from untwine.metrics.registry import Metric, prefixed, register


def modularity(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20) -> float:
    """Mean over codes of 1 - (sum(m) - max(m)) / (max(m) (k - 1)), m = squared MI with factors.

    MI as for MIG (histogram-discretised codes against factors). A code whose largest MI is 0
    (a constant code, say) scores 0. Deterministic. Random codes score about 0.69, not 0.
    """
    codes, factors = check_pair(codes, factors)
    squared = discrete_mutual_info(histogram_discretize(codes, num_bins), factors) ** 2  # (d, k)
    if squared.shape[1] < 2:
        return 1.0
    top = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - (squared.sum(axis=1) - top) / (top * (squared.shape[1] - 1))
    return float(np.mean(np.where(top == 0.0, 0.0, score)))


def explicitness(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean over factors of the one-vs-rest ROC-AUC of a logistic regression on all codes.

    Codes are standardised with the train mean and standard deviation (a constant code is only
    centred). The classifier is today's `LogisticRegression()` (lbfgs, multinomial); the study
    ran scikit-learn < 0.22, whose default was liblinear one-vs-rest, so its numbers differ
    slightly. Classes absent from a split are left out of that split's AUC.
    """
    x_train, y_train, x_test, y_test = train_test(codes, factors, codes_test, factors_test)
    mean, std = x_train.mean(0), x_train.std(0)
    std = np.where(std > 0, std, 1.0)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    train, test = [], []
    for j in range(y_train.shape[1]):
        if len(np.unique(y_train[:, j])) < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = LogisticRegression().fit(x_train, y_train[:, j])
        train.append(_roc_auc(model, x_train, y_train[:, j]))
        test.append(_roc_auc(model, x_test, y_test[:, j]))
    return {"train": float(np.mean(train)), "test": float(np.nanmean(test))}


def _roc_auc(model: LogisticRegression, x: np.ndarray, y: np.ndarray) -> float:
    """Macro one-vs-rest ROC-AUC over the classes that have positives and negatives in `y`."""
    proba = model.predict_proba(x)
    labels = label_binarize(y, classes=model.classes_)
    if labels.shape[1] == 1:  # binary: label_binarize gives one column
        labels = np.hstack([1 - labels, labels])
    present = (labels.sum(0) > 0) & (labels.sum(0) < len(labels))
    if not present.any():
        return float("nan")
    return float(roc_auc_score(labels[:, present], proba[:, present], average="macro"))


def modularity_explicitness(
    codes, factors, codes_test=None, factors_test=None, *, num_bins: int = 20
) -> dict[str, float]:
    """Modularity on the train split and explicitness on both, as the study reports them."""
    x_train, y_train, x_test, y_test = train_test(codes, factors, codes_test, factors_test)
    scores = explicitness(x_train, y_train, x_test, y_test)
    return {
        "modularity": modularity(x_train, y_train, num_bins=num_bins),
        "explicitness_train": scores["train"],
        "explicitness_test": scores["test"],
    }


register(
    Metric(
        name="modularity",
        kind="codes",
        compute=lambda i: {"modularity": modularity(i.codes, i.factors)},
        meanings={
            "modularity": "Modularity: whether each latent depends on at most one factor "
            "(1: fully modular)."
        },
        references=("Ridgeway & Mozer 2018",),
    )
)
register(
    Metric(
        name="explicitness",
        kind="codes",
        compute=lambda i: prefixed("explicitness", explicitness(*i.split), main="test"),
        meanings={
            "explicitness": "Explicitness: how well a linear classifier reads each factor from "
            "the latents (mean ROC AUC, held out)."
        },
        references=("Ridgeway & Mozer 2018",),
    )
)
