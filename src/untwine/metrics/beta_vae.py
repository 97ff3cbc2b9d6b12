"""The BetaVAE score (Higgins et al. 2017): can a linear model tell which factor was held fixed?"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from untwine.data import Dataset
from untwine.metrics._sampling import RepresentationFn
from untwine.metrics.registry import Inputs, Metric, register


def beta_vae_score(
    dataset: Dataset,
    representation_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
) -> dict[str, float]:
    """Accuracy of `LogisticRegression()` predicting the fixed factor from |z(x1) - z(x2)| means.

    One point: pick a factor k; draw two sets of `batch_size` factor vectors and copy factor k
    from the first into the second, pair by pair; the feature is the mean over the pairs of
    |z(x1) - z(x2)|, the label k. `representation_fn` maps uint8 images (n, H, W, C) to codes.
    """
    x_train, y_train = _points(dataset, representation_fn, rng, batch_size, num_train)
    x_eval, y_eval = _points(dataset, representation_fn, rng, batch_size, num_eval)
    with warnings.catch_warnings():  # lbfgs may stop at max_iter, as it did in the study
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression().fit(x_train, y_train)
    return {
        "train_accuracy": float(np.mean(model.predict(x_train) == y_train)),
        "eval_accuracy": float(np.mean(model.predict(x_eval) == y_eval)),
    }


def _points(dataset, representation_fn, rng, batch_size, num_points, chunk: int = 16):
    """`num_points` (feature, label) pairs, drawing `chunk` points' images per encoder call."""
    k = len(dataset.factor_sizes)
    features, labels = [], []
    for start in range(0, num_points, chunk):
        n = min(chunk, num_points - start)
        fixed = rng.integers(k, size=n)  # (n,)
        first = dataset.sample_factors(n * batch_size, rng)
        second = dataset.resample_sharing(first, np.repeat(fixed, batch_size), rng)
        z1 = representation_fn(dataset.observations_from_factors(first, rng))
        z2 = representation_fn(dataset.observations_from_factors(second, rng))
        features.append(np.abs(z1 - z2).reshape(n, batch_size, -1).mean(axis=1))
        labels.append(fixed)
    return np.concatenate(features), np.concatenate(labels)


def _registered(inputs: Inputs) -> dict[str, float]:
    """The score on the evaluation budget: `samples` training points, half as many to test."""
    scores = beta_vae_score(
        inputs.dataset,
        inputs.encode,
        inputs.rng,
        num_train=inputs.samples,
        num_eval=max(inputs.samples // 2, 1),
    )
    return {
        "beta_vae": scores["eval_accuracy"],
        "beta_vae.train_accuracy": scores["train_accuracy"],
    }


register(
    Metric(
        name="beta_vae",
        kind="sampled",
        compute=_registered,
        min_codes=10,
        meanings={
            "beta_vae": "BetaVAE score: accuracy of a linear classifier naming which factor was "
            "held fixed, from mean latent differences."
        },
        references=("Higgins et al. 2017",),
    )
)
