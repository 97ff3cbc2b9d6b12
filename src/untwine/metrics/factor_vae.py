"""The FactorVAE score (Kim & Mnih 2018): a majority-vote classifier over least-varying codes."""

from __future__ import annotations

import numpy as np

from untwine.data import Dataset
from untwine.metrics._sampling import RepresentationFn, sample_codes
from untwine.metrics.registry import Inputs, Metric, register


def factor_vae_score(
    dataset: Dataset,
    representation_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    threshold: float = 0.05,
) -> dict[str, float]:
    """Accuracy of mapping each active code to the factor it most often votes for.

    Global per-code variances (ddof=1) come from `num_variance_estimate` random images; a code
    is active when its standard deviation is at least `threshold` (none active: every score 0).
    One vote: pick a factor k, draw `batch_size` factor vectors sharing the first one's value of
    k; the vote is (argmin over active codes of local variance / global variance, k).
    """
    codes, _ = sample_codes(dataset, representation_fn, num_variance_estimate, rng)
    global_variance = codes.var(axis=0, ddof=1)
    active = np.sqrt(global_variance) >= threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_codes": 0}
    train = _votes(dataset, representation_fn, rng, batch_size, num_train, global_variance, active)
    classifier = np.argmax(train, axis=0)  # (active,) most-voted factor, ties to the lowest
    evaluation = _votes(
        dataset, representation_fn, rng, batch_size, num_eval, global_variance, active
    )
    columns = np.arange(train.shape[1])
    return {
        "train_accuracy": float(train[classifier, columns].sum() / train.sum()),
        "eval_accuracy": float(evaluation[classifier, columns].sum() / evaluation.sum()),
        "active_codes": int(active.sum()),
    }


def _votes(
    dataset, representation_fn, rng, batch_size, num_votes, global_variance, active, chunk: int = 16
) -> np.ndarray:
    """Vote counts (factors, active codes)."""
    k = len(dataset.factor_sizes)
    votes = np.zeros((k, int(active.sum())), dtype=np.int64)
    for start in range(0, num_votes, chunk):
        n = min(chunk, num_votes - start)
        fixed = rng.integers(k, size=n)
        anchors = np.repeat(dataset.sample_factors(n, rng), batch_size, axis=0)
        factors = dataset.resample_sharing(anchors, np.repeat(fixed, batch_size), rng)
        codes = representation_fn(dataset.observations_from_factors(factors, rng))
        local = codes.reshape(n, batch_size, -1).var(axis=1, ddof=1)  # (n, d)
        ratio = local[:, active] / global_variance[active]
        np.add.at(votes, (fixed, np.argmin(ratio, axis=1)), 1)
    return votes


def _registered(inputs: Inputs) -> dict[str, float]:
    """The score on the evaluation budget: `samples` points each to estimate variances and to
    train, half as many to test."""
    scores = factor_vae_score(
        inputs.dataset,
        inputs.encode,
        inputs.rng,
        num_train=inputs.samples,
        num_eval=max(inputs.samples // 2, 1),
        num_variance_estimate=inputs.samples,
    )
    return {
        "factor_vae": scores["eval_accuracy"],
        "factor_vae.train_accuracy": scores["train_accuracy"],
        "factor_vae.active_codes": scores["active_codes"],
    }


register(
    Metric(
        name="factor_vae",
        kind="sampled",
        compute=_registered,
        min_codes=10,
        meanings={
            "factor_vae": "FactorVAE score: accuracy of a majority vote naming the fixed factor "
            "from the latent that varies least."
        },
        references=("Kim & Mnih 2018",),
    )
)
